/* dashboard/main.js: the dashboard (统计) a street office puts on its wall screen, drawn with
 * Apache ECharts (served locally, like every library here). Every figure comes from one
 * answer of GET /api/v1/stats/dashboard for the chosen unit and period, unchanged: reported
 * and closed per day or week, by category, by community, 按期结案率 and median time to
 * close per community, the busiest grids, the oldest open hazards and a heat map; below them
 * the 考核评价 panel (assessment.js). */

import { api } from '../lib/api.js';
import { drawAssessment } from './assessment.js';
import { drawVisits, monthOf } from './visits.js';
import { $, esc, pageConfig, show, toast } from '../lib/dom.js';
import { addDays, beijingMidnight, fmtHours, fmtPercent, fmtTime, todayBeijing } from '../lib/format.js';
import { errorText } from '../lib/i18n.js';
import { mountUserBar, staffGate } from '../lib/session.js';

const cfg = pageConfig();
const FONT = getComputedStyle(document.documentElement).getPropertyValue('--gm-font').trim();
const COLORS = { reported: '#1f3b73', closed: '#2e7d32', open: '#ef6c00', rate: '#00838f', median: '#8d6e63' };

const charts = {};
const dash = (window.GMDash = { charts, data: null, ready: false });
let heatMap = null;
let heatLayer = null;
// What the heat layer draws ([lat, lon, weight] each): the tests compare it with the API's.
dash.heatCells = () => (heatLayer ? heatLayer._latlngs.map((c) => [c[0], c[1], c[2]]) : []);
let started = false;

function chart(id) {
  if (!charts[id]) {
    charts[id] = echarts.init($(id), null, { renderer: 'canvas' });
  }
  return charts[id];
}

function base(extra) {
  return {
    textStyle: { fontFamily: FONT },
    tooltip: { trigger: 'axis' },
    grid: { left: 48, right: 24, top: 36, bottom: 40, containLabel: true },
    animation: false,
    ...extra,
  };
}

/** [since, until) of the chosen period, as Beijing dates (until exclusive). */
function period(form) {
  const today = todayBeijing();
  const p = form.period.value;
  if (p === 'custom') {
    const since = form.since.value || addDays(today, -29);
    const until = addDays(form.until.value || today, 1);
    return [since, until];
  }
  if (p === 'month') return [`${today.slice(0, 8)}01`, addDays(today, 1)];
  if (p === 'last-month') {
    const first = `${today.slice(0, 8)}01`;
    const prev = addDays(first, -1);
    return [`${prev.slice(0, 8)}01`, first];
  }
  const days = +p;
  return [addDays(today, -(days - 1)), addDays(today, 1)];
}

function kpis(d) {
  const cells = [
    ['上报', d.total, 'total'],
    ['未结', d.open, 'open'],
    ['已结案', d.closed, 'closed'],
    ['逾期', d.overdue, 'overdue'],
  ];
  $('dash-kpis').innerHTML = cells
    .map(([name, v, key]) => `<div class="gm-card dash-kpi dash-kpi-${key}"><b data-kpi="${key}">${esc(v)}</b><span>${name}</span></div>`)
    .join('');
}

function draw(d) {
  const intervalName = d.interval === 'week' ? '按周' : '按日';
  document.querySelector('[data-gm=d-interval-name]').textContent = intervalName;
  chart('chart-series').setOption(
    base({
      legend: { data: ['上报', '结案'], top: 0 },
      xAxis: { type: 'category', data: d.series.map((s) => s.period) },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: '上报', type: 'bar', data: d.series.map((s) => s.reported), itemStyle: { color: COLORS.reported } },
        { name: '结案', type: 'line', data: d.series.map((s) => s.closed), itemStyle: { color: COLORS.closed }, symbolSize: 6 },
      ],
    }),
    true
  );
  const cats = d.by_category.slice().reverse();
  chart('chart-category').setOption(
    base({
      legend: { data: ['合计', '未结'], top: 0 },
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', data: cats.map((c) => c.name) },
      series: [
        { name: '合计', type: 'bar', data: cats.map((c) => c.total), itemStyle: { color: COLORS.reported } },
        { name: '未结', type: 'bar', data: cats.map((c) => c.open), itemStyle: { color: COLORS.open } },
      ],
    }),
    true
  );
  const comm = d.by_community;
  chart('chart-community').setOption(
    base({
      legend: { data: ['合计', '未结', '已结案'], top: 0 },
      xAxis: { type: 'category', data: comm.map((c) => c.name), axisLabel: { interval: 0, rotate: comm.length > 6 ? 30 : 0 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: '合计', type: 'bar', data: comm.map((c) => c.total), itemStyle: { color: COLORS.reported } },
        { name: '未结', type: 'bar', data: comm.map((c) => c.open), itemStyle: { color: COLORS.open } },
        { name: '已结案', type: 'bar', data: comm.map((c) => c.closed), itemStyle: { color: COLORS.closed } },
      ],
    }),
    true
  );
  chart('chart-ontime').setOption(
    base({
      legend: { data: ['按期结案率', '结案用时中位数（小时）'], top: 0 },
      tooltip: {
        trigger: 'axis',
        valueFormatter: (v) => (v == null ? '—' : v),
      },
      xAxis: { type: 'category', data: comm.map((c) => c.name), axisLabel: { interval: 0, rotate: comm.length > 6 ? 30 : 0 } },
      yAxis: [
        { type: 'value', name: '按期结案率', min: 0, max: 1, axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } },
        { type: 'value', name: '小时' },
      ],
      series: [
        { name: '按期结案率', type: 'bar', data: comm.map((c) => c.on_time_rate), itemStyle: { color: COLORS.rate } },
        { name: '结案用时中位数（小时）', type: 'line', yAxisIndex: 1, data: comm.map((c) => c.median_hours_to_close), itemStyle: { color: COLORS.median } },
      ],
    }),
    true
  );
  const grids = d.by_grid.slice().reverse();
  chart('chart-grid').setOption(
    base({
      legend: { data: ['合计', '未结'], top: 0 },
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', data: grids.map((g) => `${g.context ? `${g.context} › ` : ''}${g.name}`) },
      series: [
        { name: '合计', type: 'bar', data: grids.map((g) => g.total), itemStyle: { color: COLORS.reported } },
        { name: '未结', type: 'bar', data: grids.map((g) => g.open), itemStyle: { color: COLORS.open } },
      ],
    }),
    true
  );
  $('dash-oldest').innerHTML = d.oldest_open.length
    ? `<table class="dash-table"><thead><tr><th>编号</th><th>类别</th><th>状态</th><th>网格</th><th>上报时间</th><th>已过</th><th>处置人</th></tr></thead><tbody>${d.oldest_open
        .map(
          (o) =>
            `<tr data-hazard-id="${o.id}"><td class="gm-code"><a href="/map#hazard=${o.id}">${esc(o.public_code)}</a></td><td>${esc(o.category_name)}</td>` +
            `<td>${esc(o.status_name)}</td><td>${esc(o.grid_name)}</td><td>${esc(fmtTime(o.reported_at))}</td>` +
            `<td data-age="${o.age_days}">${esc(o.age_days)} 天</td><td>${esc(o.handler_name || '—')}</td></tr>`
        )
        .join('')}</tbody></table>`
    : '<p class="gm-muted gm-ok">暂无未结隐患</p>';
  drawHeat(d.heat);
  const rates = comm.filter((c) => c.on_time_rate != null);
  $('dash-title').textContent = rates.length
    ? `各社区按期结案率 ${fmtPercent(Math.min(...rates.map((c) => c.on_time_rate)))} – ${fmtPercent(Math.max(...rates.map((c) => c.on_time_rate)))}` +
      `，结案用时中位数 ${fmtHours(Math.min(...comm.filter((c) => c.median_hours_to_close != null).map((c) => c.median_hours_to_close)))} 起`
    : '';
}

function drawHeat(cells) {
  if (!heatMap) {
    heatMap = L.map('dash-heat', { zoomControl: true, attributionControl: false, preferCanvas: true });
    heatMap.setView([34.72, 113.6], 12);
    api('/map/outline.geojson').then((g) => {
      const layer = L.geoJSON(g, { style: { color: '#1f3b73', weight: 2, fill: true, fillColor: '#f4f6f9', fillOpacity: 1 }, interactive: false }).addTo(heatMap);
      layer.bringToBack();
      if (!heatLayer || !heatLayer._latlngs.length) heatMap.fitBounds(layer.getBounds(), { padding: [10, 10] });
    }, () => {});
  }
  const max = Math.max(1, ...cells.map((c) => c[2]));
  const ramp = {};
  const sev = Object.values(cfg.severities);
  sev.forEach((s, i) => {
    ramp[(0.3 + (0.7 * i) / Math.max(1, sev.length - 1)).toFixed(2)] = s.color;
  });
  if (heatLayer) heatMap.removeLayer(heatLayer);
  heatLayer = L.heatLayer(cells, { radius: 22, blur: 18, max, minOpacity: 0.35, gradient: ramp }).addTo(heatMap);
  if (cells.length) heatMap.fitBounds(L.latLngBounds(cells.map((c) => [c[0], c[1]])).pad(0.2), { maxZoom: 15 });
}

let loading = 0;

async function load() {
  const mine = ++loading;
  const form = $('dash-controls');
  const [since, until] = period(form);
  for (const el of document.querySelectorAll('.dash-custom')) el.hidden = form.period.value !== 'custom';
  const params = {
    grid: form.grid.value || undefined,
    since: beijingMidnight(since),
    until: beijingMidnight(until),
    interval: form.interval.value,
  };
  document.body.removeAttribute('data-dash-loaded');
  try {
    const d = await api('/api/v1/stats/dashboard', params, { cache: 'no-store' });
    if (mine !== loading) return; // a newer choice is on its way
    dash.data = d;
    dash.params = params;
    kpis(d);
    draw(d);
    document.body.setAttribute('data-dash-loaded', '1');
    document.body.removeAttribute('data-assessment-loaded');
    const opt = form.grid.selectedOptions[0];
    drawAssessment({ grid: params.grid, since: params.since, until: params.until, level: (opt && opt.dataset.level) || 'community' });
    drawVisits({ grid: params.grid, month: monthOf(until) });
  } catch (e) {
    toast(`统计加载失败：${errorText(e)}`, 'error');
  }
}

async function start(me) {
  if (started) {
    load();
    return;
  }
  started = true;
  const sel = document.querySelector('[data-gm=d-grid]');
  // The assessment compares the areas one level below the chosen unit.
  const below = { street: 'community', community: 'grid', grid: 'grid' };
  const root = me.grid ? [[me.grid.id, me.grid.name, below[me.grid.level] || 'grid']] : [['', '全辖区', 'street']];
  let units = [];
  try {
    const level = !me.grid ? 'street' : me.grid.level === 'street' ? 'community' : me.grid.level === 'community' ? 'grid' : null;
    if (level) units = (await api('/api/v1/units', { level })).items.map((u) => [u.id, `　${u.name}`, below[level] || 'grid']);
  } catch (e) {
    units = [];
  }
  sel.innerHTML = root.concat(units).map(([v, t, l]) => `<option value="${esc(v)}" data-level="${l}">${esc(t)}</option>`).join('');
  $('dash-controls').addEventListener('change', load);
  window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));
  await load();
  dash.ready = true;
}

mountUserBar($('gm-user'), { current: 'dashboard' });
staffGate($('dash'), '统计', start);
void show;
