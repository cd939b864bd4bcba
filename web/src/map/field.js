/* field.js: field mode (a phone in the street): where am I, report a hazard here (a tapped
 * point or my GPS position, with category, severity, description and photos), and my tasks
 * nearby, nearest first, with AMap navigation. */

import { api, ApiError } from '../lib/api.js';
import { drop, submit } from '../lib/outbox.js';
import { convert, distanceM } from '../lib/datum.js';
import { $, esc, loadingHtml, show, toast, uuid } from '../lib/dom.js';
import { fmtDistance } from '../lib/format.js';
import { errorText } from '../lib/i18n.js';
import { bindLoginForm, whoAmI } from '../lib/session.js';
import { fromView, GM, toView } from './context.js';
import { drawMe, heatPoints } from './overlays.js';
import { closeFieldSheets, fieldModeChanged, initFieldwork } from './fieldwork.js';
import { hazardItemHtml, navLink, showHazard } from './panel.js';
import { initPatrol } from './patrol.js';
import { dropCachedTiles } from './tiles.js';
import { onDatumChange } from './view.js';

export function setField(on) {
  GM.state.field = on;
  document.body.classList.toggle('gm-field', on);
  show('gm-fieldbar', on);
  $('gm-field-btn').classList.toggle('gm-on', on);
  fieldModeChanged();
}

let watchId = null;

/** Where am I: GPS position on the map (and followed while the page is open). */
export function locateMe(fly) {
  const { map, state } = GM;
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      toast('此浏览器不支持定位', 'error');
      reject(new Error('no geolocation'));
      return;
    }
    // A running watch keeps the position current (it reports only changes, so asking for a
    // fresh fix could wait for the phone to move).
    if (watchId !== null && state.me) {
      if (fly) map.flyTo(toView(state.me.lon, state.me.lat), Math.max(map.getZoom(), 17), { duration: 0.6 });
      resolve(state.me);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        state.me = { lon: pos.coords.longitude, lat: pos.coords.latitude, acc: pos.coords.accuracy };
        drawMe();
        if (fly) map.flyTo(toView(state.me.lon, state.me.lat), Math.max(map.getZoom(), 17), { duration: 0.6 });
        if (watchId === null && navigator.geolocation.watchPosition) {
          watchId = navigator.geolocation.watchPosition(
            (p) => {
              state.me = { lon: p.coords.longitude, lat: p.coords.latitude, acc: p.coords.accuracy };
              drawMe();
            },
            () => {},
            { enableHighAccuracy: true, maximumAge: 15000 }
          );
        }
        resolve(state.me);
      },
      (err) => {
        toast(`无法获取位置：${err.code === 1 ? '未允许定位权限' : '定位超时'}（定位需要 HTTPS 或本机访问）`, 'error');
        reject(err);
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 10000 }
    );
  });
}
GM.locateMe = locateMe;

// ---- reporting
let reportPoint = null; // {lon, lat, crs, accuracy}
let reportPin = null;
export let picking = false;
let idempotencyKey = null;

export function startPick() {
  closeSheets();
  picking = true;
  show('gm-pick', true);
  document.body.classList.add('gm-picking');
}

function endPick() {
  picking = false;
  show('gm-pick', false);
  document.body.classList.remove('gm-picking');
}

function placeReportPin() {
  const { map } = GM;
  if (reportPin) map.removeLayer(reportPin);
  reportPin = null;
  if (!reportPoint) return;
  const w = convert(reportPoint.lon, reportPoint.lat, reportPoint.crs === 'gcj02' ? 'gcj02' : 'wgs84', 'wgs84');
  reportPin = L.marker(toView(w[0], w[1]), {
    icon: L.divIcon({ className: 'gm-pin', html: '<i class="fa-solid fa-location-dot"></i>', iconSize: [30, 40], iconAnchor: [15, 38] }),
    keyboard: false,
    interactive: false,
  }).addTo(map);
}
onDatumChange(placeReportPin);

export function clearReport() {
  reportPoint = null;
  placeReportPin();
}

/** Open the form for a point given in the map's datum (a tap) or in WGS84 (GPS). */
export async function openReport(point) {
  endPick();
  closeSheets();
  reportPoint = point;
  idempotencyKey = uuid();
  placeReportPin();
  $('gm-report-form').reset();
  $('gm-report-photos-text').textContent = '拍照或选择照片';
  show('gm-report-error', false);
  const where = $('gm-report-where');
  where.innerHTML = loadingHtml('正在确定所属网格…');
  show('gm-sheet-report', true);
  const params = { lon: point.lon.toFixed(7), lat: point.lat.toFixed(7) };
  if (point.crs === 'gcj02') params.crs = 'gcj02';
  try {
    const loc = await api('/api/v1/locate', params);
    const chain = loc.chain || [];
    const fine = chain[chain.length - 1];
    const lead = fine && (fine.people || []).find((p) => p.is_primary);
    where.innerHTML =
      `<i class="fa-solid fa-location-dot"></i> ${chain.map((c) => esc(c.name)).join(' › ')}` +
      (lead ? `<div class="gm-muted">网格负责人 ${esc(lead.role_name)} ${esc(lead.name)}${lead.work_phone ? ` · ${esc(lead.work_phone)}` : ''}</div>` : '') +
      (point.accuracy ? `<div class="gm-muted">GPS 精度约 ${Math.round(point.accuracy)} 米</div>` : '');
    where.setAttribute('data-grid-id', fine ? fine.id : '');
  } catch (e) {
    where.innerHTML =
      e instanceof ApiError && e.status === 0
        ? '<span class="gm-offline-note"><i class="fa-solid fa-wifi"></i> 离线：上报将保存在手机中，联网后自动发送并确定所属网格</span>'
        : '<span class="gm-error">此位置不在任何网格内，无法上报</span>';
  }
}
GM.openReport = openReport;

export function reportHereFromMap(latlng) {
  openReport({ lon: latlng.lng, lat: latlng.lat, crs: GM.datum });
}

function initReportForm() {
  const { cfg } = GM;
  const sel = $('gm-report-category');
  const groups = {};
  for (const c of cfg.hazardCategories) (groups[c.reportClass] = groups[c.reportClass] || []).push(c);
  sel.innerHTML =
    '<option value="">请选择类别</option>' +
    Object.keys(groups)
      .map(
        (rc) =>
          `<optgroup label="${esc(cfg.reportClasses[rc] || rc)}">${groups[rc].map((c) => `<option value="${esc(c.code)}">${esc(c.name)}</option>`).join('')}</optgroup>`
      )
      .join('');
  $('gm-report-severity').innerHTML =
    '<option value="">按类别默认</option>' +
    Object.keys(cfg.severities)
      .map((k) => `<option value="${k}">${esc(cfg.severities[k].name)}</option>`)
      .join('');
  $('gm-report-photos').addEventListener('change', (e) => {
    const n = e.target.files ? e.target.files.length : 0;
    $('gm-report-photos-text').textContent = n ? `已选 ${Math.min(n, 5)} 张照片${n > 5 ? '（只取前 5 张）' : ''}` : '拍照或选择照片';
  });
  sel.addEventListener('change', () => {
    const c = cfg.hazardCategories.find((x) => x.code === sel.value);
    if (c) $('gm-report-severity').options[0].textContent = `按类别默认（${(cfg.severities[c.severity] || {}).name}）`;
  });
  $('gm-report-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitReport();
  });
}

async function submitReport() {
  const err = $('gm-report-error');
  show(err, false);
  const category = $('gm-report-category').value;
  const description = $('gm-report-description').value.trim();
  if (!reportPoint) return;
  if (!category || !description) {
    err.textContent = !category ? '请选择隐患类别' : '请填写描述';
    show(err, true);
    return;
  }
  const fields = {
    category,
    lon: +reportPoint.lon.toFixed(7),
    lat: +reportPoint.lat.toFixed(7),
    crs: reportPoint.crs === 'gcj02' ? 'gcj02' : 'wgs84',
    description,
  };
  if (reportPoint.accuracy) fields.accuracy_m = Math.round(reportPoint.accuracy * 10) / 10;
  const severity = $('gm-report-severity').value;
  if (severity) fields.severity = severity;
  const name = $('gm-report-name').value.trim();
  const phone = $('gm-report-phone').value.trim();
  if (name) fields.reporter_name = name;
  if (phone) fields.reporter_phone = phone;
  // The time the user saw it (a report made offline arrives later) and the running patrol.
  fields.observed_at = new Date().toISOString();
  if (GM.state.patrolRef) fields.patrol_ref = GM.state.patrolRef;
  const files = Array.from($('gm-report-photos').files || []).slice(0, 5);
  const btn = $('gm-report-submit');
  btn.disabled = true;
  btn.textContent = '正在提交…';
  const name_ = (GM.cfg.hazardCategories.find((c) => c.code === category) || {}).name || category;
  // Through the outbox: sent at once when the network is there, kept on the phone if not.
  const outcome = await submit({
    kind: 'report',
    label: `${name_}：${description.slice(0, 30)}`,
    url: '/api/v1/hazards',
    fields,
    photos: files,
    key: idempotencyKey,
  });
  btn.disabled = false;
  btn.textContent = '提交上报';
  if (outcome.state === 'sent') {
    const f = outcome.data;
    const p = (f && f.properties) || {};
    closeSheets();
    clearReport();
    // Say what really happened: the report waits for the community to accept it.
    toast(`已上报 ${p.public_code || ''}，待社区受理`, 'ok', 6000);
    refreshHazards();
    if (f && f.id) showHazard(f.id);
  } else if (outcome.state === 'queued') {
    closeSheets();
    clearReport();
    toast('离线：上报已保存在手机中，联网后自动发送', 'ok', 6000);
  } else {
    // Refused while the user is still on the form: they correct it and send it again.
    await drop(outcome.item.seq);
    idempotencyKey = uuid();
    err.textContent = `上报失败：${errorText(outcome.error)}`;
    show(err, true);
  }
}

/** After a write: forget cached hazard tiles and revalidate them with the server. */
export function refreshHazards() {
  const { map, refs } = GM;
  heatPoints.clear();
  for (const k of ['hazards', 'grids_micro_grid', 'grids_grid']) {
    dropCachedTiles(k);
    refs.layers[k].options.fetchOptions = { cache: 'no-cache', priority: 'low' };
    if (map.hasLayer(refs.layers[k])) refs.layers[k].redraw();
  }
}
GM.refreshHazards = refreshHazards;

export function closeSheets() {
  show('gm-sheet-report', false);
  show('gm-sheet-tasks', false);
  closeFieldSheets();
}

// ---- my tasks nearby
async function loadTasks() {
  const { map, state } = GM;
  closeSheets();
  show('gm-sheet-tasks', true);
  const body = $('gm-tasks-body');
  body.innerHTML = loadingHtml('正在获取任务…');
  show('gm-login-form', false);
  const near = state.me ? [state.me.lon, state.me.lat] : fromView(map.getCenter());
  const me = await whoAmI();
  if (me.anonymous) {
    body.innerHTML = '';
    show('gm-login-form', true);
    return;
  }
  try {
    const res = await api('/api/v1/me/tasks', { near: `${near[0].toFixed(6)},${near[1].toFixed(6)}` });
    const items = (res && res.features) || [];
    if (!items.length) {
      body.innerHTML = '<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> 附近暂无待办任务</p>';
      return;
    }
    body.innerHTML = `<ul class="gm-tasks" data-gm="task-list">${items
      .map((f) => {
        const p = f.properties;
        const c = f.geometry && f.geometry.coordinates;
        const d = p.distance_m != null ? p.distance_m : c ? distanceM(near, c) : null;
        const item = hazardItemHtml(f, d != null ? fmtDistance(d) : '');
        const nav = c || p.navigation_url ? `<div class="gm-row gm-task-nav">${navLink(c, p.category_name, p.navigation_url)}</div>` : '';
        return item.replace(/<\/li>$/, `${nav}</li>`);
      })
      .join('')}</ul>`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      body.innerHTML = '';
      show('gm-login-form', true);
    } else {
      body.innerHTML = `<p class="gm-error">获取任务失败：${esc(errorText(e))}</p>`;
    }
  }
}
GM.loadTasks = loadTasks;

export function initField() {
  const { map } = GM;
  initReportForm();
  $('gm-field-btn').addEventListener('click', () => setField(!GM.state.field));
  $('gm-locate').addEventListener('click', () => locateMe(true).catch(() => {}));
  $('gm-report').addEventListener('click', startPick);
  $('gm-tasks').addEventListener('click', loadTasks);
  $('gm-pick-cancel').addEventListener('click', endPick);
  $('gm-pick-ok').addEventListener('click', () => reportHereFromMap(map.getCenter()));
  $('gm-pick-gps').addEventListener('click', () =>
    locateMe(true).then(
      (me) => openReport({ lon: me.lon, lat: me.lat, crs: 'wgs84', accuracy: me.acc }),
      () => {}
    )
  );
  bindLoginForm($('gm-login-form'), $('gm-login-error'), loadTasks);
  initFieldwork();
  initPatrol();
  const auto = new URLSearchParams(location.search).get('mode');
  setField(auto === 'field' || (auto !== 'desk' && window.matchMedia && matchMedia('(max-width: 640px)').matches));
  for (const id of ['gm-fieldbar', 'gm-pick', 'gm-sheet-report', 'gm-sheet-tasks', 'gm-panel', 'gm-sheet-duties', 'gm-sheet-visit', 'gm-sheet-move', 'gm-sheet-outbox', 'gm-outbox', 'gm-patrol-banner']) {
    L.DomEvent.disableClickPropagation($(id));
    L.DomEvent.disableScrollPropagation($(id));
  }
}
