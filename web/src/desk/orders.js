/* desk/orders.js: the workbench's 三单制 queue. Residents' service orders (群众点单) of the
 * user's scope by state — 待派单, 已派单, 已接单, 待评价, 已评价 — with their counts; a row
 * opens the order below the table with its history and the moves its state allows (from the
 * order machine in the page config): 派单 to a volunteer or partner unit of the order's
 * community (社区派单), 接单 and 拒单 recorded for the volunteer (党员接单), 完成 with the hours
 * served, the resident's 评价, and 取消 with a reason. */

import { api } from '../lib/api.js';
import { $, esc, pageConfig, toast } from '../lib/dom.js';
import { fmtTime } from '../lib/format.js';
import { errorText } from '../lib/i18n.js';

const cfg = pageConfig();
// The states the queue is split by; a closed order is 已评价 or 已取消.
const STATES = ['ordered', 'dispatched', 'taken', 'done', 'rated', 'cancelled'];
const RATINGS = [
  ['satisfied', '满意'],
  ['basically_satisfied', '基本满意'],
  ['dissatisfied', '不满意'],
];
const PAGE = 50;

const state = { status: 'ordered', items: [], selected: null, shown: false };

function moveAllowed(action, status) {
  const m = cfg.orderMoves.find((x) => x.action === action);
  return Boolean(m && m.from.includes(status));
}

function moveName(action) {
  const m = cfg.orderMoves.find((x) => x.action === action);
  return m ? m.name_zh : action;
}

function renderStates(counts) {
  $('desk-order-states').innerHTML = STATES.map(
    (s) =>
      `<button type="button" class="desk-tab${s === state.status ? ' desk-tab-on' : ''}" data-order-status="${s}">` +
      `${esc(cfg.orderStatuses[s])}<span class="desk-badge" data-order-count="${s}">${counts[s] == null ? '…' : counts[s]}</span></button>`
  ).join('');
}

/** The number of orders in every state (one light request per state). */
async function refreshCounts() {
  const counts = {};
  await Promise.all(
    STATES.map(async (s) => {
      try {
        counts[s] = (await api('/api/v1/orders', { status: s, limit: 1 }, { cache: 'no-store' })).numberMatched;
      } catch (e) {
        counts[s] = '—';
      }
    })
  );
  renderStates(counts);
  const waiting = document.querySelector('[data-kind-count="orders"]');
  if (waiting) waiting.textContent = counts.ordered;
}

function assignee(p) {
  if (p.volunteer) return `${esc(p.volunteer.name)}${p.volunteer.party_member ? ' <span class="gm-tag">党员</span>' : ''}`;
  if (p.partner) return `${esc(p.partner.name)}`;
  return '<span class="gm-muted">—</span>';
}

function rowHtml(f) {
  const p = f.properties;
  return (
    `<tr data-order-id="${f.id}" class="${f.id === state.selected ? 'desk-selected' : ''}" tabindex="0">` +
    `<td class="gm-code">${esc(p.public_code)}</td>` +
    `<td>${esc(cfg.services[p.service_type] || p.service_type)}</td>` +
    `<td><span class="gm-status">${esc(p.status_name)}</span></td>` +
    `<td>${esc([p.community && p.community.name, p.grid_name].filter(Boolean).join(' › '))}</td>` +
    `<td>${esc(fmtTime(p.ordered_at))}</td>` +
    `<td>${assignee(p)}</td></tr>`
  );
}

async function loadRows() {
  try {
    const res = await api('/api/v1/orders', { status: state.status, limit: PAGE }, { cache: 'no-store' });
    state.items = res.features;
    $('desk-order-rows').innerHTML = state.items.length
      ? state.items.map(rowHtml).join('')
      : '<tr><td colspan="6" class="gm-empty desk-empty"><i class="fa-solid fa-circle-check"></i> 此状态暂无服务点单</td></tr>';
    $('desk-order-foot').innerHTML = `<span>共 ${res.numberMatched} 单</span>`;
    document.body.setAttribute('data-orders-for', state.status);
  } catch (e) {
    toast(`加载失败：${errorText(e)}`, 'error');
  }
}

/** Who the order can go to: the volunteers and partner units of its community. */
async function assigneeOptions(p) {
  const grid = p.community ? p.community.id : p.grid_id;
  const [vols, units] = await Promise.all([
    api('/api/v1/volunteers', { grid, limit: 200 }, { cache: 'no-store' }),
    api('/api/v1/partners', { grid, limit: 200 }, { cache: 'no-store' }),
  ]);
  const v = vols.items
    .filter((x) => x.active)
    .map((x) => `<option value="v:${x.id}">${esc(x.name)}${x.party_member ? '（党员）' : ''} · ${esc(x.skills.join('、') || '—')}</option>`);
  const u = units.items.filter((x) => x.active).map((x) => `<option value="p:${x.id}">${esc(x.name)} · ${esc(x.offers.join('、') || '—')}</option>`);
  return (v.length ? `<optgroup label="志愿者">${v.join('')}</optgroup>` : '') + (u.length ? `<optgroup label="共建单位">${u.join('')}</optgroup>` : '');
}

function historyHtml(p) {
  return `<ol class="desk-order-history">${p.history
    .map((h) => `<li>${esc(fmtTime(h.at))} ${esc(h.action === 'order' ? '点单' : moveName(h.action))}${h.actor ? ` · ${esc(h.actor)}` : ''}${h.note ? `：${esc(h.note)}` : ''}</li>`)
    .join('')}</ol>`;
}

async function formsHtml(p) {
  const parts = [];
  if (moveAllowed('dispatch', p.status)) {
    parts.push(
      `<form data-order-move="dispatch"><label>派给<select name="who" data-gm="o-assignee" required>${await assigneeOptions(p)}</select></label>` +
        `<button type="submit" class="gm-btn gm-go">${esc(moveName('dispatch'))}</button></form>`
    );
  }
  if (moveAllowed('take', p.status)) parts.push(`<form data-order-move="take"><button type="submit" class="gm-btn gm-go">${esc(moveName('take'))}</button></form>`);
  if (moveAllowed('finish', p.status)) {
    parts.push(
      `<form data-order-move="finish"><label>服务时长（小时）<input name="hours" type="number" min="0.25" max="24" step="0.25" required data-gm="o-hours"></label>` +
        `<button type="submit" class="gm-btn gm-go">${esc(moveName('finish'))}</button></form>`
    );
  }
  if (moveAllowed('rate', p.status)) {
    parts.push(
      `<form data-order-move="rate"><label>居民评价<select name="rating" data-gm="o-rating">${RATINGS.map(([k, n]) => `<option value="${k}">${n}</option>`).join('')}</select></label>` +
        `<button type="submit" class="gm-btn gm-go">${esc(moveName('rate'))}</button></form>`
    );
  }
  for (const action of ['decline', 'cancel']) {
    if (!moveAllowed(action, p.status)) continue;
    parts.push(
      `<form data-order-move="${action}"><label>${action === 'cancel' ? '取消原因' : '拒单原因'}<input name="note" maxlength="4000" required></label>` +
        `<button type="submit" class="gm-btn">${esc(moveName(action))}</button></form>`
    );
  }
  return parts.join('');
}

async function openOrder(id) {
  state.selected = id;
  for (const tr of document.querySelectorAll('#desk-order-rows tr')) tr.classList.toggle('desk-selected', +tr.getAttribute('data-order-id') === id);
  const box = $('desk-order-detail');
  try {
    const f = (await api(`/api/v1/orders/${id}`, null, { cache: 'no-store' })).features[0];
    const p = f.properties;
    const resident = p.resident ? [p.resident.name, p.resident.phone].filter(Boolean).join(' · ') : '';
    box.innerHTML =
      `<header data-order-id="${f.id}" data-order-status="${p.status}" data-version="${p.version}"><b class="gm-code">${esc(p.public_code)}</b> ` +
      `${esc(cfg.services[p.service_type] || p.service_type)} · <span class="gm-status">${esc(p.status_name)}</span></header>` +
      `<p>${esc(p.description)}</p>` +
      (p.address ? `<p class="gm-muted">${esc(p.address)}</p>` : '') +
      (resident ? `<p class="gm-muted">居民：${esc(resident)}</p>` : '') +
      (p.hours ? `<p>服务时长 ${esc(p.hours)} 小时</p>` : '') +
      `<div class="desk-order-forms">${await formsHtml(p)}</div>` +
      historyHtml(p);
    box.hidden = false;
    // The map beside the table shows the grid the order came from (where the service goes).
    const frame = $('desk-map');
    if (frame && window.matchMedia('(min-width: 901px)').matches && p.grid_id) frame.contentWindow.location.hash = `#grid=${p.grid_id}`;
  } catch (e) {
    box.innerHTML = `<p class="gm-muted">${esc(errorText(e))}</p>`;
  }
}

async function submitMove(form) {
  const head = $('desk-order-detail').querySelector('header[data-order-id]');
  const id = +head.getAttribute('data-order-id');
  const body = { action: form.getAttribute('data-order-move'), version: +head.getAttribute('data-version') };
  const data = new FormData(form);
  if (data.get('who')) {
    const [kind, key] = data.get('who').split(':');
    body[kind === 'v' ? 'volunteer_id' : 'partner_id'] = +key;
  }
  if (data.get('hours')) body.hours = +data.get('hours');
  if (data.get('rating')) body.rating = data.get('rating');
  if (data.get('note')) body.note = data.get('note');
  try {
    const res = await api(`/api/v1/orders/${id}/actions`, null, { method: 'POST', body });
    toast(`${moveName(body.action)}成功：${res.status_name}`, 'ok');
    await Promise.all([refreshCounts(), loadRows()]);
    await openOrder(id);
  } catch (e) {
    toast(`${moveName(body.action)}失败：${errorText(e)}`, 'error');
    await openOrder(id);
  }
}

function showKind(kind) {
  state.shown = kind === 'orders';
  for (const b of document.querySelectorAll('[data-kind]')) {
    const on = b.getAttribute('data-kind') === kind;
    b.classList.toggle('desk-tab-on', on);
    b.setAttribute('aria-selected', String(on));
  }
  for (const id of ['desk-queues', 'desk-filters', 'desk-tablewrap']) $(id).hidden = state.shown;
  $('desk-orders').hidden = !state.shown;
  if (state.shown) {
    refreshCounts();
    loadRows();
  }
}

/** Bind the 隐患 / 三单制 switch and the order queue (once, when the desk starts). */
export function mountOrders() {
  $('desk-kinds').addEventListener('click', (e) => {
    const b = e.target.closest('[data-kind]');
    if (b) showKind(b.getAttribute('data-kind'));
  });
  $('desk-order-states').addEventListener('click', (e) => {
    const b = e.target.closest('[data-order-status]');
    if (!b) return;
    state.status = b.getAttribute('data-order-status');
    $('desk-order-detail').hidden = true;
    refreshCounts();
    loadRows();
  });
  $('desk-order-rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-order-id]');
    if (tr) openOrder(+tr.getAttribute('data-order-id'));
  });
  $('desk-order-detail').addEventListener('submit', (e) => {
    e.preventDefault();
    submitMove(e.target);
  });
  refreshCounts();
}
