/* desk/main.js: the workbench (工作台). The queues of the user's scope — 待受理, 待派遣, 处置中,
 * 待核查, 待审批, 缓办中, 已逾期, 24 工作时内到期, 我的任务 — each a sortable table with its count badge,
 * narrowed by community, grid, category, severity, source and report date. A row opens the
 * hazard in the map beside the table (the map flies to it and its panel offers the moves)
 * while the table stays where it was; counts refresh on their own and after every move. On a
 * phone the row opens the map screen, and coming back restores the queue and its scroll. */

import { api } from '../lib/api.js';
import { $, esc, pageConfig, toast } from '../lib/dom.js';
import { addDays, beijingMidnight, dueText, fmtTime } from '../lib/format.js';
import { errorText, SOURCE_NAMES } from '../lib/i18n.js';
import { bindSearch } from '../lib/search.js';
import { mountUserBar, refreshSession, staffGate } from '../lib/session.js';
import { mountOrders } from './orders.js';

const cfg = pageConfig();
const QUEUES = [
  ['to_accept', '待受理'],
  ['to_dispatch', '待派遣'],
  ['in_progress', '处置中'],
  ['to_verify', '待核查'],
  ['to_approve', '待审批'],
  ['suspended', '缓办中'],
  ['overdue', '已逾期'],
  ['due_24h', '24 工作时内到期'],
  ['mine', '我的任务'],
];
// A request waiting for its decision, as the row's tag.
const PENDING_NAMES = { extension: '延期待审批', suspension: '缓办待审批', send_back: '退回待审批', void: '作废待审批' };
const PAGE = 50;
const REFRESH_MS = 30000;
const STORE = 'gm.desk';

const state = {
  queue: null,
  sort: 'reported_at',
  order: 'desc',
  filters: { community: '', grid: '', category: '', severity: '', source: '', since: '', until: '' },
  items: [],
  matched: 0,
  selected: null,
  scroll: 0,
};
let started = false;
let counts = {};

function save() {
  try {
    const { queue, sort, order, filters, selected } = state;
    sessionStorage.setItem(STORE, JSON.stringify({ queue, sort, order, filters, selected, scroll: scrollTop() }));
  } catch (e) {
    /* private mode */
  }
}

/** Where the list is scrolled: the table scrolls beside the map, the page on a phone. */
function scrollTop(to) {
  const el = wide() ? $('desk-tablewrap') : document.scrollingElement;
  if (to != null) el.scrollTop = to;
  return el.scrollTop;
}

function restore() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    if (saved) Object.assign(state, saved, { filters: { ...state.filters, ...saved.filters } });
  } catch (e) {
    /* nothing saved */
  }
}

/** The API parameters of the current filters. */
function filterParams() {
  const f = state.filters;
  return {
    grid: f.grid || f.community || undefined,
    category: f.category || undefined,
    severity: f.severity || undefined,
    source: f.source || undefined,
    since: f.since ? beijingMidnight(f.since) : undefined,
    // The end date is inclusive: up to the next day's midnight in Beijing.
    until: f.until ? beijingMidnight(addDays(f.until, 1)) : undefined,
  };
}

function renderTabs() {
  $('desk-queues').innerHTML = QUEUES.map(
    ([key, name]) =>
      `<button type="button" role="tab" class="desk-tab${key === state.queue ? ' desk-tab-on' : ''}${key === 'overdue' ? ' desk-tab-bad' : ''}" ` +
      `data-queue="${key}" aria-selected="${key === state.queue}">${esc(name)}` +
      `<span class="desk-badge" data-count="${key}">${counts[key] == null ? '…' : counts[key]}</span></button>`
  ).join('');
}

// Answers can arrive out of order when filters change quickly: only the latest request's
// answer may be shown (an older one would put the previous filter's numbers back).
let countsSeq = 0;
let rowsSeq = 0;

/** Fresh counts of every queue (no page reload). */
async function refreshCounts() {
  const mine = ++countsSeq;
  try {
    const res = await api('/api/v1/queues', filterParams(), { cache: 'no-store' });
    if (mine !== countsSeq) return;
    counts = res.counts;
    for (const [key] of QUEUES) {
      const el = document.querySelector(`[data-count="${key}"]`);
      if (el) el.textContent = counts[key];
    }
    document.body.setAttribute('data-counts-at', res.as_of);
  } catch (e) {
    if (e.status === 401) onSignedOut();
  }
}

function handler(r) {
  return [r.assignee_name, r.department_name].filter(Boolean).join(' / ') || '<span class="gm-muted">—</span>';
}

function rowHtml(r) {
  const sev = cfg.severities[r.severity] || { name: r.severity, color: '#777' };
  const due = dueText(r, cfg.clockStatuses);
  const where = [r.community_name, r.grid_name].filter(Boolean).join(' › ');
  return (
    `<tr data-hazard-id="${r.id}" class="${r.overdue ? 'desk-overdue' : ''}${r.id === state.selected ? ' desk-selected' : ''}" tabindex="0">` +
    `<td class="gm-code">${esc(r.public_code)}</td>` +
    `<td>${esc(r.category_name)}</td>` +
    `<td><span class="gm-sev" style="background:${esc(sev.color)}">${esc(sev.name)}</span></td>` +
    `<td><span class="gm-status">${esc(r.status_name)}</span>${r.overdue ? ' <span class="gm-tag gm-tag-red">逾期</span>' : ''}` +
    `${r.pending_kind ? ` <span class="gm-tag" data-pending="${esc(r.pending_kind)}">${esc(PENDING_NAMES[r.pending_kind] || '待审批')}</span>` : ''}</td>` +
    `<td>${esc(where)}</td>` +
    `<td>${esc(fmtTime(r.reported_at))}<div class="gm-muted">${esc(SOURCE_NAMES[r.source] || '')}</div></td>` +
    `<td>${r.due_at ? `${esc(fmtTime(r.due_at))}${due ? `<div class="${r.overdue ? 'gm-error' : 'gm-muted'}">${esc(due)}</div>` : ''}` : '<span class="gm-muted">—</span>'}</td>` +
    `<td>${handler(r)}</td></tr>`
  );
}

function renderRows() {
  const body = $('desk-rows');
  body.innerHTML = state.items.length
    ? state.items.map(rowHtml).join('')
    : `<tr><td colspan="8" class="gm-empty desk-empty"><i class="fa-solid fa-circle-check"></i> 此队列暂无隐患</td></tr>`;
  for (const th of document.querySelectorAll('#desk-table th[data-sort]')) {
    const on = th.getAttribute('data-sort') === state.sort;
    th.classList.toggle('desk-sorted', on);
    th.setAttribute('aria-sort', on ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    th.setAttribute('data-arrow', on ? (state.order === 'asc' ? '▲' : '▼') : '');
  }
  const more = state.items.length < state.matched;
  $('desk-foot').innerHTML =
    `<span data-gm="matched">共 ${state.matched} 条</span>` +
    (more ? ` · <button type="button" class="gm-link" id="desk-more">加载更多</button>` : '');
}

/** Load the current queue; keep=true reloads what is shown and keeps the scroll position. */
async function loadRows(keep) {
  const wrap = $('desk-tablewrap');
  const scroll = wrap.scrollTop;
  const limit = keep ? Math.max(PAGE, state.items.length) : PAGE;
  const mine = ++rowsSeq;
  try {
    const res = await api(`/api/v1/queues/${state.queue}`, {
      ...filterParams(),
      sort: state.sort,
      order: state.order,
      limit,
      offset: 0,
    }, { cache: 'no-store' });
    if (mine !== rowsSeq) return;
    state.items = res.items;
    state.matched = res.number_matched;
    renderRows();
    wrap.scrollTop = keep ? scroll : 0;
    document.body.setAttribute('data-rows-for', state.queue);
  } catch (e) {
    if (e.status === 401) onSignedOut();
    else toast(`加载失败：${errorText(e)}`, 'error');
  }
}

async function loadMore() {
  const mine = rowsSeq; // a reload meanwhile makes this page stale
  try {
    const res = await api(`/api/v1/queues/${state.queue}`, {
      ...filterParams(),
      sort: state.sort,
      order: state.order,
      limit: PAGE,
      offset: state.items.length,
    });
    if (mine !== rowsSeq) return;
    state.items = state.items.concat(res.items);
    state.matched = res.number_matched;
    renderRows();
  } catch (e) {
    toast(`加载失败：${errorText(e)}`, 'error');
  }
}

function wide() {
  return window.matchMedia('(min-width: 901px)').matches;
}

/** Open a hazard (or a grid) on the map: beside the table, or as the map screen on a phone. */
function openOnMap(kind, id) {
  if (kind === 'hazard') {
    state.selected = id;
    for (const tr of document.querySelectorAll('#desk-rows tr')) tr.classList.toggle('desk-selected', +tr.getAttribute('data-hazard-id') === id);
  }
  save();
  if (wide()) {
    const frame = $('desk-map');
    frame.contentWindow.location.hash = `#${kind}=${id}`;
  } else {
    location.href = `/map#${kind}=${id}`;
  }
}

async function fillFilters() {
  const sel = (gm) => document.querySelector(`[data-gm="${gm}"]`);
  const opts = (pairs) => pairs.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
  sel('f-category').innerHTML = `<option value="">全部</option>${opts(cfg.hazardCategories.map((c) => [c.code, c.name]))}`;
  sel('f-severity').innerHTML = `<option value="">全部</option>${opts(Object.entries(cfg.severities).map(([k, s]) => [k, s.name]))}`;
  sel('f-source').innerHTML = `<option value="">全部</option>${opts(Object.entries(SOURCE_NAMES))}`;
  try {
    const res = await api('/api/v1/units', { level: 'community' });
    sel('f-community').innerHTML = `<option value="">全部</option>${opts(res.items.map((u) => [u.id, u.name]))}`;
  } catch (e) {
    /* left at 全部 */
  }
  await fillGrids();
  for (const [k, v] of Object.entries(state.filters)) {
    const el = document.querySelector(`#desk-filters [name="${k}"]`);
    if (el) el.value = v;
  }
}

async function fillGrids() {
  const grid = document.querySelector('[data-gm="f-grid"]');
  const community = state.filters.community;
  grid.innerHTML = '<option value="">全部</option>';
  grid.disabled = !community;
  if (!community) return;
  try {
    const res = await api('/api/v1/units', { level: 'grid', within: community });
    grid.innerHTML += res.items.map((u) => `<option value="${u.id}">${esc(u.name)}</option>`).join('');
    grid.value = state.filters.grid;
  } catch (e) {
    /* left at 全部 */
  }
}

function selectQueue(queue) {
  state.queue = queue;
  state.items = [];
  renderTabs();
  save();
  refreshCounts(); // the table is fetched now: its badge must not say otherwise
  loadRows(false);
}

function bindUi() {
  $('desk-queues').addEventListener('click', (e) => {
    const b = e.target.closest('[data-queue]');
    if (b) selectQueue(b.getAttribute('data-queue'));
  });
  $('desk-filters').addEventListener('change', async (e) => {
    const { name, value } = e.target;
    if (!name) return;
    state.filters[name] = value;
    if (name === 'community') {
      state.filters.grid = '';
      await fillGrids();
    }
    save();
    refreshCounts();
    loadRows(false);
  });
  $('desk-filter-reset').addEventListener('click', async () => {
    for (const k of Object.keys(state.filters)) state.filters[k] = '';
    for (const el of document.querySelectorAll('#desk-filters select, #desk-filters input')) el.value = '';
    await fillGrids();
    save();
    refreshCounts();
    loadRows(false);
  });
  document.querySelector('#desk-table thead').addEventListener('click', (e) => {
    const th = e.target.closest('th[data-sort]');
    if (!th) return;
    const key = th.getAttribute('data-sort');
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else {
      state.sort = key;
      state.order = key === 'reported_at' || key === 'severity' ? 'desc' : 'asc';
    }
    save();
    loadRows(false);
  });
  $('desk-rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-hazard-id]');
    if (tr) openOnMap('hazard', +tr.getAttribute('data-hazard-id'));
  });
  $('desk-rows').addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr[data-hazard-id]');
    if (tr && e.key === 'Enter') openOnMap('hazard', +tr.getAttribute('data-hazard-id'));
  });
  $('desk-foot').addEventListener('click', (e) => {
    if (e.target.id === 'desk-more') loadMore();
  });
  const saveSoon = () => {
    clearTimeout(bindUi.t);
    bindUi.t = setTimeout(save, 200);
  };
  $('desk-tablewrap').addEventListener('scroll', saveSoon);
  window.addEventListener('scroll', saveSoon, { passive: true });
  // Leaving for the map screen (a phone): keep where the list was, whatever the timer.
  window.addEventListener('pagehide', save);
  // A move made in the map beside us: counts and the table follow at once.
  window.addEventListener('message', (e) => {
    if (e.origin !== location.origin || !e.data || e.data.type !== 'gm:hazard-changed') return;
    refreshCounts();
    loadRows(true);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && started) {
      refreshCounts();
      loadRows(true);
    }
  });
  setInterval(() => {
    if (!document.hidden && started) refreshCounts();
  }, REFRESH_MS);
  bindSearch($('gm-search'), $('gm-search-results'), {
    levels: Object.fromEntries(cfg.levels.map((l) => [l.level, l])),
    onChoose: (item) => {
      if (item.kind === 'hazard' || item.kind === 'address') openOnMap('hazard', item.id);
      else openOnMap('grid', item.kind === 'grid' ? item.id : item.grid_id);
    },
  });
}

async function start(me) {
  if (started) {
    refreshCounts();
    loadRows(true);
    return;
  }
  started = true;
  restore();
  if (!state.queue) state.queue = me.role === 'grid_leader' || me.role === 'field_staff' ? 'mine' : 'to_accept';
  renderTabs();
  bindUi();
  mountOrders();
  await fillFilters();
  await Promise.all([refreshCounts(), loadRows(false)]);
  if (state.scroll) scrollTop(state.scroll);
  if (state.selected && wide()) $('desk-map').src = `/map?embed=1&mode=desk#hazard=${state.selected}`;
  document.body.setAttribute('data-desk-ready', '1');
}

/** The session ended (logged out elsewhere, expired): show the login card again. */
function onSignedOut() {
  refreshSession();
}

mountUserBar($('gm-user'), { current: 'desk' });
staffGate($('desk'), '工作台', start);
