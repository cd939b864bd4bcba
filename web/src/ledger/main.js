/* ledger/main.js: the ledger (台账) of a street, a community or a grid for a month or a
 * period: a print-ready page (A4, the system's CJK fonts, page numbers, a title block with
 * the unit and the period) and the same rows as XLSX (Chinese headers, Beijing time, the
 * handler's name, lon/lat columns), both from GET /api/v1/ledger. */

import { api, qs } from '../lib/api.js';
import { $, esc, toast } from '../lib/dom.js';
import { addDays, beijingMidnight, fmtTime, todayBeijing } from '../lib/format.js';
import { errorText } from '../lib/i18n.js';
import { mountUserBar, staffGate } from '../lib/session.js';

let started = false;
const ledger = (window.GMLedger = { data: null });

function zh(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  return `${y}年${m}月${d}日`;
}

/** [since, until) as Beijing dates from the month or the custom dates. */
function period(form) {
  if (form.since.value && form.until.value) return [form.since.value, addDays(form.until.value, 1)];
  const month = form.month.value || todayBeijing().slice(0, 7);
  const first = `${month}-01`;
  const next = addDays(addDays(first, 27), 10).slice(0, 7);
  return [first, `${next}-01`];
}

function rowHtml(r) {
  const where = [r.community_name, r.grid_name].filter(Boolean).join(' › ');
  return (
    `<tr data-code="${esc(r.public_code)}"><td class="l-no">${r.no}</td><td class="l-code">${esc(r.public_code)}</td>` +
    `<td>${esc(r.category_name)}</td><td>${esc(where)}${r.address ? `<div class="l-addr">${esc(r.address)}</div>` : ''}</td>` +
    `<td class="l-time">${esc(r.reported_local || '')}</td><td>${esc(r.handler || '—')}</td>` +
    `<td>${esc(r.status_name)}${r.overdue ? '（逾期）' : ''}</td><td class="l-time">${esc(r.due_local || '—')}</td>` +
    `<td class="l-time">${esc(r.closed_local || '—')}</td></tr>`
  );
}

let loading = 0;

async function load() {
  const mine = ++loading;
  const form = $('ledger-controls');
  const [since, until] = period(form);
  const params = { grid: form.grid.value || undefined, since: beijingMidnight(since), until: beijingMidnight(until) };
  $('ledger-xlsx').href = `/api/v1/ledger${qs({ ...params, f: 'xlsx' })}`;
  document.body.removeAttribute('data-ledger-loaded');
  try {
    const d = await api('/api/v1/ledger', params, { cache: 'no-store' });
    if (mine !== loading) return; // a newer choice is on its way
    ledger.data = d;
    const unit = d.unit ? d.unit.chain : '全辖区';
    const last = addDays(until, -1);
    const q = (sel) => document.querySelector(`[data-gm="${sel}"]`);
    q('l-title').textContent = `${d.unit ? d.unit.name : '全辖区'}隐患台账`;
    q('l-unit').textContent = unit;
    q('l-period').textContent = `${zh(since)} 至 ${zh(last)}`;
    q('l-count').textContent = d.items.length;
    q('l-made').textContent = fmtTime(new Date().toISOString());
    document.title = `${q('l-title').textContent}（${zh(since)}至${zh(last)}）`;
    $('ledger-rows').innerHTML = d.items.length
      ? d.items.map(rowHtml).join('')
      : '<tr><td colspan="9" class="gm-empty">此时段内没有上报的隐患</td></tr>';
    document.body.setAttribute('data-ledger-loaded', '1');
  } catch (e) {
    toast(`台账加载失败：${errorText(e)}`, 'error');
  }
}

async function start(me) {
  if (started) {
    load();
    return;
  }
  started = true;
  const form = $('ledger-controls');
  form.month.value = todayBeijing().slice(0, 7);
  const options = [me.grid ? [me.grid.id, me.grid.name] : ['', '全辖区']];
  const below = !me.grid ? ['street', 'community'] : me.grid.level === 'street' ? ['community', 'grid'] : me.grid.level === 'community' ? ['grid'] : [];
  for (const level of below) {
    try {
      const res = await api('/api/v1/units', { level });
      for (const u of res.items) options.push([u.id, `${level === 'grid' || (level === 'community' && !me.grid) ? '　　' : '　'}${u.name}${u.context && level === 'grid' && me.grid && me.grid.level === 'street' ? `（${u.context.split(' › ').pop()}）` : ''}`]);
    } catch (e) {
      /* the scope root alone */
    }
  }
  form.grid.innerHTML = options.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
  form.addEventListener('change', (e) => {
    if (e.target.name === 'month') {
      form.since.value = '';
      form.until.value = '';
    }
    load();
  });
  $('ledger-print').addEventListener('click', () => window.print());
  await load();
}

mountUserBar($('gm-user'), { current: 'ledger' });
staffGate($('ledger'), '台账', start);
