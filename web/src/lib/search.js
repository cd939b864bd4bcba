/* search.js: the search box of the map and the workbench. One query finds hazards by their
 * public code, grids by name or code, addresses, and (for staff in scope) people by name;
 * each result carries its 街道 › 社区 context so that identical names are told apart. */

import { api } from './api.js';
import { debounce, esc, show } from './dom.js';
import { LEVEL_NAMES } from './i18n.js';

const KIND_NAMES = { hazard: '隐患', grid: '网格', person: '人员', address: '地址' };

function badge(item, levels) {
  if (item.kind === 'grid') {
    const lv = (levels && levels[item.level]) || {};
    return `<span class="gm-level" style="background:${esc(lv.color || '#546e7a')}">${esc(lv.name || LEVEL_NAMES[item.level] || '网格')}</span>`;
  }
  return `<span class="gm-level gm-kind-${esc(item.kind)}">${esc(KIND_NAMES[item.kind] || item.kind)}</span>`;
}

/**
 * Wire a search input and its result list. opts: {onChoose(item), params(): extra query
 * parameters (crs), levels: {level: {name, color}}, onInput()}.
 */
export function bindSearch(input, list, opts) {
  let results = [];
  let active = -1;
  let ctl = null;

  const render = () => {
    if (!results.length) {
      list.innerHTML = '<li class="gm-muted gm-noresult">没有找到匹配的隐患编号、网格、地址或人员</li>';
      show(list, true);
      return;
    }
    list.innerHTML = results
      .map(
        (r, i) =>
          `<li role="option" data-i="${i}" data-kind="${esc(r.kind)}"${i === active ? ' class="gm-active"' : ''}>` +
          badge(r, opts.levels) +
          `<span class="gm-res-main"><span class="gm-res-name">${esc(r.title)}</span>` +
          (r.context ? `<span class="gm-res-context">${esc(r.context)}</span>` : '') +
          `</span><span class="gm-code">${esc(r.code || '')}</span></li>`
      )
      .join('');
    show(list, true);
  };

  const choose = (i) => {
    const r = results[i];
    if (!r) return;
    show(list, false);
    input.blur();
    opts.onChoose(r);
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
      const res = await api('/api/v1/search', { q, limit: 10, ...(opts.params ? opts.params() : {}) }, { signal: mine.signal });
      if (mine.signal.aborted) return;
      results = res.items || [];
      active = results.length ? 0 : -1;
      render();
    } catch (e) {
      /* aborted or failed: keep the last list */
    }
  }, 220);

  input.addEventListener('input', () => {
    if (opts.onInput) opts.onInput();
    run();
  });
  input.addEventListener('focus', () => {
    if (opts.onInput) opts.onInput();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!results.length) return;
      active = (active + (e.key === 'ArrowDown' ? 1 : results.length - 1)) % results.length;
      render();
      e.preventDefault();
    } else if (e.key === 'Enter') {
      choose(active < 0 ? 0 : active);
      e.preventDefault();
    } else if (e.key === 'Escape') {
      show(list, false);
    }
  });
  list.addEventListener('mousedown', (e) => {
    const li = e.target.closest('li[data-i]');
    if (li) {
      e.preventDefault();
      choose(+li.getAttribute('data-i'));
    }
  });
  input.addEventListener('blur', () => setTimeout(() => show(list, false), 150));
}
