/* outbox.js: writes made in the field wait here (IndexedDB) until the network carries them,
 * in the order they were made, each with its original time, its photos and its own
 * Idempotency-Key: a write the server got but whose answer was lost is sent again with the
 * same key, and the server answers with the first result instead of acting twice.
 *
 * An item leaves the box only when the server accepted it. A conflict (409/412: someone
 * moved the case meanwhile) or a refusal (another 4xx) stays, marked, for the user to see
 * and decide; a network failure, a 5xx or a lost login stops the run and it is tried again
 * when the network comes back, the page opens again, or every half minute.
 */

import { ApiError, request } from './api.js';
import { uuid } from './dom.js';
import { all, count, del, get, put } from './idb.js';

const listeners = new Set();
const waiting = new Map(); // seq → [resolve] of enqueue-and-wait callers
let running = null;
let rerun = false; // something was put in the box while a run was under way
let blocked = null; // 'network' | 'login' | null: why the last run stopped

/** Call fn({pending, problems, blocked}) whenever the box changes. */
export function onChange(fn) {
  listeners.add(fn);
  status().then(fn);
  return () => listeners.delete(fn);
}

/** How many items wait, how many need the user, and why sending stopped (if it did). */
export async function status() {
  const items = await all('outbox');
  const problems = items.filter((i) => i.state === 'conflict' || i.state === 'failed').length;
  return { pending: items.length - problems, problems, total: items.length, blocked, items };
}

async function changed() {
  const s = await status();
  for (const fn of listeners) fn(s);
  return s;
}

/**
 * Put a write in the box. spec: {kind, label, url, fields, photos?, headers?, hazard?}.
 * The item gets its Idempotency-Key and its creation time now. Resolves with the item.
 */
export async function enqueue(spec) {
  const item = {
    id: uuid(),
    kind: spec.kind,
    label: spec.label,
    method: spec.method || 'POST',
    url: spec.url,
    fields: spec.fields || {},
    photos: Array.from(spec.photos || []).slice(0, 5),
    headers: { ...(spec.headers || {}), 'Idempotency-Key': spec.key || uuid() },
    hazard: spec.hazard || null,
    created_at: new Date().toISOString(),
    state: 'pending',
    tries: 0,
    error: null,
  };
  item.seq = await put('outbox', item);
  await changed();
  return item;
}

function body(item) {
  if (!item.photos.length) return item.fields;
  const form = new FormData();
  for (const [k, v] of Object.entries(item.fields)) {
    if (v === undefined || v === null || v === '') continue;
    form.append(k, Array.isArray(v) ? v.join(',') : v);
  }
  item.photos.forEach((p, i) => form.append('photos', p, p.name || `photo-${i + 1}.jpg`));
  return form;
}

function settle(seq, outcome) {
  for (const fn of waiting.get(seq) || []) fn(outcome);
  waiting.delete(seq);
}

/**
 * A move never sent before whose hazard changed while the phone was offline: the hazard as it
 * is now, so that the conflict shows without a request the server would refuse. Once a move
 * was sent (its answer may have been lost), only the server can tell: its idempotency key
 * answers a retry with the first result.
 */
async function changedMeanwhile(item) {
  if (item.kind !== 'move' || item.tries > 0 || !item.hazard || item.hazard.version == null) return null;
  const r = await request(`/api/v1/hazards/${item.hazard.id}`, null, { cache: 'no-store' });
  const now = r.data.properties;
  return now.version === item.hazard.version ? null : now;
}

async function conflict(item, error) {
  item.state = 'conflict';
  item.error = error;
  await put('outbox', item);
  settle(item.seq, { state: item.state, error: new ApiError(error.status, error), item });
  return item.state;
}

async function sendOne(item) {
  try {
    const now = await changedMeanwhile(item);
    if (now) {
      return conflict(item, {
        status: 412,
        code: 'stale_version',
        message: `The hazard is now ${now.status} (version ${now.version}).`,
        status_name: now.status_name,
      });
    }
    // Counted before it leaves: from now on a lost answer means "maybe done".
    item.tries += 1;
    await put('outbox', item);
    const r = await request(item.url, null, { method: item.method, headers: item.headers, body: body(item) });
    await del('outbox', item.seq);
    settle(item.seq, { state: 'sent', data: r.data, item });
    document.dispatchEvent(new CustomEvent('gm:outbox-sent', { detail: { item, data: r.data } }));
    return 'sent';
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError(0, { code: 'network' });
    if (err.status === 0 || err.status >= 500 || err.status === 429) return 'network';
    if (err.status === 401 || err.code === 'csrf_failed') return 'login';
    const error = { status: err.status, code: err.code, message: err.body && err.body.message };
    if (err.status === 409 || err.status === 412) return conflict(item, error);
    item.state = 'failed';
    item.error = error;
    await put('outbox', item);
    settle(item.seq, { state: item.state, error: err, item });
    return item.state;
  }
}

async function run() {
  const items = (await all('outbox')).filter((i) => i.state === 'pending');
  let sent = 0;
  blocked = null;
  for (const item of items) {
    const outcome = await sendOne(item);
    if (outcome === 'network' || outcome === 'login') {
      blocked = outcome;
      for (const rest of items.slice(items.indexOf(item))) settle(rest.seq, { state: 'queued', blocked, item: rest });
      break;
    }
    if (outcome === 'sent') sent += 1;
    await changed();
  }
  await changed();
  return { sent, blocked };
}

/** Send what waits, in order, one at a time (one run per browser, across tabs). */
export function flush() {
  if (running) {
    rerun = true;
  } else {
    const go = async () => {
      let r;
      do {
        rerun = false;
        r = await run();
      } while (rerun && !r.blocked);
      return r;
    };
    const locked = navigator.locks ? navigator.locks.request('gis-outbox', go) : go();
    running = locked.finally(() => {
      running = null;
    });
  }
  return running;
}

/**
 * Put a write in the box and try to send it now (``queued(item)`` runs once it is stored):
 * resolves with {state: 'sent', data} when
 * the server took it, {state: 'queued'} when it waits for the network (or a login), or
 * {state: 'conflict'|'failed', error} when the server refused it.
 */
export async function submit(spec, queued) {
  const item = await enqueue(spec);
  // The write is safe on the phone now: the caller may forget its own copy.
  if (queued) await queued(item);
  const outcome = new Promise((resolve) => {
    const list = waiting.get(item.seq) || [];
    list.push(resolve);
    waiting.set(item.seq, list);
  });
  flush().then(() => settle(item.seq, { state: 'queued', blocked, item }));
  return outcome;
}

/** Forget an item (the user gave it up). */
export async function drop(seq) {
  await del('outbox', seq);
  await changed();
}

/** Try a refused item again (after the user fixed what was wrong, e.g. logged in). */
export async function retry(seq) {
  const item = await get('outbox', seq);
  if (!item) return;
  item.state = 'pending';
  item.error = null;
  await put('outbox', item);
  await changed();
  return flush();
}

/** How many items are in the box. */
export function size() {
  return count('outbox');
}

let started = false;

/** Send on start, when the network returns, when the page shows again, and every 30 s. */
export function startSending() {
  if (started) return;
  started = true;
  window.addEventListener('online', () => flush());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') flush();
  });
  setInterval(() => {
    if (navigator.onLine) flush();
  }, 30000);
  flush();
}
