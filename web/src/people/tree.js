/* tree.js: the grid tree of the 人员 screen, read from /api/v1/roster one level at a time:
 * each grid with its leader, or a red gap when it needs one and has none, and how many grids
 * below it lack one. */

import { api } from '../lib/api.js';
import { esc } from '../lib/dom.js';
import { errorText, LEVEL_NAMES } from '../lib/i18n.js';

let onSelect = () => {};
let selectedId = null;

function nodeHtml(g) {
  const gap = g.needs_leader && !g.leader;
  const leader = g.leader
    ? `<span class="pp-leader">${esc(g.leader.name)}</span>`
    : gap
      ? '<span class="pp-leader pp-missing" data-gm="gap-tag">缺负责人</span>'
      : '';
  const gaps = g.gaps ? `<span class="pp-gaps" title="下级网格缺少负责人">${g.gaps}</span>` : '';
  return (
    `<li role="treeitem" data-grid="${g.id}" data-code="${esc(g.code)}" aria-expanded="false">` +
    `<div class="pp-node${gap ? ' pp-gap' : ''}${g.id === selectedId ? ' pp-on' : ''}" data-node="${g.id}">` +
    (g.children
      ? `<button type="button" class="pp-toggle" data-toggle="${g.id}" aria-label="展开">▸</button>`
      : '<span class="pp-toggle"></span>') +
    `<span class="pp-lv">${esc(g.level_name || LEVEL_NAMES[g.level] || '')}</span>` +
    `<span class="pp-name">${esc(g.name)}</span>${leader}${gaps}</div>` +
    '<ul role="group" hidden></ul></li>'
  );
}

async function fill(ul, parent) {
  ul.innerHTML = '<li class="gm-muted pp-wait">正在载入…</li>';
  try {
    const res = await api('/api/v1/roster', { parent }, { cache: 'no-store' });
    ul.innerHTML = res.grids.length ? res.grids.map(nodeHtml).join('') : '<li class="gm-muted pp-wait">没有下级网格</li>';
  } catch (e) {
    ul.innerHTML = `<li class="gm-error">${esc(errorText(e))}</li>`;
  }
}

async function toggle(li, open) {
  const ul = li.querySelector(':scope > ul');
  const want = open === undefined ? li.getAttribute('aria-expanded') !== 'true' : open;
  li.setAttribute('aria-expanded', String(want));
  const btn = li.querySelector(':scope > .pp-node > .pp-toggle');
  if (btn) btn.textContent = want ? '▾' : '▸';
  ul.hidden = !want;
  if (want && !ul.dataset.loaded) {
    ul.dataset.loaded = '1';
    await fill(ul, +li.getAttribute('data-grid'));
  }
}

/** Mark a grid as the chosen one (when it is in the tree). */
export function markSelected(id) {
  selectedId = id;
  for (const el of document.querySelectorAll('.pp-node.pp-on')) el.classList.remove('pp-on');
  const node = document.querySelector(`.pp-node[data-node="${id}"]`);
  if (node) node.classList.add('pp-on');
}

/** Reload the children of the grids on the chain (after a change: leaders and gap counts). */
export async function refreshTree(chainIds) {
  const root = document.getElementById('pp-tree');
  await fill(root, null);
  for (const id of chainIds || []) {
    const li = root.querySelector(`li[data-grid="${id}"]`);
    if (!li || !li.querySelector(':scope > .pp-node > button.pp-toggle')) break;
    await toggle(li, true);
  }
  markSelected(selectedId);
}

/** The tree in #pp-tree; select(id) is called when a grid is clicked. */
export async function mountTree(select) {
  onSelect = select;
  const root = document.getElementById('pp-tree');
  root.addEventListener('click', (e) => {
    const t = e.target.closest('[data-toggle]');
    if (t) {
      toggle(t.closest('li'));
      return;
    }
    const node = e.target.closest('[data-node]');
    if (node) onSelect(+node.getAttribute('data-node'));
  });
  await fill(root, null);
  // A single root (the user's community or street) opens by itself.
  const only = root.querySelectorAll(':scope > li[data-grid]');
  if (only.length === 1) await toggle(only[0], true);
}
