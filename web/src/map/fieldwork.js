/* fieldwork.js: the field worker's day on the phone, online or not.
 *
 * - 今日 (duties): hazards assigned to me (nearest first) with 处置 / 反馈, people due for a
 *   visit today (今日待访) or overdue (逾期未访) with 走访, my patrol; each with AMap navigation.
 * - 走访 (visit form): findings, tick list of needs, photos, and optionally a hazard or a
 *   service need raised in the same step.
 * - 待发送 (outbox): what waits for the network, with conflicts and refusals shown, not dropped.
 * - The offline pack (/api/v1/me/offline: my micro-grids, people under care, open tasks) is
 *   kept in IndexedDB, so all of the above works with no network; it is cleared at logout.
 */

import { api, ApiError } from '../lib/api.js';
import { distanceM } from '../lib/datum.js';
import { $, esc, loadingHtml, show, toast } from '../lib/dom.js';
import { fmtDistance } from '../lib/format.js';
import { errorText } from '../lib/i18n.js';
import { del, get, put } from '../lib/idb.js';
import { drop, onChange, retry, startSending, status, submit } from '../lib/outbox.js';
import { onSession, whoAmI } from '../lib/session.js';
import { fromView, GM, toView } from './context.js';
import { navLink } from './panel.js';
import { activePatrol, onPatrol, patrolSummary, startPatrol, stopPatrol } from './patrol.js';

const PACK = 'pack';
const MOVES = {
  dispatched: { action: 'start', name: '开始处置', to: 'in_progress', noteLabel: '处置说明（可选）', note: false },
  in_progress: { action: 'resolve', name: '处置反馈', to: 'resolved', noteLabel: '处置情况', note: true },
};
const KIND_NAMES = { report: '隐患上报', visit: '走访记录', move: '隐患办理', patrol: '巡查轨迹' };

let pack = null; // {user, at, data}
const shown = new Map(); // tasks on the duties sheet now, by id
let visitPerson = null;
let moveTask = null;

// ---- the offline pack ---------------------------------------------------------------------
async function loadPack(me) {
  const stored = await get('kv', PACK);
  pack = stored && me && stored.user === me.id ? stored : null;
  drawMyGrids();
  return pack;
}

async function savePack() {
  if (pack) await put('kv', pack, PACK);
}

/** Fetch my area's pack when the network allows, and keep it on the phone. */
export async function syncPack() {
  const me = await whoAmI();
  if (me.anonymous || me.offline || me.kind !== 'user') return loadPack(me);
  try {
    const data = await api('/api/v1/me/offline', null, { cache: 'no-store', priority: 'low' });
    pack = { user: me.id, at: new Date().toISOString(), data };
    // Work already queued on this phone stays applied to the fresh copy.
    await applyQueued();
    await savePack();
  } catch (e) {
    await loadPack(me);
  }
  drawMyGrids();
  return pack;
}

async function applyQueued() {
  const { items } = await status();
  for (const item of items) applyLocally(item);
}

/** What a queued write changes, applied to the pack (so the lists agree with the user). */
function applyLocally(item) {
  if (!pack) return;
  const data = pack.data;
  if (item.kind === 'visit') {
    const p = data.people.find((x) => x.id === +item.fields.person_id);
    if (p) {
      p.last_visit_at = item.fields.visited_at;
      p.due_status = 'later';
      p.due_status_name = '已走访';
      p.days_overdue = 0;
      p.visited_here = true;
    }
  } else if (item.kind === 'move' && item.hazard) {
    const t = data.tasks.find((x) => x.id === item.hazard.id);
    if (t && MOVES[t.properties.status] && MOVES[t.properties.status].action === item.fields.action) {
      t.properties.status = MOVES[t.properties.status].to;
      t.properties.version += 1;
      t.properties.queued = true;
    }
  }
}

let gridLayer = null;

/** My micro-grids from the pack, tinted by overdue visits (red), due today (amber). */
function drawMyGrids() {
  if (!GM.map) return;
  if (gridLayer) GM.map.removeLayer(gridLayer);
  gridLayer = null;
  if (!pack || !GM.state.field) return;
  const fc = pack.data.micro_grids;
  gridLayer = L.geoJSON(fc, {
    pane: 'gm-grids',
    interactive: false,
    coordsToLatLng: (c) => toView(c[0], c[1]),
    style: (f) => {
      const p = f.properties;
      const color = p.overdue > 0 ? '#d32f2f' : p.due_today > 0 ? '#f9a825' : p.people > 0 ? '#2e7d32' : '#6d4c41';
      return { color, weight: 1.5, fillColor: color, fillOpacity: p.people > 0 ? 0.18 : 0.04 };
    },
  }).addTo(GM.map);
}

// ---- the duties sheet ---------------------------------------------------------------------
function here() {
  if (GM.state.me) return [GM.state.me.lon, GM.state.me.lat];
  return fromView(GM.map.getCenter());
}

function dueLine(p) {
  if (p.visited_here) return '<span class="gm-tag gm-tag-green">已走访（待发送）</span>';
  if (p.due_status === 'overdue') return `<span class="gm-tag gm-tag-red">逾期 ${esc(p.days_overdue)} 天</span>`;
  if (p.due_status === 'today') return '<span class="gm-tag gm-tag-amber">今日待访</span>';
  return `<span class="gm-tag">下次 ${esc(p.next_due || '')}</span>`;
}

function personItem(p, near) {
  const d = p.location ? distanceM(near, p.location) : null;
  return (
    `<li class="gm-duty" data-person="${p.id}"><div class="gm-duty-head"><b>${esc(p.name)}</b> ` +
    `${p.category_names.map((c) => `<span class="gm-tag">${esc(c)}</span>`).join('')} ${dueLine(p)}</div>` +
    `<div class="gm-muted">${esc(p.household.address)}${d != null ? ` · ${esc(fmtDistance(d))}` : ''}</div>` +
    '<div class="gm-row">' +
    `<button type="button" class="gm-btn gm-primary" data-visit="${p.id}"><i class="fa-solid fa-house-user"></i> 走访</button>` +
    (p.location ? navLink(p.location, `${p.household.address}`, p.navigation_url) : '') +
    '</div></li>'
  );
}

function taskItem(f, near) {
  const p = f.properties;
  const c = f.geometry && f.geometry.coordinates;
  const d = c ? distanceM(near, c) : null;
  const move = MOVES[p.status];
  return (
    `<li class="gm-duty" data-task="${f.id}"><div class="gm-duty-head">` +
    `<a href="#hazard=${f.id}" data-hazard="${f.id}"><b>${esc(p.category_name)}</b></a> ` +
    `<span class="gm-status">${esc(p.queued ? `${GM.cfg.statuses[p.status] || p.status}（待发送）` : p.status_name)}</span>` +
    (p.overdue ? ' <span class="gm-tag gm-tag-red">逾期</span>' : '') +
    `</div><div class="gm-muted">${esc(p.public_code)} · ${esc(p.grid_name || '')}${d != null ? ` · ${esc(fmtDistance(d))}` : ''}</div>` +
    '<div class="gm-row">' +
    (move ? `<button type="button" class="gm-btn gm-primary" data-duty-move="${f.id}">${esc(move.name)}</button>` : '') +
    (c ? navLink(c, p.category_name, p.navigation_url) : '') +
    '</div></li>'
  );
}

function patrolHtml(today) {
  const p = activePatrol();
  const line = p ? `<b>巡查中</b> · ${esc(patrolSummary(p))}` : '未在巡查';
  const done = today
    ? `<div class="gm-muted">今日已上传 ${esc(today.patrols)} 次 · ${(today.distance_m / 1000).toFixed(2)} 公里</div>`
    : '';
  return (
    `<div class="gm-duty" data-gm="patrol-status"><div>${line}</div>${done}<div class="gm-row">` +
    (p
      ? '<button type="button" class="gm-btn" data-gm="duty-patrol-stop"><i class="fa-solid fa-stop"></i> 结束巡查</button>'
      : '<button type="button" class="gm-btn gm-primary" data-gm="duty-patrol-start"><i class="fa-solid fa-person-walking"></i> 开始巡查</button>') +
    '</div></div>'
  );
}

function renderDuties(d, offline) {
  const near = here();
  const sortNear = (list, loc) =>
    list.slice().sort((a, b) => {
      const la = loc(a);
      const lb = loc(b);
      return (la ? distanceM(near, la) : 1e12) - (lb ? distanceM(near, lb) : 1e12);
    });
  const tasks = sortNear(d.tasks, (f) => f.geometry && f.geometry.coordinates);
  shown.clear();
  for (const t of tasks) shown.set(t.id, t);
  const today = sortNear(d.today, (p) => p.location);
  const overdue = sortNear(d.overdue, (p) => p.location);
  const empty = (text) => `<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> ${text}</p>`;
  $('gm-duties-body').innerHTML =
    (offline ? '<p class="gm-offline-note"><i class="fa-solid fa-wifi"></i> 离线：显示手机中保存的数据，办理结果将在联网后发送</p>' : '') +
    `<h3>我的任务 <span class="gm-count">${tasks.length}</span></h3>` +
    (tasks.length ? `<ul class="gm-duties" data-gm="duty-tasks">${tasks.map((f) => taskItem(f, near)).join('')}</ul>` : empty('暂无待办任务')) +
    `<h3>今日待访 <span class="gm-count">${today.length}</span></h3>` +
    (today.length ? `<ul class="gm-duties" data-gm="duty-today">${today.map((p) => personItem(p, near)).join('')}</ul>` : empty('今日无待访对象')) +
    `<h3>逾期未访 <span class="gm-count gm-count-red">${overdue.length}</span></h3>` +
    (overdue.length ? `<ul class="gm-duties" data-gm="duty-overdue">${overdue.map((p) => personItem(p, near)).join('')}</ul>` : empty('没有逾期未访的对象')) +
    '<h3>巡查</h3>' +
    patrolHtml(d.patrol);
}

function dutiesFromPack() {
  const data = pack.data;
  const people = data.people.filter((p) => !p.visited_here);
  return {
    tasks: data.tasks,
    today: people.filter((p) => p.due_status === 'today'),
    overdue: people.filter((p) => p.due_status === 'overdue'),
    patrol: null,
  };
}

/** Open 今日: online from the API (then the pack is refreshed), offline from the pack. */
export async function openDuties() {
  closeFieldSheets();
  show('gm-sheet-duties', true);
  const body = $('gm-duties-body');
  const me = await whoAmI();
  if (me.anonymous) {
    body.innerHTML = '<p class="gm-muted">请先登录工作账号（右上角）。</p>';
    return;
  }
  body.innerHTML = loadingHtml('正在获取今日工作…');
  const near = here();
  try {
    if (me.offline) throw new ApiError(0, { code: 'network' });
    const d = await api('/api/v1/me/duties', { near: `${near[0].toFixed(6)},${near[1].toFixed(6)}` }, { cache: 'no-store' });
    await syncPack();
    const queued = pack ? pack.data : null;
    const visited = new Set(queued ? queued.people.filter((p) => p.visited_here).map((p) => p.id) : []);
    const tasks = queued ? d.tasks.map((t) => queued.tasks.find((q) => q.id === t.id && q.properties.queued) || t) : d.tasks;
    renderDuties({ tasks, today: d.visits.today.filter((p) => !visited.has(p.id)), overdue: d.visits.overdue.filter((p) => !visited.has(p.id)), patrol: d.patrol }, false);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 0) {
      body.innerHTML = `<p class="gm-error">${esc(errorText(e))}</p>`;
      return;
    }
    if (!pack) await loadPack(me);
    if (!pack) {
      body.innerHTML = '<p class="gm-error">离线且手机中没有保存的数据：请在有网络时打开一次“今日”。</p>';
      return;
    }
    renderDuties(dutiesFromPack(), true);
  }
}

// ---- visits -------------------------------------------------------------------------------
function findPerson(id) {
  return pack && pack.data.people.find((p) => p.id === id);
}

function needsHtml() {
  const needs = (pack && pack.data.needs) || [];
  return needs
    .map((n) => `<label class="gm-chip gm-chip-check"><input type="checkbox" name="needs" value="${esc(n.code)}"><span>${esc(n.name)}</span></label>`)
    .join('');
}

/** The visit form for one person under care. */
export async function openVisit(personId) {
  const person = findPerson(personId);
  if (!person) {
    toast('手机中没有此对象的资料，请联网后刷新“今日”', 'error');
    return;
  }
  visitPerson = person;
  closeFieldSheets();
  $('gm-visit-form').reset();
  $('gm-visit-who').innerHTML =
    `<b>${esc(person.name)}</b> ${person.category_names.map((c) => `<span class="gm-tag">${esc(c)}</span>`).join('')}` +
    `<div class="gm-muted">${esc(person.household.address)}${person.phone ? ` · ${esc(person.phone)}` : ''}</div>`;
  $('gm-visit-needs').innerHTML = needsHtml();
  $('gm-visit-photos-text').textContent = '拍照或选择照片';
  show('gm-visit-error', false);
  show('gm-sheet-visit', true);
  // A fresh GPS fix for the visit's place, if the phone gives one quickly.
  if (GM.locateMe && !GM.state.me) GM.locateMe(false).catch(() => {});
}

async function submitVisit() {
  const err = $('gm-visit-error');
  show(err, false);
  const person = visitPerson;
  if (!person) return;
  const fields = {
    person_id: person.id,
    visited_at: new Date().toISOString(),
    findings: $('gm-visit-findings').value.trim() || undefined,
    needs: Array.from(document.querySelectorAll('#gm-visit-needs input:checked')).map((i) => i.value),
  };
  if (GM.state.me) {
    fields.lon = +GM.state.me.lon.toFixed(7);
    fields.lat = +GM.state.me.lat.toFixed(7);
    if (GM.state.me.acc) fields.accuracy_m = Math.round(GM.state.me.acc * 10) / 10;
  }
  const category = $('gm-visit-hazard-category').value;
  const hazardText = $('gm-visit-hazard-description').value.trim();
  if (category || hazardText) {
    if (!category || !hazardText) {
      err.textContent = '随走访上报隐患，请选择类别并填写描述';
      show(err, true);
      return;
    }
    fields.hazard_category = category;
    fields.hazard_description = hazardText;
  }
  const need = $('gm-visit-service').value.trim();
  const serviceType = $('gm-visit-service-type').value;
  if (serviceType && !need) {
    err.textContent = '点单请填写服务需求的具体内容';
    show(err, true);
    return;
  }
  if (need) fields.service_need = need;
  if (need && serviceType) fields.service_type = serviceType;
  if (GM.state.patrolRef) fields.patrol_ref = GM.state.patrolRef;
  if (!fields.findings && !fields.needs.length && !fields.hazard_category) {
    err.textContent = '请填写走访情况或勾选需求';
    show(err, true);
    return;
  }
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  const photos = Array.from($('gm-visit-photos').files || []).slice(0, 5);
  const btn = $('gm-visit-submit');
  btn.disabled = true;
  const outcome = await submit({ kind: 'visit', label: `走访 ${person.name}`, url: '/api/v1/visits', fields, photos });
  btn.disabled = false;
  if (outcome.state === 'failed' || outcome.state === 'conflict') {
    // Refused while the user is still on the form: they correct it and send it again.
    await drop(outcome.item.seq);
    err.textContent = `走访记录未被接受：${errorText(outcome.error)}`;
    show(err, true);
    return;
  }
  applyLocally({ kind: 'visit', fields });
  await savePack();
  show('gm-sheet-visit', false);
  if (outcome.state === 'sent') {
    const d = outcome.data;
    const order = d.service_need && d.service_need.order;
    toast(
      `已记录对 ${person.name} 的走访${d.hazard ? `，隐患 ${d.hazard.public_code} 已上报` : ''}${order ? `，服务单 ${order.public_code} 已生成` : ''}`,
      'ok',
      6000
    );
  }
  else toast('离线：走访记录已保存在手机中，联网后自动发送', 'ok', 6000);
}

// ---- moves on my tasks (处置, 反馈) ----------------------------------------------------------
function findTask(id) {
  return (pack && pack.data.tasks.find((t) => t.id === id)) || shown.get(id);
}

/** The form of the next move on one of my tasks. */
export function openMove(hazardId) {
  const task = findTask(hazardId);
  const move = task && MOVES[task.properties.status];
  if (!move) {
    toast('此任务当前无需您办理', 'error');
    return;
  }
  moveTask = task;
  closeFieldSheets();
  $('gm-move-form').reset();
  $('gm-move-title').textContent = `${move.name} · ${task.properties.public_code}`;
  $('gm-move-label').firstChild.textContent = `${move.noteLabel} `;
  $('gm-move-what').textContent = `${task.properties.category_name} · ${task.properties.description || ''}`;
  show('gm-move-error', false);
  show('gm-sheet-move', true);
}

async function submitMove() {
  const task = moveTask;
  if (!task) return;
  const move = MOVES[task.properties.status];
  const err = $('gm-move-error');
  const note = $('gm-move-note').value.trim();
  if (move.note && !note) {
    err.textContent = `请填写${move.noteLabel}`;
    show(err, true);
    return;
  }
  const photos = Array.from($('gm-move-photos').files || []).slice(0, 5);
  const item = {
    kind: 'move',
    label: `${move.name} ${task.properties.public_code}`,
    url: `/api/v1/hazards/${task.id}/actions`,
    headers: { 'If-Match': `"${task.properties.version}"` },
    fields: { action: move.action, occurred_at: new Date().toISOString(), ...(note ? { note } : {}) },
    photos,
    hazard: { id: task.id, public_code: task.properties.public_code, version: task.properties.version },
  };
  const outcome = await submit(item);
  applyLocally(item);
  await savePack();
  show('gm-sheet-move', false);
  if (outcome.state === 'sent') toast(`${move.name}已提交`, 'ok');
  else if (outcome.state === 'queued') toast(`离线：${move.name}已保存，联网后自动发送`, 'ok', 6000);
  else if (outcome.state === 'conflict') toast('此隐患已被他人处理，请在“待发送”中查看', 'error', 8000);
  else toast(`提交失败：${errorText(outcome.error)}`, 'error', 8000);
}

// ---- the outbox sheet and badge -----------------------------------------------------------
function outboxItemHtml(item) {
  const when = new Date(item.created_at).toLocaleString('zh-CN', { hour12: false });
  let state = '<span class="gm-tag">等待发送</span>';
  let actions = '';
  if (item.state === 'conflict') {
    state = '<span class="gm-tag gm-tag-red">冲突</span>';
    actions =
      `<p class="gm-error">此隐患在您离线期间已被他人处理${item.error && item.error.status_name ? `（现为“${esc(item.error.status_name)}”）` : '（状态已变）'}，本次办理未提交。请查看最新状态后重新办理。</p><div class="gm-row">` +
      (item.hazard ? `<a class="gm-btn" href="#hazard=${item.hazard.id}" data-hazard="${item.hazard.id}">查看隐患</a>` : '') +
      `<button type="button" class="gm-btn" data-drop="${item.seq}">放弃此项</button></div>`;
  } else if (item.state === 'failed') {
    state = '<span class="gm-tag gm-tag-red">未被接受</span>';
    actions =
      `<p class="gm-error">${esc(errorText(new ApiError(item.error.status, item.error)))}</p>` +
      `<div class="gm-row"><button type="button" class="gm-btn" data-retry="${item.seq}">重试</button>` +
      `<button type="button" class="gm-btn" data-drop="${item.seq}">放弃此项</button></div>`;
  }
  return (
    `<li class="gm-duty" data-outbox="${item.seq}" data-state="${item.state}"><div class="gm-duty-head">` +
    `<b>${esc(KIND_NAMES[item.kind] || item.kind)}</b> ${state}</div>` +
    `<div class="gm-muted">${esc(item.label || '')} · ${esc(when)}${item.photos.length ? ` · ${item.photos.length} 张照片` : ''}</div>${actions}</li>`
  );
}

function renderOutbox(s) {
  const badge = $('gm-outbox');
  const n = s.total;
  show(badge, n > 0);
  badge.classList.toggle('gm-outbox-problem', s.problems > 0);
  $('gm-outbox-count').textContent = String(n);
  $('gm-outbox-text').textContent = s.problems ? `${s.problems} 项需处理` : s.blocked === 'login' ? '待发送（请登录）' : '待发送';
  if (!$('gm-sheet-outbox').hidden) {
    $('gm-outbox-body').innerHTML = s.items.length
      ? (s.blocked === 'network' ? '<p class="gm-offline-note">网络未连接，联网后将按顺序自动发送。</p>' : '') +
        (s.blocked === 'login' ? '<p class="gm-error">登录已过期：请重新登录后继续发送。</p>' : '') +
        `<ul class="gm-duties">${s.items.map(outboxItemHtml).join('')}</ul>`
      : '<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> 全部已发送</p>';
  }
}

let lastStatus = null;

function openOutbox() {
  closeFieldSheets();
  show('gm-sheet-outbox', true);
  if (lastStatus) renderOutbox(lastStatus);
}

// ---- wiring -------------------------------------------------------------------------------
export function closeFieldSheets() {
  for (const id of ['gm-sheet-duties', 'gm-sheet-visit', 'gm-sheet-move', 'gm-sheet-outbox']) show(id, false);
}

function initForms() {
  // 三单制: with a service type the need becomes an order the community dispatches.
  $('gm-visit-service-type').innerHTML =
    '<option value="">（仅记录需求，由社区确定服务）</option>' +
    Object.entries(GM.cfg.services || {}).map(([code, name]) => `<option value="${esc(code)}">${esc(name)}</option>`).join('');
  const sel = $('gm-visit-hazard-category');
  sel.innerHTML =
    '<option value="">（不上报）</option>' + GM.cfg.hazardCategories.map((c) => `<option value="${esc(c.code)}">${esc(c.name)}</option>`).join('');
  for (const [input, text] of [
    ['gm-visit-photos', 'gm-visit-photos-text'],
    ['gm-move-photos', 'gm-move-photos-text'],
  ]) {
    $(input).addEventListener('change', (e) => {
      const n = e.target.files ? e.target.files.length : 0;
      $(text).textContent = n ? `已选 ${Math.min(n, 5)} 张照片` : '拍照或选择照片';
    });
  }
  $('gm-visit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitVisit();
  });
  $('gm-move-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitMove();
  });
}

/** Register the service worker and hand it what this page loaded (the app shell). */
async function installShell() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  try {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    const reg = await navigator.serviceWorker.ready;
    const urls = [
      location.pathname,
      ...performance
        .getEntriesByType('resource')
        .map((e) => e.name)
        .filter((u) => u.startsWith(`${location.origin}/static/`) || u === `${location.origin}/map/outline.geojson`),
    ];
    navigator.serviceWorker.addEventListener('message', (e) => {
      if (e.data && e.data.type === 'shell-cached') document.documentElement.setAttribute('data-gm-offline-ready', String(e.data.count));
    });
    reg.active.postMessage({ type: 'cache-shell', urls });
  } catch (e) {
    /* no offline shell on this browser: everything else still works */
  }
}

export function initFieldwork() {
  initForms();
  $('gm-duties').addEventListener('click', openDuties);
  $('gm-outbox').addEventListener('click', openOutbox);
  document.addEventListener('click', async (e) => {
    const t = e.target.closest('button[data-visit],button[data-duty-move],button[data-drop],button[data-retry],[data-gm=duty-patrol-start],[data-gm=duty-patrol-stop]');
    if (!t) return;
    e.preventDefault();
    if (t.hasAttribute('data-visit')) openVisit(+t.getAttribute('data-visit'));
    else if (t.hasAttribute('data-duty-move')) openMove(+t.getAttribute('data-duty-move'));
    else if (t.hasAttribute('data-drop')) {
      if (window.confirm('放弃此项？它将不会被发送。')) await drop(+t.getAttribute('data-drop'));
    } else if (t.hasAttribute('data-retry')) retry(+t.getAttribute('data-retry'));
    else if (t.getAttribute('data-gm') === 'duty-patrol-start') {
      await startPatrol();
      openDuties();
    } else if (t.getAttribute('data-gm') === 'duty-patrol-stop') {
      await stopPatrol();
      openDuties();
    }
  });
  onChange((s) => {
    lastStatus = s;
    renderOutbox(s);
  });
  document.addEventListener('gm:outbox-sent', () => {
    if (GM.refreshHazards) GM.refreshHazards();
  });
  document.addEventListener('gm:logout', () => {
    pack = null;
    del('kv', PACK);
    drawMyGrids();
  });
  onPatrol(() => {
    if (!$('gm-sheet-duties').hidden && $('gm-duties-body').querySelector('[data-gm=patrol-status]')) {
      const box = $('gm-duties-body').querySelector('[data-gm=patrol-status]');
      box.outerHTML = patrolHtml(null);
    }
  });
  onSession((me) => {
    if (!me.anonymous) syncPack();
  });
  startSending();
  installShell();
}

/** Field mode turned on or off: my grids drawn or not. */
export function fieldModeChanged() {
  drawMyGrids();
}
