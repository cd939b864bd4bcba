/* filters.js: the hazard filters (status, category, overdue only), facility types, and the
 * legend. Filters apply to the tiles, the icons and the heat map alike. */

import { $, esc, show } from '../lib/dom.js';
import { GM } from './context.js';
import { heatPoints, updateHeat } from './overlays.js';

function chip(name, value, label, checked, extra) {
  return (
    `<label class="gm-chip gm-chip-check"><input type="checkbox" name="${name}" value="${esc(value)}"${checked ? ' checked' : ''}>` +
    `<span>${extra || ''}${esc(label)}</span></label>`
  );
}

export function initFilters() {
  const { cfg, map, refs, state } = GM;
  $('gm-filter-status').innerHTML = cfg.openStatuses.map((s) => chip('status', s, cfg.statuses[s], true)).join('');
  $('gm-filter-category').innerHTML = cfg.hazardCategories.map((c) => chip('category', c.code, c.name, true)).join('');
  $('gm-filter-facility').innerHTML = Object.keys(cfg.facilityTypes)
    .map((k) => {
      const t = cfg.facilityTypes[k];
      return chip('facility', k, t.name, true, `<i class="fa-solid fa-${esc(t.icon)}" style="color:${esc(t.color)}"></i> `);
    })
    .join('');
  const box = $('gm-filters');
  L.DomEvent.disableClickPropagation(box);
  L.DomEvent.disableScrollPropagation(box);
  const read = (name, all) => {
    const checked = Array.from(box.querySelectorAll(`input[name="${name}"]`))
      .filter((i) => i.checked)
      .map((i) => i.value);
    return checked.length === all ? null : checked;
  };
  const apply = () => {
    const f = state.filters;
    f.statuses = read('status', cfg.openStatuses.length);
    f.categories = read('category', cfg.hazardCategories.length);
    f.facilityTypes = read('facility', Object.keys(cfg.facilityTypes).length);
    f.overdue = $('gm-filter-overdue').checked;
    const n = (f.statuses ? 1 : 0) + (f.categories ? 1 : 0) + (f.facilityTypes ? 1 : 0) + (f.overdue ? 1 : 0);
    const dot = $('gm-filter-count');
    dot.textContent = n;
    dot.hidden = !n;
    heatPoints.clear();
    for (const k of ['hazards', 'facilities']) if (map.hasLayer(refs.layers[k])) refs.layers[k].redraw();
    updateHeat();
  };
  box.addEventListener('change', apply);
  $('gm-filter-reset').addEventListener('click', () => {
    for (const i of box.querySelectorAll('input[type=checkbox]')) i.checked = i.id !== 'gm-filter-overdue';
    apply();
  });
  $('gm-filter-btn').addEventListener('click', () => {
    show(box, box.hidden);
    if (!box.hidden) refs.control.collapse();
  });
  GM.applyFilters = apply;
}

export function initLegend() {
  const { cfg } = GM;
  const sev = Object.keys(cfg.severities)
    .map((k) => `<div><span class="gm-sw-dot" style="background:${esc(cfg.severities[k].color)}"></span>${esc(cfg.severities[k].name)}</div>`)
    .join('');
  const lv = cfg.levels
    .map(
      (l) =>
        `<div><span class="gm-sw-line" style="border-color:${esc(l.color)}${l.level === 'special' ? ';border-style:dashed' : ''}"></span>${esc(l.name)}</div>`
    )
    .join('');
  $('gm-legend-body').innerHTML =
    `<div class="gm-label">隐患 · 紧急程度</div>${sev}` +
    '<div><span class="gm-sw-dot gm-sw-overdue"></span>虚线红圈：已逾期</div>' +
    '<div><span class="gm-sw-fill"></span>网格底色越红，未结隐患越多</div>' +
    `<div class="gm-label">网格层级</div>${lv}` +
    `<div class="gm-label">部件</div><div class="gm-muted">小圆点为部件分布（按类型着色），放大到 ${cfg.facilityMarkerZoom} 级显示图标（淡色，隐患始终在上层）</div>`;
  $('gm-legend-toggle').addEventListener('click', () => show('gm-legend-body', $('gm-legend-body').hidden));
  L.DomEvent.disableClickPropagation($('gm-legend'));
  L.DomEvent.disableScrollPropagation($('gm-legend'));
}
