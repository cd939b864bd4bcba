/* dashboard/assessment.js: the 考核评价 panel of the dashboard. Indicators per community (or
 * grid) with the 综合指标值 and grade, per department with 吹哨报到 on time, and the 积分
 * ranking, and 志愿服务 (三单制 orders, hours, volunteers) per area, all from
 * GET /api/v1/assessment/* for the dashboard's unit and period. Every case figure opens the
 * cases behind it (GET /api/v1/assessment/cases). */

import { api } from '../lib/api.js';
import { $, esc } from '../lib/dom.js';
import { errorText } from '../lib/i18n.js';

// Area columns: heading, count or rate key, and the drill-down flag behind it.
const AREA_COLUMNS = [
  ['上报数', 'reported', 'reported'],
  ['立案数', 'accepted', 'accepted'],
  ['立案率', 'accept_rate', 'accepted', true],
  ['按期处置率', 'on_time_handle_rate', 'on_time_handle', true],
  ['按期结案率', 'on_time_close_rate', 'on_time_close', true],
  ['结案率', 'close_rate', 'closed', true],
  ['返工率', 'rework_rate', 'reworked', true],
  ['超期数', 'overdue', 'overdue'],
  ['满意率', 'satisfaction_rate', 'satisfied', true],
  ['异常件占比', 'exception_rate', 'excepted', true],
];
const DEPT_COLUMNS = [
  ['应处置数', 'due_handle', 'due_handle'],
  ['按时处置数', 'on_time_handle', 'on_time_handle'],
  ['超期处置数', 'overdue', 'overdue'],
  ['处置率', 'handle_rate', 'handled', true],
  ['返工率', 'rework_rate', 'reworked', true],
  ['满意率', 'satisfaction_rate', 'satisfied', true],
];

const pct = (v) => (v == null ? '—' : `${v.toFixed(1)}%`);
let current = null;

function cell(value, flag, by, key, isRate) {
  const text = isRate ? pct(value) : esc(value);
  return `<td><button type="button" class="gm-link dash-fig" data-flag="${flag}" data-by="${by}" data-key="${esc(key)}">${text}</button></td>`;
}

function areasTable(areas) {
  if (!areas.length) return '<p class="gm-muted">该时段暂无案件</p>';
  const head = AREA_COLUMNS.map((c) => `<th>${c[0]}</th>`).join('');
  const rows = areas
    .map(
      (a) =>
        `<tr data-area="${a.area_id}"><td>${esc(a.name)}</td>` +
        AREA_COLUMNS.map(([, k, flag, isRate]) => cell(a[k], flag, 'area', a.area_id, isRate)).join('') +
        `<td>${a.median_work_hours_to_close_7d == null ? '—' : esc(a.median_work_hours_to_close_7d)}</td>` +
        `<td><b data-composite>${a.composite == null ? '—' : esc(a.composite)}</b></td><td data-grade>${esc(a.grade)}</td></tr>`
    )
    .join('');
  return `<table class="dash-table"><thead><tr><th>区域</th>${head}<th>近7日结案用时中位数（工作时）</th><th>综合指标值</th><th>等级</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function departmentsTable(depts) {
  if (!depts.length) return '<p class="gm-muted">该时段暂无派往部门的案件</p>';
  const head = DEPT_COLUMNS.map((c) => `<th>${c[0]}</th>`).join('');
  const rows = depts
    .map(
      (d) =>
        `<tr><td>${esc(d.name)}</td>` +
        DEPT_COLUMNS.map(([, k, flag, isRate]) => cell(d[k], flag, 'department', d.code, isRate)).join('') +
        `<td>${esc(d.whistle_calls)}</td><td>${pct(d.whistle_on_time_rate)}</td></tr>`
    )
    .join('');
  return `<table class="dash-table"><thead><tr><th>部门</th>${head}<th>吹哨次数</th><th>按时报到率</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function pointsTable(ranking) {
  if (!ranking.length) return '<p class="gm-muted">暂无积分</p>';
  return `<table class="dash-table"><thead><tr><th>名次</th><th>姓名</th><th>网格</th><th>积分</th></tr></thead><tbody>${ranking
    .slice(0, 10)
    .map((r) => `<tr><td>${esc(r.rank)}</td><td>${esc(r.name)}</td><td>${esc(r.grid_name || '')}</td><td><b>${esc(r.points)}</b></td></tr>`)
    .join('')}</tbody></table>`;
}

function volunteersTable(areas) {
  if (!areas.length) return '<p class="gm-muted">该时段暂无服务点单</p>';
  const rows = areas
    .map(
      (a) =>
        `<tr data-served="${a.area_id}"><td>${esc(a.name)}</td><td>${esc(a.orders)}</td><td>${esc(a.done)}</td>` +
        `<td data-hours>${esc(a.hours)}</td><td>${esc(a.volunteers)}</td><td>${esc(a.party_members)}</td><td>${pct(a.satisfaction_rate)}</td></tr>`
    )
    .join('');
  return `<table class="dash-table"><thead><tr><th>区域</th><th>点单数</th><th>完成数</th><th>服务时长（小时）</th><th>服务志愿者</th><th>其中党员</th><th>满意率</th></tr></thead><tbody>${rows}</tbody></table>`;
}

async function drill(btn) {
  const box = $('dash-drill');
  const params = { ...current, indicator: btn.dataset.flag, [btn.dataset.by]: btn.dataset.key, limit: 50 };
  delete params.level;
  box.innerHTML = '<p class="gm-muted">正在加载…</p>';
  try {
    const d = await api('/api/v1/assessment/cases', params, { cache: 'no-store' });
    const rows = d.items
      .map((i) => `<tr data-hazard-id="${i.id}"><td class="gm-code"><a href="/map#hazard=${i.id}">${esc(i.public_code)}</a></td><td>${esc(i.category_name)}</td><td>${esc(i.grid_name)}</td></tr>`)
      .join('');
    box.innerHTML = `<p>「${esc(btn.closest('table').querySelector(`th:nth-child(${btn.closest('td').cellIndex + 1})`).textContent)}」涉及 ${d.number_matched} 件：</p>` +
      (rows ? `<table class="dash-table"><thead><tr><th>编号</th><th>类别</th><th>网格</th></tr></thead><tbody>${rows}</tbody></table>` : '');
  } catch (e) {
    box.innerHTML = `<p class="gm-muted">${esc(errorText(e))}</p>`;
  }
}

/** Load and draw the panel for the dashboard's unit and period (ISO instants). */
export async function drawAssessment({ grid, since, until, level }) {
  current = { grid, from: since, to: until, level };
  const box = $('dash-assessment');
  $('dash-drill').innerHTML = '';
  try {
    const [areas, depts, points, served] = await Promise.all([
      api('/api/v1/assessment/areas', current, { cache: 'no-store' }),
      api('/api/v1/assessment/departments', { grid, from: since, to: until }, { cache: 'no-store' }),
      api('/api/v1/assessment/points', { grid, from: since, to: until }, { cache: 'no-store' }),
      api('/api/v1/assessment/volunteers', current, { cache: 'no-store' }),
    ]);
    box.innerHTML = areasTable(areas.areas);
    $('dash-departments').innerHTML = departmentsTable(depts.departments);
    $('dash-points').innerHTML = pointsTable(points.ranking);
    $('dash-volunteers').innerHTML = volunteersTable(served.areas);
    for (const b of document.querySelectorAll(".dash-fig")) b.addEventListener('click', () => drill(b));
    document.body.setAttribute('data-assessment-loaded', '1');
  } catch (e) {
    box.innerHTML = `<p class="gm-muted">${esc(errorText(e))}</p>`;
  }
}
