/* panel.js: the side panel (a bottom sheet on phones): a grid with its chain, leaders and
 * phones, counts and open hazards; or a hazard with its handler, deadline, photos, history
 * and the moves this user may make on it (actions.js). */

import { api, getHazard } from '../lib/api.js';
import { $, esc, loadingHtml, show } from '../lib/dom.js';
import { ago, dueText, fmtTime } from '../lib/format.js';
import { ACTION_NAMES, errorText, SOURCE_NAMES } from '../lib/i18n.js';
import { wgs2gcj } from '../lib/datum.js';
import { renderActions } from './actions.js';
import { categoryName, crsParam, GM, levelInfo } from './context.js';
import { setSelection } from './overlays.js';
import { flyToGeometry, flyToPoint, writeHash } from './view.js';

let panelToken = 0;
export let lastGrid = null; // {id, geometry, point}

export function openPanel(html) {
  $('gm-panel-body').innerHTML = html;
  show('gm-panel', true);
  document.body.classList.add('gm-panel-open');
}

export function closePanel() {
  show('gm-panel', false);
  document.body.classList.remove('gm-panel-open');
  GM.state.selected = null;
  setSelection(null);
  writeHash();
}

/** The finest grid of the chain whose level is drawn at this zoom. */
function pickLevel(chain) {
  const z = GM.map.getZoom();
  let pick = chain[chain.length - 1];
  for (let i = chain.length - 1; i >= 0; i--) {
    const lv = levelInfo(chain[i].level);
    if (z >= (lv.minzoom || 0) - 1) return chain[i];
    pick = chain[i];
  }
  return pick;
}

/** A click on the map: which grids cover this point (sent in the map's datum). */
export async function selectAt(latlng) {
  const token = ++panelToken;
  openPanel(loadingHtml());
  try {
    const loc = await api('/api/v1/locate', { lon: latlng.lng.toFixed(7), lat: latlng.lat.toFixed(7), ...crsParam() });
    if (token !== panelToken) return;
    showGrid(pickLevel(loc.chain).id, { specials: loc.special_grids || [], point: latlng });
  } catch (e) {
    if (token !== panelToken) return;
    const near = e.body && e.body.details && e.body.details.nearest_grid;
    openPanel(
      '<div class="gm-empty"><i class="fa-solid fa-circle-info"></i> 此处不在任何网格内。' +
        (near
          ? `<br>最近的网格：<a href="#grid=${near.id}" data-grid="${near.id}">${esc(near.name)}</a>（约 ${Math.round(near.distance_m)} 米）`
          : '') +
        '</div>'
    );
  }
}

function peopleHtml(people) {
  if (!people || !people.length) return '<p class="gm-muted">暂无登记的负责人</p>';
  const sorted = people.slice().sort((a, b) => (b.is_primary ? 1 : 0) - (a.is_primary ? 1 : 0));
  return `<ul class="gm-people">${sorted
    .map((p, i) => {
      const lead = i === 0 && p.is_primary;
      return (
        `<li${p.is_primary ? ' class="gm-primary-person"' : ''}>` +
        `<span class="gm-role">${esc(p.role_name || p.role)}</span>` +
        `<b${lead ? ' data-gm="leader-name"' : ''}>${esc(p.name)}</b>` +
        (p.is_primary ? '<span class="gm-tag">主责</span>' : '') +
        (p.work_phone
          ? `<a class="gm-phone" href="tel:${esc(p.work_phone)}"${lead ? ' data-gm="leader-phone"' : ''}><i class="fa-solid fa-phone"></i> ${esc(p.work_phone)}</a>`
          : '') +
        '</li>'
      );
    })
    .join('')}</ul>`;
}

export function severityBadge(sev) {
  const s = GM.cfg.severities[sev] || { name: sev || '—', color: '#777' };
  return `<span class="gm-sev gm-sev-${esc(sev)}" style="background:${esc(s.color)}">${esc(s.name)}</span>`;
}

/** One hazard of a list (grid panel, tasks). */
export function hazardItemHtml(f, extra) {
  const p = f.properties || f;
  const id = f.id != null ? f.id : p.id;
  const due = dueText(p, GM.cfg.clockStatuses);
  return (
    `<li class="gm-hz${p.overdue ? ' gm-overdue' : ''}">` +
    `<a href="#hazard=${id}" data-hazard="${id}">${severityBadge(p.severity)}` +
    `<span class="gm-hz-name">${esc(p.category_name || categoryName(p.category))}</span>` +
    `<span class="gm-status">${esc(p.status_name || GM.cfg.statuses[p.status] || p.status)}</span>` +
    (p.overdue ? '<span class="gm-tag gm-tag-red">逾期</span>' : '') +
    `<span class="gm-hz-meta">${esc(p.public_code || '')}${p.reported_at ? ` · ${esc(ago(p.reported_at))}` : ''}${extra ? ` · ${esc(extra)}` : ''}${due ? ` · ${esc(due)}` : ''}</span>` +
    '</a></li>'
  );
}

function countsHtml(sub) {
  const cells = [
    ['未结隐患', sub.open_hazards, 'open-count', sub.open_hazards > 0 ? 'gm-warn' : ''],
    ['逾期', sub.overdue_hazards, 'overdue-count', sub.overdue_hazards > 0 ? 'gm-bad' : ''],
    ['部件', sub.facilities, 'facility-count', ''],
    ['人员', sub.people, 'people-count', ''],
  ];
  return `<div class="gm-stats">${cells
    .map((c) => `<div class="gm-stat ${c[3]}"><b data-gm="${c[2]}">${esc(c[1] == null ? '—' : c[1])}</b><span>${c[0]}</span></div>`)
    .join('')}</div>`;
}

function chipsHtml(obj, names, icons) {
  const keys = Object.keys(obj || {}).sort((a, b) => obj[b] - obj[a]);
  if (!keys.length) return '';
  return `<div class="gm-chips">${keys
    .map((k) => {
      const ic = icons && icons[k];
      return `<span class="gm-chip">${ic ? `<i class="fa-solid fa-${esc(ic.icon)}" style="color:${esc(ic.color)}"></i> ` : ''}${esc(names(k))} <b>${esc(obj[k])}</b></span>`;
    })
    .join('')}</div>`;
}

function attributesHtml(a) {
  if (!a) return '';
  const rows = [];
  if (a.households != null) rows.push(['户数', a.households]);
  if (a.population != null) rows.push(['人口', a.population]);
  if (a.building) {
    if (a.building.floors) rows.push(['楼层', a.building.floors]);
    if (a.building.built_year) rows.push(['建成', a.building.built_year]);
    if (a.building.property_company) rows.push(['物业', a.building.property_company]);
  }
  if (a.unmanaged_compound) rows.push(['性质', '无主管楼院']);
  if (a.kind && !a.building) rows.push(['类型', a.kind]);
  if (!rows.length) return '';
  return `<table class="gm-attrs">${rows.map((r) => `<tr><th>${esc(r[0])}</th><td>${esc(r[1])}</td></tr>`).join('')}</table>`;
}

function chainHtml(chain, currentId) {
  return (chain || [])
    .map((c) => {
      const cur = c.id === currentId;
      const label = `<small>${esc(levelInfo(c.level).name)}</small> ${esc(c.name)}`;
      return cur ? `<b>${label}</b>` : `<a href="#grid=${c.id}" data-grid="${c.id}">${label}</a>`;
    })
    .join('<span class="gm-sep">›</span>');
}

/** Show one grid: its feature, summary and open hazards, fetched now. */
export async function showGrid(id, opts = {}) {
  const token = ++panelToken;
  GM.state.selected = { kind: 'grid', id };
  writeHash();
  openPanel(loadingHtml());
  try {
    const [feat, sum, hz] = await Promise.all([
      api(`/api/v1/grids/${id}`),
      api(`/api/v1/grids/${id}/summary`),
      api(`/api/v1/grids/${id}/hazards`, { limit: 50, ...crsParam() }),
    ]);
    if (token !== panelToken) return;
    const p = feat.properties;
    const lv = levelInfo(p.level);
    setSelection(feat.geometry);
    if (opts.fly) flyToGeometry(feat.geometry, opts.fly !== 'instant');
    const sub = sum.subtree || {};
    const hazards = hz.features || [];
    const more =
      (hz.numberMatched || 0) > hazards.length ? `<p class="gm-muted">共 ${hz.numberMatched} 条，显示最近 ${hazards.length} 条</p>` : '';
    const children = sub.grids_by_level || {};
    const specials = (opts.specials || [])
      .map((s) => `<a class="gm-chip" href="#grid=${s.id}" data-grid="${s.id}"><i class="fa-solid fa-building-flag"></i> ${esc(s.name)}</a>`)
      .join('');
    const { statuses, facilityTypes } = GM.cfg;
    openPanel(
      `<header class="gm-ph" data-grid-id="${id}">` +
        `<span class="gm-level" style="background:${esc(lv.color)}">${esc(p.level_name || lv.name)}</span>` +
        `<h2 data-gm="grid-name">${esc(p.name)}</h2><div class="gm-code" data-gm="grid-code">${esc(p.code)}</div></header>` +
        `<nav class="gm-chain" data-gm="chain">${chainHtml(p.chain, id)}</nav>` +
        (specials ? `<div class="gm-specials"><span class="gm-muted">专属网格：</span>${specials}</div>` : '') +
        `<section><h3>负责人</h3>${peopleHtml(sum.people || p.people)}</section>` +
        countsHtml(sub) +
        (Object.keys(children).length
          ? `<p class="gm-muted gm-children">下辖：${Object.keys(children).map((k) => `${esc(levelInfo(k).name)} ${children[k]} 个`).join('，')}</p>`
          : '') +
        `<section><h3>未结隐患 <span class="gm-count">${esc(sub.open_hazards)}</span></h3>` +
        (hazards.length
          ? `<ul class="gm-hazards" data-gm="hazard-list">${hazards.map((f) => hazardItemHtml(f)).join('')}</ul>${more}`
          : '<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> 暂无未结隐患</p>') +
        '</section>' +
        (Object.keys(sub.open_hazards_by_category || {}).length
          ? `<section><h3>按类别</h3>${chipsHtml(sub.open_hazards_by_category, categoryName)}${chipsHtml(sub.open_hazards_by_status, (k) => statuses[k] || k)}</section>`
          : '') +
        (Object.keys(sub.facilities_by_type || {}).length
          ? `<section><h3>部件</h3>${chipsHtml(sub.facilities_by_type, (k) => (facilityTypes[k] || {}).name || k, facilityTypes)}</section>`
          : '') +
        (attributesHtml(p.attributes) ? `<section><h3>基本信息</h3>${attributesHtml(p.attributes)}</section>` : '') +
        '<div class="gm-actions">' +
        '<button type="button" class="gm-btn" data-action="zoom-grid"><i class="fa-solid fa-expand"></i> 缩放至网格</button>' +
        '<button type="button" class="gm-btn gm-primary" data-action="report-here"><i class="fa-solid fa-triangle-exclamation"></i> 在此上报</button>' +
        '</div>'
    );
    lastGrid = { id, geometry: feat.geometry, point: opts.point || null };
  } catch (e) {
    if (token !== panelToken) return;
    openPanel(`<div class="gm-error">查询失败：${esc(errorText(e))}</div>`);
  }
}

/** An AMap navigation link (opens the AMap app on a phone); AMap wants GCJ-02. */
export function navLink(wgs, name, given) {
  let href = given;
  if (!href) {
    const g = wgs2gcj(wgs[0], wgs[1]);
    href = `https://uri.amap.com/navigation?to=${g[0].toFixed(6)},${g[1].toFixed(6)},${encodeURIComponent(name || '隐患位置')}&mode=walk&coordinate=gaode&callnative=1&src=gis-service`;
  }
  return `<a class="gm-btn" href="${esc(href)}" target="_blank" rel="noopener"><i class="fa-solid fa-diamond-turn-right"></i> 高德导航</a>`;
}

function photosHtml(list) {
  return (list || [])
    .map((ph) => {
      // The list shows thumbnails; a tap opens the full photo.
      const thumb = ph.thumbnail_url || ph.url;
      return thumb
        ? `<a href="${esc(ph.url || thumb)}" target="_blank" rel="noopener"><img src="${esc(thumb)}" alt="照片" loading="lazy"></a>`
        : '';
    })
    .join('');
}

function historyHtml(p) {
  return (p.history || [])
    .map((h) => {
      const what = ACTION_NAMES[h.action] || GM.cfg.statuses[h.to_status] || h.action;
      const photos = photosHtml(h.photos);
      return (
        `<li data-action="${esc(h.action)}"><span class="gm-when">${esc(fmtTime(h.at))}</span> <b>${esc(what)}</b>` +
        (h.actor ? ` · <span class="gm-actor">${esc(h.actor)}</span>` : '') +
        (h.extension ? `<div class="gm-muted" data-gm="extension">申请延长 ${esc(h.extension)}</div>` : '') +
        (h.new_due_at ? `<div class="gm-muted" data-gm="new-due">新期限 ${esc(fmtTime(h.new_due_at))}</div>` : '') +
        (h.note ? `<div class="gm-muted">${esc(h.note)}</div>` : '') +
        (photos ? `<div class="gm-photos gm-photos-small">${photos}</div>` : '') +
        '</li>'
      );
    })
    .join('');
}

const REQUEST_NAMES = { extension: '延期申请', suspension: '缓办申请', send_back: '退回申请', void: '作废申请' };

/** The request waiting for a decision: what is asked, by whom, why (the approver decides on it). */
function pendingHtml(p) {
  const r = p.pending_request;
  if (!r) return '';
  const parts = [
    r.extension ? `申请延长 <b>${esc(r.extension)}</b>` : '',
    r.requester ? `申请人 ${esc(r.requester)}` : '',
    `${esc(fmtTime(r.requested_at))}`,
  ].filter(Boolean);
  return (
    `<div class="gm-pending" data-gm="pending" data-kind="${esc(r.kind)}"><b>待审批：${esc(REQUEST_NAMES[r.kind] || r.kind)}</b>` +
    `<div>${parts.join(' · ')}</div>${r.reason ? `<div class="gm-muted">理由：${esc(r.reason)}</div>` : ''}</div>`
  );
}

/** Who handles the case now: the assignee and/or the department, or what it waits for. */
function handlerRows(p) {
  const rows = [];
  const a = p.assignee;
  const d = p.assignee_department;
  if (a) {
    rows.push([
      '处置人',
      `<span data-gm="handler">${esc(a.name)}</span>${a.work_phone ? ` <a href="tel:${esc(a.work_phone)}">${esc(a.work_phone)}</a>` : ''}`,
    ]);
  }
  if (d) rows.push(['处置部门', `<span data-gm="handler-department">${esc(d.name)}</span>`]);
  if (!a && !d && (p.status === 'reported' || p.status === 'accepted')) {
    rows.push(['处置人', `<span class="gm-muted" data-gm="handler">${p.status === 'reported' ? '待社区受理' : '待派遣'}</span>`]);
  }
  return rows;
}

function hazardHtml(f, id) {
  const p = f.properties;
  const { statuses, clockStatuses } = GM.cfg;
  const due = dueText(p, clockStatuses);
  const rows = [
    ['上报', `${esc(fmtTime(p.reported_at))}（${esc(ago(p.reported_at))}）${p.source ? ` · ${esc(SOURCE_NAMES[p.source] || p.source)}` : ''}`],
  ];
  if (p.address) rows.push(['地址', esc(p.address)]);
  if (p.reporter && (p.reporter.name || p.reporter.phone)) {
    rows.push([
      '上报人',
      `${esc(p.reporter.name || '')}${p.reporter.phone ? ` <a href="tel:${esc(p.reporter.phone)}">${esc(p.reporter.phone)}</a>` : ''}`,
    ]);
  }
  for (const r of handlerRows(p)) rows.push(r);
  if (p.due_at && p.status !== 'closed' && p.status !== 'rejected') {
    rows.push(['期限', `<span data-gm="due">${esc(fmtTime(p.due_at))}${due ? `（${esc(due)}）` : ''}</span>`]);
  }
  if (p.status === 'closed' && p.closed_at) rows.push(['结案时间', `<span data-gm="closed-at">${esc(fmtTime(p.closed_at))}</span>`]);
  if (p.duplicate_of) rows.push(['重复于', `<a href="#hazard=${p.duplicate_of.id}" data-hazard="${p.duplicate_of.id}">${esc(p.duplicate_of.public_code)}</a>`]);
  const chain = chainHtml(p.grid_chain, null);
  const photos = photosHtml(p.photos);
  const history = historyHtml(p);
  return (
    `<header class="gm-ph" data-hazard-id="${id}" data-status="${esc(p.status)}" data-version="${esc(p.version)}">` +
    '<span class="gm-level" style="background:#c62828">隐患</span>' +
    `<h2>${esc(p.category_name || categoryName(p.category))}</h2><div class="gm-code" data-gm="hazard-code">${esc(p.public_code)}</div></header>` +
    `<div class="gm-hz-head">${severityBadge(p.severity)}<span class="gm-status" data-gm="status">${esc(p.status_name || statuses[p.status])}</span>` +
    `${p.overdue ? '<span class="gm-tag gm-tag-red">已逾期</span>' : ''}</div>` +
    (p.description ? `<p class="gm-desc">${esc(p.description)}</p>` : '') +
    (photos ? `<div class="gm-photos" data-gm="photos">${photos}</div>` : '') +
    `<table class="gm-attrs">${rows.map((r) => `<tr><th>${r[0]}</th><td>${r[1]}</td></tr>`).join('')}</table>` +
    (chain ? `<nav class="gm-chain">${chain}</nav>` : '') +
    pendingHtml(p) +
    '<section id="gm-moves" class="gm-moves" data-gm="moves"></section>' +
    (history ? `<section><h3>办理经过</h3><ol class="gm-history" data-gm="history">${history}</ol></section>` : '') +
    '<div class="gm-actions">' +
    (p.grid_id ? `<a class="gm-btn" href="#grid=${p.grid_id}" data-grid="${p.grid_id}"><i class="fa-solid fa-arrow-left"></i> 所属网格</a>` : '') +
    (f.geometry ? navLink(f.geometry.coordinates, p.category_name) : '') +
    '</div>'
  );
}

/**
 * Show one hazard (by id or public code): status, handler, deadline, photos, history and
 * the moves this user may make. opts.fly: move the map to it; opts.notice: a line on top
 * (e.g. "someone else moved it first").
 */
export async function showHazard(ref, opts = {}) {
  const token = ++panelToken;
  if (!opts.keep) openPanel(loadingHtml());
  try {
    const { feature: f, etag } = await getHazard(ref);
    if (token !== panelToken) return;
    const id = f.id;
    GM.state.selected = { kind: 'hazard', id };
    setSelection(f.geometry);
    if (opts.fly && f.geometry) {
      const c = f.geometry.coordinates;
      flyToPoint(c[0], c[1], opts.fly !== 'instant');
    }
    writeHash();
    openPanel((opts.notice ? `<div class="gm-notice" data-gm="notice">${esc(opts.notice)}</div>` : '') + hazardHtml(f, id));
    renderActions($('gm-moves'), f, etag, {
      reload: (notice) => showHazard(id, { keep: true, notice }),
      changed: () => hazardChanged(id),
    });
  } catch (e) {
    if (token !== panelToken) return;
    openPanel(`<div class="gm-error">查询失败：${esc(errorText(e))}</div>`);
  }
}

const changeListeners = [];
/** Run fn(id) after this user moved a hazard (tiles are refreshed, the workbench told). */
export function onHazardChanged(fn) {
  changeListeners.push(fn);
}

function hazardChanged(id) {
  for (const fn of changeListeners) fn(id);
}

GM.showGrid = showGrid;
GM.showHazard = showHazard;
GM.selectAt = selectAt;
