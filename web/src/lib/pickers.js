/* pickers.js: choosing a person by name (never by typing an id) and a grid by name or code,
 * for the forms of the 人员 and 账号 screens. Each picker is an input with a result list; the
 * choice is kept on the element (picker.value) and announced by onChoose. */

import { api } from './api.js';
import { debounce, esc, show } from './dom.js';
import { LEVEL_NAMES } from './i18n.js';

/** A person's current roles as "网格名 网格长、…". */
export function rolesLine(person) {
  const now = (person.assignments || []).filter((a) => a.state !== 'past');
  return now.map((a) => `${a.grid.name} ${a.role_name}`).join('、');
}

function pickerHtml(placeholder) {
  return (
    `<input type="search" autocomplete="off" data-pk="q" placeholder="${esc(placeholder)}">` +
    `<ul class="pk-list" data-pk="list" role="listbox" hidden></ul>` +
    `<div class="pk-chosen" data-pk="chosen" hidden></div>`
  );
}

function bind(el, search, itemHtml, chosenHtml, onChoose) {
  const input = el.querySelector('[data-pk=q]');
  const list = el.querySelector('[data-pk=list]');
  const chosen = el.querySelector('[data-pk=chosen]');
  let items = [];
  let ctl = null;
  const picker = {
    value: null,
    clear() {
      picker.value = null;
      show(chosen, false);
      show(input, true);
      input.value = '';
    },
    set(item) {
      picker.value = item;
      chosen.innerHTML = `${chosenHtml(item)} <button type="button" class="gm-link" data-pk="change">更改</button>`;
      show(chosen, true);
      show(input, false);
      show(list, false);
      if (onChoose) onChoose(item);
    },
  };
  const run = debounce(async () => {
    const q = input.value.trim();
    if (ctl) ctl.abort();
    if (!q) {
      show(list, false);
      return;
    }
    ctl = new AbortController();
    const mine = ctl;
    try {
      items = await search(q, mine.signal);
      if (mine.signal.aborted) return;
      list.innerHTML = items.length
        ? items.map((it, i) => `<li role="option" data-i="${i}">${itemHtml(it)}</li>`).join('')
        : '<li class="gm-muted pk-none">没有找到，请换个写法</li>';
      show(list, true);
    } catch (e) {
      /* aborted or failed: keep the last list */
    }
  }, 200);
  input.addEventListener('input', run);
  list.addEventListener('mousedown', (e) => {
    const li = e.target.closest('li[data-i]');
    if (!li) return;
    e.preventDefault();
    picker.set(items[+li.getAttribute('data-i')]);
  });
  chosen.addEventListener('click', (e) => {
    if (e.target.closest('[data-pk=change]')) {
      picker.clear();
      input.focus();
    }
  });
  input.addEventListener('blur', () => setTimeout(() => show(list, false), 150));
  return picker;
}

/**
 * A person picker in el. opts: {grid(): id or code the people must belong to (their record
 * or a role in its subtree), or nothing for the whole scope; onChoose(person)}.
 */
export function personPicker(el, opts = {}) {
  el.classList.add('pk');
  el.innerHTML = pickerHtml('输入姓名或电话查找');
  return bind(
    el,
    async (q, signal) => {
      const grid = opts.grid ? opts.grid() : null;
      const res = await api('/api/v1/people', { q, grid, limit: 10 }, { signal, cache: 'no-store' });
      return res.people;
    },
    (p) =>
      `<b>${esc(p.name)}</b> <span class="gm-muted">${esc(rolesLine(p) || (p.grid ? p.grid.name : ''))}</span>` +
      (p.account ? ` <span class="gm-tag">已有账号 ${esc(p.account.username)}</span>` : ''),
    (p) => `<b data-gm="picked-person">${esc(p.name)}</b> <span class="gm-muted">${esc(rolesLine(p))}</span>`,
    opts.onChoose
  );
}

/** A grid picker in el (grids by name or code, with their 街道 › 社区 context). */
export function gridPicker(el, opts = {}) {
  el.classList.add('pk');
  el.innerHTML = pickerHtml('输入网格名称或编码');
  return bind(
    el,
    async (q, signal) => {
      const res = await api('/api/v1/search', { q, limit: 10 }, { signal });
      return (res.items || []).filter((r) => r.kind === 'grid');
    },
    (g) =>
      `<span class="gm-level">${esc(LEVEL_NAMES[g.level] || '网格')}</span> <b>${esc(g.title)}</b> ` +
      `<span class="gm-muted">${esc(g.context || '')}</span>`,
    (g) => `<b data-gm="picked-grid">${esc(g.title)}</b> <span class="gm-code">${esc(g.code || '')}</span>`,
    opts.onChoose
  );
}
