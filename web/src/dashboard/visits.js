/* dashboard/visits.js: the 七必访 panel of the dashboard. Visit coverage of the people under
 * care for the month in which the chosen period ends (GET /api/v1/care/coverage), one row per
 * area one level below the unit: people, visited on time (their next-due day never passed
 * without a visit), the rate, visited at all, visits, overdue now and due today. Counts only:
 * names stay in the field app and the grid's own lists. */

import { api } from '../lib/api.js';
import { $, esc } from '../lib/dom.js';
import { errorText } from '../lib/i18n.js';

const COLUMNS = [
  ['关爱对象', 'people'],
  ['按期走访', 'on_time'],
  ['按期走访率', 'on_time_pct', true],
  ['本月已走访', 'visited'],
  ['走访次数', 'visits'],
  ['逾期未访', 'overdue'],
  ['今日应访', 'due_today'],
];

const pct = (v) => (v == null ? '—' : `${v.toFixed(1)}%`);

function row(name, r, attrs) {
  const cells = COLUMNS.map(([, k, isRate]) => {
    const v = isRate ? pct(r[k]) : esc(r[k]);
    const warn = k === 'overdue' && r[k] > 0 ? ' class="dash-warn"' : '';
    return `<td data-k="${k}"${warn}>${v}</td>`;
  }).join('');
  return `<tr ${attrs}><td>${esc(name)}</td>${cells}</tr>`;
}

function table(d) {
  if (!d.total.people) return '<p class="gm-muted">该范围暂无关爱对象</p>';
  const head = COLUMNS.map((c) => `<th>${c[0]}</th>`).join('');
  const rows = d.grids.filter((g) => g.people).map((g) => row(g.name, g, `data-coverage="${g.id}"`)).join('');
  return (
    `<table class="dash-table"><thead><tr><th>区域</th>${head}</tr></thead><tbody>${rows}</tbody>` +
    `<tfoot>${row('合计', d.total, 'data-coverage-total')}</tfoot></table>`
  );
}

/** The month (YYYY-MM) in which a period ending before `until` (YYYY-MM-DD, exclusive) ends. */
export function monthOf(until) {
  const d = new Date(`${until}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 7);
}

/** Load and draw the panel for the dashboard's unit and the month the period ends in. */
export async function drawVisits({ grid, month }) {
  const box = $('dash-visits');
  document.body.removeAttribute('data-visits-loaded');
  $('dash-visits-month').textContent = `${month.slice(0, 4)}年${+month.slice(5, 7)}月`;
  try {
    const d = await api('/api/v1/care/coverage', { grid, month }, { cache: 'no-store' });
    box.innerHTML = table(d);
    document.body.setAttribute('data-visits-loaded', '1');
  } catch (e) {
    box.innerHTML = `<p class="gm-muted">${esc(errorText(e))}</p>`;
  }
}
