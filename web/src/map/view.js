/* view.js: basemaps and the datum switch, the URL hash (#map=zoom/lat/lon[&grid=id |
 * &hazard=id]) in both directions, flying to things, and the zoom hints. */

import { convert } from '../lib/datum.js';
import { $ } from '../lib/dom.js';
import { fromView, GM, toView } from './context.js';
import { clearLabels, drawMe, drawOutline, drawSelection, heatPoints } from './overlays.js';

// ---- basemaps
function basemapInfo(key) {
  return GM.cfg.basemaps.find((b) => b.key === key) || null;
}

/** The basemap to open with: ?basemap=, the last one used, the configured default. */
export function chooseBasemap() {
  const url = new URLSearchParams(location.search).get('basemap');
  let stored = null;
  try {
    stored = localStorage.getItem('gm.basemap');
  } catch (e) {
    stored = null;
  }
  return [url, stored, GM.cfg.basemap].find((k) => k && basemapInfo(k)) || GM.cfg.basemaps[0].key;
}

export function datumOf(key) {
  const info = basemapInfo(key);
  return info ? info.datum : 'wgs84';
}

const datumListeners = [];
/** Run fn after every datum switch (the report pin follows). */
export function onDatumChange(fn) {
  datumListeners.push(fn);
}

/** Switch the datum with the basemap, keeping the same ground under the same pixel. */
export function applyBasemap(key) {
  const { map, refs } = GM;
  const info = basemapInfo(key);
  if (!info) return;
  const old = GM.datum;
  GM.state.basemap = key;
  try {
    localStorage.setItem('gm.basemap', key);
  } catch (e) {
    /* private mode */
  }
  document.body.setAttribute('data-basemap', key);
  if (info.datum !== old) {
    const c = map.getCenter();
    const p = convert(c.lng, c.lat, old, info.datum);
    GM.datum = info.datum;
    map.setView([p[1], p[0]], map.getZoom(), { animate: false });
    clearLabels();
    heatPoints.clear();
    for (const l of Object.values(refs.layers)) if (map.hasLayer(l)) l.redraw();
    drawSelection();
    drawMe();
    for (const fn of datumListeners) fn();
  }
  drawOutline();
  document.body.setAttribute('data-datum', GM.datum);
}

/** Programmatic basemap switch (the layer control does the same). */
GM.setBasemap = (key) => {
  const { map, refs } = GM;
  if (!refs.bases[key]) return;
  for (const k of Object.keys(refs.bases)) if (k !== key && map.hasLayer(refs.bases[k])) map.removeLayer(refs.bases[k]);
  if (!map.hasLayer(refs.bases[key])) map.addLayer(refs.bases[key]);
  applyBasemap(key);
};

// ---- the URL hash
/** The hash as {map, grid, hazard}. */
export function readHash() {
  const out = {};
  for (const kv of location.hash.replace(/^#/, '').split('&')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
  }
  return out;
}

let written = '';

/** Keep the view and the selection in the hash (without a history entry). Not while a hash
 * set by someone else waits for its hashchange (the workbench sets #hazard= while the map
 * still flies to a grid): writing over it then would make that hashchange look like our own
 * and the hazard would never open. */
export function writeHash() {
  if (written && location.hash !== written) return;
  const { map, state } = GM;
  const w = fromView(map.getCenter());
  let h = `map=${map.getZoom()}/${w[1].toFixed(5)}/${w[0].toFixed(5)}`;
  if (state.selected) h += `&${state.selected.kind}=${state.selected.id}`;
  written = `#${h}`;
  if (location.hash !== written && history.replaceState) history.replaceState(null, '', written);
}

/** True when the hash was changed by someone else (a link, the workbench), not by us. */
export function hashIsForeign() {
  return location.hash !== written;
}

/** Take a foreign hash as ours once its hashchange is being followed: writeHash may go on. */
export function adoptHash() {
  written = location.hash;
}

/** Centre the map on the #map= view of the hash; false when there is none. */
export function viewFromHash(h) {
  const view = h.map && h.map.split('/').map(Number);
  if (view && view.length === 3 && view.every(Number.isFinite)) {
    GM.map.setView(toView(view[2], view[1]), view[0], { animate: false });
    return true;
  }
  return false;
}

// ---- flying
function geometryBounds(geom) {
  const b = L.latLngBounds([]);
  const walk = (c) => {
    if (typeof c[0] === 'number') b.extend(toView(c[0], c[1]));
    else c.forEach(walk);
  };
  if (geom && geom.coordinates) walk(geom.coordinates);
  return b;
}

function panelPadding() {
  const pad = GM.state.field ? [20, 20] : [40, 40];
  const side = window.innerWidth > 640 || GM.state.embed; // the panel at the side, not a sheet
  const open = document.body.classList.contains('gm-panel-open') && !GM.state.field && side;
  const width = window.innerWidth > 640 ? 420 : 316;
  return { paddingTopLeft: open ? [width, 40] : pad, paddingBottomRight: pad };
}

/** Fit the map to a GeoJSON geometry (WGS84), leaving room for the panel. */
export function flyToGeometry(geom, animate = true) {
  const b = geometryBounds(geom);
  if (!b.isValid()) return;
  const opts = { ...panelPadding(), maxZoom: 18 };
  if (animate) GM.map.flyToBounds(b, { ...opts, duration: 0.6 });
  else GM.map.fitBounds(b, { ...opts, animate: false });
}

/** Centre a point (WGS84) at zoom ≥ 17, to the right of the panel on a desk. */
export function flyToPoint(lon, lat, animate = true) {
  const { map } = GM;
  const z = Math.max(map.getZoom(), 17);
  let target = toView(lon, lat);
  const pad = panelPadding().paddingTopLeft[0];
  if (pad > 100) {
    // Shift the centre so that the point lands in the middle of the free part of the map.
    const px = map.project(target, z).subtract([pad / 2, 0]);
    target = map.unproject(px, z);
  }
  if (animate) map.flyTo(target, z, { duration: 0.6 });
  else map.setView(target, z, { animate: false });
}

// ---- hints at the bottom: what the current zoom shows
let hintTimer = null;
export function setHint(text) {
  const el = $('gm-hint');
  if (!text) {
    el.hidden = true;
    return;
  }
  el.textContent = text;
  el.hidden = false;
  clearTimeout(hintTimer);
  hintTimer = setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

export function zoomHint() {
  const { map, cfg } = GM;
  const z = map.getZoom();
  const next = cfg.levels.find((lv) => lv.level !== 'special' && z < lv.minzoom) || null;
  const hz = cfg.tile.layers.hazards.minzoom - cfg.tile.zoomOffset;
  if (z < hz) setHint(`放大查看隐患与${next ? next.name : '更细网格'}（点击地图任意位置可查询所属网格）`);
  else if (next) setHint(`继续放大查看${next.name}`);
  else if (z < cfg.facilityMarkerZoom) setHint(`放大到 ${cfg.facilityMarkerZoom} 级查看部件图标`);
  else setHint(null);
}
