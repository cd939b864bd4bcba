/* patrol.js: a patrol (巡查) recorded on the phone. Start and stop; in between every GPS fix
 * goes into IndexedDB the moment it comes, so the track survives the screen going dark, the
 * page reloading or the app closing: on the next start the patrol goes on where it was. At
 * the stop the whole track (points with their times) goes into the outbox as one upload. */

import { distanceM } from '../lib/datum.js';
import { $, show, toast, uuid } from '../lib/dom.js';
import { del, delRange, get, put, withStore } from '../lib/idb.js';
import { submit } from '../lib/outbox.js';
import { GM, toView } from './context.js';

const KEY = 'patrol'; // the running patrol in the kv store
const MAX_ACCURACY_M = 100; // coarser fixes are noise, not a track
const MIN_STEP_M = 3; // a fix closer than this to the last one is kept only every 30 s
const MIN_STEP_S = 30;
const STALE_S = 60; // a fix older than this at the start is where the phone was, not the walk

let current = null; // {ref, started_at, seq, last: {lon, lat, t}, distance_m, points}
let watchId = null;
let line = null;
let ticker = null;
const listeners = new Set();

/** The running patrol (null when none), as kept on the phone. */
export function activePatrol() {
  return current;
}

/** Call fn(patrol|null) whenever the patrol starts, moves or stops. */
export function onPatrol(fn) {
  listeners.add(fn);
  fn(current);
}

function emit() {
  GM.state.patrolRef = current ? current.ref : null;
  for (const fn of listeners) fn(current);
  renderBanner();
}

function range(ref) {
  return IDBKeyRange.bound([ref, 0], [ref, Number.MAX_SAFE_INTEGER]);
}

async function pointsOf(ref) {
  return withStore('points', 'readonly', (s) => s.getAll(range(ref)));
}

async function onFix(pos) {
  if (!current) return;
  const c = pos.coords;
  if (c.accuracy > MAX_ACCURACY_M) return;
  const t = (pos.timestamp || Date.now()) / 1000;
  if (t < Date.parse(current.started_at) / 1000 - STALE_S) return;
  const last = current.last;
  if (last) {
    if (t <= last.t) return; // never out of order
    const step = distanceM([last.lon, last.lat], [c.longitude, c.latitude]);
    if (step < MIN_STEP_M && t - last.t < MIN_STEP_S) return;
    current.distance_m += step;
  }
  current.seq += 1;
  const point = { ref: current.ref, seq: current.seq, lon: c.longitude, lat: c.latitude, t, acc: c.accuracy };
  // The point first, then the patrol's summary: a crash in between loses nothing.
  await put('points', point);
  current.last = { lon: point.lon, lat: point.lat, t };
  current.points += 1;
  await put('kv', current, KEY);
  GM.state.me = { lon: c.longitude, lat: c.latitude, acc: c.accuracy };
  drawLine(point);
  emit();
}

function watch() {
  if (watchId !== null || !navigator.geolocation) return;
  watchId = navigator.geolocation.watchPosition(
    (pos) => {
      onFix(pos);
    },
    () => {},
    { enableHighAccuracy: true, maximumAge: 0, timeout: 60000 }
  );
  if (!ticker) ticker = setInterval(renderBanner, 1000);
}

function unwatch() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
  clearInterval(ticker);
  ticker = null;
}

function drawLine(point) {
  if (!GM.map) return;
  if (!line) line = L.polyline([], { color: '#7b1fa2', weight: 4, opacity: 0.85, pane: 'gm-select' }).addTo(GM.map);
  if (point) line.addLatLng(toView(point.lon, point.lat));
}

async function redrawLine() {
  if (!current || !GM.map) return;
  const points = await pointsOf(current.ref);
  if (line) GM.map.removeLayer(line);
  line = null;
  drawLine(null);
  line.setLatLngs(points.map((p) => toView(p.lon, p.lat)));
}

/** Start a patrol: a new ref, the time, and GPS fixes from now on. */
export async function startPatrol() {
  if (current) return current;
  current = { ref: uuid(), started_at: new Date().toISOString(), seq: 0, last: null, distance_m: 0, points: 0 };
  await put('kv', current, KEY);
  watch();
  emit();
  toast('巡查已开始，轨迹将自动记录（息屏或刷新页面也不会丢失）', 'ok');
  return current;
}

/** Stop the patrol and put its track into the outbox; resolves with the outbox outcome. The
 * patrol is forgotten only once its track is stored in the outbox, so that closing the app at
 * any moment loses nothing. */
export async function stopPatrol() {
  if (!current) return null;
  const patrol = current;
  unwatch();
  const points = await pointsOf(patrol.ref);
  const forget = async () => {
    current = null;
    await del('kv', KEY);
    await delRange('points', range(patrol.ref));
    if (line && GM.map) GM.map.removeLayer(line);
    line = null;
    emit();
  };
  const distinct = new Set(points.map((p) => `${p.lon},${p.lat}`));
  if (distinct.size < 2) {
    await forget();
    toast('轨迹点太少（未移动），本次巡查未上传', 'error');
    return null;
  }
  // The first fix may predate the tap on 开始 by a few seconds: the track starts with it.
  const started = new Date(Math.min(Date.parse(patrol.started_at), points[0].t * 1000)).toISOString();
  const ended = new Date(Math.max(Date.now(), points[points.length - 1].t * 1000)).toISOString();
  const outcome = await submit(
    {
      kind: 'patrol',
      label: `巡查轨迹 ${points.length} 个点`,
      url: '/api/v1/patrols',
      fields: {
        ref: patrol.ref,
        started_at: started,
        ended_at: ended,
        points: points.map((p) => [+p.lon.toFixed(7), +p.lat.toFixed(7), p.t, Math.round(p.acc * 10) / 10]),
      },
    },
    forget
  );
  if (outcome.state === 'sent') toast(`巡查已结束并上传：${(outcome.data.properties.length_m / 1000).toFixed(2)} 公里`, 'ok');
  else if (outcome.state === 'queued') toast('巡查已结束，轨迹已保存，联网后自动上传', 'ok', 6000);
  else toast('巡查轨迹上传失败，请在“待发送”中查看', 'error');
  return outcome;
}

function fmtDuration(s) {
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} 小时 ${m % 60} 分` : `${m} 分 ${Math.floor(s % 60)} 秒`;
}

/** A line of the running patrol: time, distance and points. */
export function patrolSummary(p) {
  const secs = (Date.now() - Date.parse(p.started_at)) / 1000;
  return `${fmtDuration(secs)} · ${(p.distance_m / 1000).toFixed(2)} 公里 · ${p.points} 个点`;
}

function renderBanner() {
  const el = $('gm-patrol-banner');
  if (!el) return;
  show(el, !!current);
  $('gm-patrol').classList.toggle('gm-on', !!current);
  if (!current) return;
  $('gm-patrol-text').textContent = `巡查中 · ${patrolSummary(current)}`;
}

/** On every start: a patrol left running (a reload, a closed app) goes on. */
export async function resumePatrol() {
  current = (await get('kv', KEY)) || null;
  if (current) {
    watch();
    await redrawLine();
    toast(`继续巡查（已记录 ${current.points} 个点）`, 'ok');
  }
  emit();
}

export function initPatrol() {
  $('gm-patrol').addEventListener('click', async () => {
    if (current) {
      if (window.confirm('结束本次巡查并上传轨迹？')) await stopPatrol();
    } else {
      await startPatrol();
    }
  });
  $('gm-patrol-stop').addEventListener('click', () => stopPatrol());
  resumePatrol();
}
