/* tiles.js: every vector tile goes through here: fetched once (a short in-memory cache lets
 * neighbouring GCJ-02 tiles share their sources), shifted when the datum is GCJ-02, then
 * handed to the overlays (labels, heat map, facility icons). */

import { gcj2wgs, wgs2gcj } from '../lib/datum.js';
import { GM } from './context.js';

export const EXTENT = 4096;
const TILE_CACHE_MS = 60000;
const TILE_CACHE_MAX = 600;

let rawGetTile = null;
const tileCache = new Map();

function fetchTile(layer, z, x, y) {
  const key = `${layer.options.gmLayer}/${z}/${x}/${y}`;
  const hit = tileCache.get(key);
  if (hit && Date.now() - hit.t < TILE_CACHE_MS) return hit.p;
  const p = rawGetTile.call(layer, { x, y, z }).catch(() => {
    tileCache.delete(key);
    return { layers: {} };
  });
  tileCache.set(key, { t: Date.now(), p });
  if (tileCache.size > TILE_CACHE_MAX) tileCache.delete(tileCache.keys().next().value);
  return p;
}

/** Forget the cached tiles of one layer (after a write changed them). */
export function dropCachedTiles(layerId) {
  for (const k of Array.from(tileCache.keys())) if (k.startsWith(`${layerId}/`)) tileCache.delete(k);
}

const lon2x = (lon) => lon / 360 + 0.5;
function lat2y(lat) {
  const s = Math.sin((lat * Math.PI) / 180);
  return 0.5 - (0.25 * Math.log((1 + s) / (1 - s))) / Math.PI;
}
const x2lon = (x) => x * 360 - 180;
const y2lat = (y) => (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;

/** Sutherland–Hodgman: a ring clipped to the square [0, E]². */
export function clipRing(ring, E) {
  let pts = ring;
  const edges = [['x', 0, 1], ['x', E, -1], ['y', 0, 1], ['y', E, -1]];
  for (let k = 0; k < 4 && pts.length; k++) {
    const [ax, v, sign] = edges[k];
    const out = [];
    for (let i = 0; i < pts.length; i++) {
      const a = pts[i];
      const b = pts[(i + 1) % pts.length];
      const ina = (a[ax] - v) * sign >= 0;
      const inb = (b[ax] - v) * sign >= 0;
      if (ina) out.push(a);
      if (ina !== inb) {
        const t = (v - a[ax]) / (b[ax] - a[ax]);
        out.push({ x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t });
      }
    }
    pts = out;
  }
  return pts;
}

// Liang–Barsky: the part of segment a-b inside [0, E]², or null; keeps a and b themselves
// when they are inside, so that the caller can tell a continuing line from a new piece.
function clipSegment(a, b, E) {
  let t0 = 0;
  let t1 = 1;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const p = [-dx, dx, -dy, dy];
  const q = [a.x, E - a.x, a.y, E - a.y];
  for (let i = 0; i < 4; i++) {
    if (p[i] === 0) {
      if (q[i] < 0) return null;
    } else {
      const r = q[i] / p[i];
      if (p[i] < 0) {
        if (r > t1) return null;
        if (r > t0) t0 = r;
      } else {
        if (r < t0) return null;
        if (r < t1) t1 = r;
      }
    }
  }
  const s = t0 === 0 ? a : { x: a.x + dx * t0, y: a.y + dy * t0 };
  const e = t1 === 1 ? b : { x: a.x + dx * t1, y: a.y + dy * t1 };
  return [s, e];
}

function clipLine(line, E) {
  const parts = [];
  let cur = null;
  for (let i = 0; i + 1 < line.length; i++) {
    const seg = clipSegment(line[i], line[i + 1], E);
    if (!seg) {
      cur = null;
      continue;
    }
    if (cur && cur[cur.length - 1] === seg[0]) cur.push(seg[1]);
    else {
      cur = [seg[0], seg[1]];
      parts.push(cur);
    }
    if (seg[1] !== line[i + 1]) cur = null;
  }
  return parts;
}

function derived(props, part) {
  const o = Object.create(props);
  o.__part = part;
  return o;
}

/**
 * The GCJ-02 tile z/tx/ty, made from the WGS84 tiles under it: each source feature is
 * clipped to its own tile (no double drawing in the buffers), each vertex moved
 * WGS84 → GCJ-02 and re-expressed in the target tile's units.
 */
function shiftedTile(layer, z, tx, ty) {
  const n = 2 ** z;
  const nw = gcj2wgs(x2lon(tx / n), y2lat(ty / n));
  const se = gcj2wgs(x2lon((tx + 1) / n), y2lat((ty + 1) / n));
  const m = 1 / 64;
  const x0 = Math.max(0, Math.floor(lon2x(nw[0]) * n - m));
  const x1 = Math.min(n - 1, Math.floor(lon2x(se[0]) * n + m));
  const y0 = Math.max(0, Math.floor(lat2y(nw[1]) * n - m));
  const y1 = Math.min(n - 1, Math.floor(lat2y(se[1]) * n + m));
  const jobs = [];
  for (let sx = x0; sx <= x1; sx++) {
    for (let sy = y0; sy <= y1; sy++) jobs.push(fetchTile(layer, z, sx, sy).then((json) => ({ sx, sy, json })));
  }
  return Promise.all(jobs).then((parts) => {
    const out = {};
    for (const part of parts) {
      const layers = part.json.layers || {};
      for (const name of Object.keys(layers)) {
        const src = layers[name];
        const ext = src.extent || EXTENT;
        const dst = out[name] || (out[name] = { name, extent: EXTENT, features: [], length: 0 });
        const tr = (pt) => {
          const lon = x2lon((part.sx + pt.x / ext) / n);
          const lat = y2lat((part.sy + pt.y / ext) / n);
          const g = wgs2gcj(lon, lat);
          return { x: (lon2x(g[0]) * n - tx) * EXTENT, y: (lat2y(g[1]) * n - ty) * EXTENT };
        };
        const push = (type, properties, geometry) => dst.features.push({ type, properties, geometry, extent: EXTENT });
        for (const f of src.features || []) {
          if (f.type === 1) {
            const pt = f.geometry[0] && f.geometry[0][0];
            if (pt && pt.x >= 0 && pt.x < ext && pt.y >= 0 && pt.y < ext) push(1, f.properties, [[tr(pt)]]);
          } else if (f.type === 2) {
            const lines = [];
            for (const line of f.geometry) for (const piece of clipLine(line, ext)) lines.push(piece.map(tr));
            if (lines.length) push(2, f.properties, lines);
          } else if (f.type === 3) {
            const rings = [];
            const outline = [];
            for (const ring of f.geometry) {
              const c = clipRing(ring, ext);
              if (c.length >= 3) rings.push(c.map(tr));
              const closed = ring.length && ring[0] !== ring[ring.length - 1] ? ring.concat([ring[0]]) : ring;
              for (const piece of clipLine(closed, ext)) outline.push(piece.map(tr));
            }
            if (rings.length) push(3, derived(f.properties, 'fill'), rings);
            if (outline.length) push(2, derived(f.properties, 'line'), outline);
          }
        }
        dst.length = dst.features.length;
      }
    }
    return { layers: out };
  });
}

/**
 * Leaflet 1.9.4's GridLayer.redraw() takes the map's zoom unrounded (its _setView rounds it):
 * a redraw during a flyTo (a filter change, a write, the field refresh) asked for
 * /tiles/hazards/17.98/… and got 422. Round and range-check it as _setView does.
 */
function patchRedraw() {
  L.GridLayer.prototype.redraw = function redraw() {
    if (!this._map) return this;
    this._removeAllTiles();
    const o = this.options;
    let z = Math.round(this._map.getZoom());
    if ((o.maxZoom !== undefined && z > o.maxZoom) || (o.minZoom !== undefined && z < o.minZoom)) z = undefined;
    else z = this._clampZoom(z);
    if (z !== this._tileZoom) {
      this._tileZoom = z;
      this._updateLevels();
    }
    this._update();
    return this;
  };
}

/**
 * Route VectorGrid's tile loading through the cache and the GCJ-02 shift; afterTile(layer,
 * coords, json, datum) sees every tile once it is loaded.
 */
export function patchVectorGrid(afterTile) {
  patchRedraw();
  const proto = L.VectorGrid.Protobuf.prototype;
  rawGetTile = proto._getVectorTilePromise;
  proto._getVectorTilePromise = function getTile(coords) {
    const layer = this;
    const z = coords.z + (this.options.zoomOffset || 0);
    const datum = GM.datum;
    const p = datum === 'gcj02' ? shiftedTile(layer, z, coords.x, coords.y) : fetchTile(layer, z, coords.x, coords.y);
    return p.then(
      (json) => {
        try {
          afterTile(layer, coords, json, datum);
        } catch (e) {
          if (window.console) console.warn('gismap: tile post-processing failed', e);
        }
        return json;
      },
      () => ({ layers: {} })
    );
  };
}

/** The LatLng of a point given in a tile's units. */
export function tileLatLng(coords, pt) {
  const size = GM.cfg.tile.size;
  const px = L.point(coords.x * size + (pt.x / EXTENT) * size, coords.y * size + (pt.y / EXTENT) * size);
  return GM.map.unproject(px, coords.z);
}
