/* format.js: times (always Beijing time, whatever the browser's zone), ages, deadlines and
 * distances, in Chinese. */

const TZ = 'Asia/Shanghai';
const PARTS = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

function parts(iso) {
  const out = {};
  for (const p of PARTS.formatToParts(new Date(iso))) out[p.type] = p.value;
  return out;
}

/** "2026-11-30 14:05" in Beijing time. */
export function fmtTime(iso) {
  if (!iso) return '';
  const p = parts(iso);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** "2026-11-30" in Beijing time. */
export function fmtDate(iso) {
  if (!iso) return '';
  const p = parts(iso);
  return `${p.year}-${p.month}-${p.day}`;
}

/** Today's date in Beijing as YYYY-MM-DD. */
export function todayBeijing() {
  return fmtDate(new Date().toISOString());
}

/** The instant a Beijing calendar date begins, as ISO 8601 with +08:00. */
export function beijingMidnight(ymd) {
  return `${ymd}T00:00:00+08:00`;
}

/** A Beijing calendar date plus n days. */
export function addDays(ymd, n) {
  const d = new Date(`${ymd}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** "3 分钟前" … "2 天前". */
export function ago(iso) {
  if (!iso) return '';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return '刚刚';
  if (s < 3600) return `${Math.floor(s / 60)} 分钟前`;
  if (s < 86400) return `${Math.floor(s / 3600)} 小时前`;
  return `${Math.floor(s / 86400)} 天前`;
}

function span(seconds) {
  const a = Math.abs(seconds);
  if (a < 3600) return `${Math.max(1, Math.floor(a / 60))} 分钟`;
  if (a < 86400) return `${Math.floor(a / 3600)} 小时`;
  return `${Math.floor(a / 86400)} 天`;
}

/**
 * "剩余 3 小时" / "逾期 2 天" while the deadline clock runs (clockStatuses); nothing for a
 * case whose clock has stopped (fed back, verified, closed, rejected).
 */
export function dueText(p, clockStatuses) {
  if (!p || !p.due_at) return '';
  if (clockStatuses && clockStatuses.indexOf(p.status) < 0) return '';
  const s = (new Date(p.due_at).getTime() - Date.now()) / 1000;
  return s >= 0 ? `剩余 ${span(s)}` : `逾期 ${span(s)}`;
}

/** "120 米" / "1.5 公里". */
export function fmtDistance(m) {
  if (m == null || !isFinite(m)) return '';
  return m < 1000 ? `${Math.round(m)} 米` : `${(m / 1000).toFixed(1)} 公里`;
}

/** Hours as "5.2 小时" or "3.1 天". */
export function fmtHours(h) {
  if (h == null) return '—';
  return h < 48 ? `${h.toFixed(1)} 小时` : `${(h / 24).toFixed(1)} 天`;
}

/** A share as "75.8%". */
export function fmtPercent(x) {
  return x == null ? '—' : `${(x * 100).toFixed(1)}%`;
}
