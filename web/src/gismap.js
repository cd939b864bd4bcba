/*
 * gismap.js: the behaviour of the /map page (网格地图).
 *
 * Folium writes the Leaflet map, its basemaps, one vector-tile layer per grid level plus
 * facilities and hazards, and the layer control; it calls GM.setup(map) right after the map
 * exists (before any layer loads) and GM.init({...}) once every layer is made.
 *
 * Nothing here holds data: grids, facilities and hazards come as vector tiles (/tiles) or as
 * small JSON answers of the API fetched when needed (a click, a search, a zoomed-in view).
 *
 * Datums: the API and the tiles speak WGS84. An AMap basemap is drawn in GCJ-02, so while it
 * is on, GM.datum is 'gcj02' and every layer is shifted into GCJ-02: vector tiles vertex by
 * vertex (see shiftedTile), JSON by asking the API for crs=gcj02; clicks are sent back with
 * crs=gcj02. Everything kept in state (the URL hash, my position) stays WGS84.
 */
(function () {
  'use strict';

  var GM = (window.GM = {});
  var cfg = null;
  var map = null;
  var refs = null; // {map, control, bases, layers, groups} from Folium
  var state = {
    basemap: 'none',
    selected: null, // {kind: 'grid'|'hazard', id}
    me: null, // {lon, lat, acc} WGS84
    filters: { statuses: null, categories: null, facilityTypes: null, overdue: false },
    field: false,
  };
  GM.datum = 'wgs84';
  GM.state = state;

  // ---------------------------------------------------------------------------------------
  // WGS84 ⇄ GCJ-02 (the published formulas; the inverse by fixed-point iteration), as in
  // gis_service/geo/datums.py.
  var GA = 6378245.0;
  var GEE = 0.00669342162296594323;

  function inChina(lon, lat) {
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
  }

  function gcjDelta(lon, lat) {
    var x = lon - 105.0;
    var y = lat - 35.0;
    var sx = Math.sqrt(Math.abs(x));
    var PI = Math.PI;
    var common = ((20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2) / 3;
    var dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common;
    dlat += ((20 * Math.sin(y * PI) + 40 * Math.sin((y / 3) * PI)) * 2) / 3;
    dlat += ((160 * Math.sin((y / 12) * PI) + 320 * Math.sin((y * PI) / 30)) * 2) / 3;
    var dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common;
    dlon += ((20 * Math.sin(x * PI) + 40 * Math.sin((x / 3) * PI)) * 2) / 3;
    dlon += ((150 * Math.sin((x / 12) * PI) + 300 * Math.sin((x / 30) * PI)) * 2) / 3;
    var radlat = (lat / 180) * PI;
    var magic = 1 - GEE * Math.sin(radlat) * Math.sin(radlat);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180) / (((GA * (1 - GEE)) / (magic * sqrtmagic)) * PI);
    dlon = (dlon * 180) / ((GA / sqrtmagic) * Math.cos(radlat) * PI);
    return [dlon, dlat];
  }

  function wgs2gcj(lon, lat) {
    if (!inChina(lon, lat)) return [lon, lat];
    var d = gcjDelta(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  function gcj2wgs(lon, lat) {
    var w = [lon, lat];
    for (var i = 0; i < 30; i++) {
      var f = wgs2gcj(w[0], w[1]);
      var ex = f[0] - lon;
      var ey = f[1] - lat;
      w = [w[0] - ex, w[1] - ey];
      if (Math.abs(ex) < 1e-12 && Math.abs(ey) < 1e-12) break;
    }
    return w;
  }

  function convert(lon, lat, from, to) {
    if (from === to) return [lon, lat];
    var w = from === 'gcj02' ? gcj2wgs(lon, lat) : [lon, lat];
    return to === 'gcj02' ? wgs2gcj(w[0], w[1]) : w;
  }

  /** WGS84 lon/lat → a LatLng in the map's current datum. */
  function toView(lon, lat) {
    var p = convert(lon, lat, 'wgs84', GM.datum);
    return L.latLng(p[1], p[0]);
  }

  /** A LatLng of the map → [lon, lat] WGS84. */
  function fromView(latlng) {
    return convert(latlng.lng, latlng.lat, GM.datum, 'wgs84');
  }

  GM.wgs2gcj = wgs2gcj;
  GM.gcj2wgs = gcj2wgs;
  GM.toView = toView;
  GM.fromView = fromView;

  // ---------------------------------------------------------------------------------------
  // Small helpers.
  function $(id) {
    return document.getElementById(id);
  }

  function esc(value) {
    return String(value == null ? '' : value).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function show(el, on) {
    if (typeof el === 'string') el = $(el);
    if (el) el.hidden = !on;
  }

  function crsParam() {
    return GM.datum === 'gcj02' ? { crs: 'gcj02' } : {};
  }

  function qs(params) {
    var parts = [];
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v === undefined || v === null || v === '') return;
      parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
    });
    return parts.length ? '?' + parts.join('&') : '';
  }

  function cookie(name) {
    var m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (body && body.message) || 'HTTP ' + status;
  }

  /** GET or send JSON; resolves with the parsed body, rejects with an ApiError. */
  function api(path, params, init) {
    init = init || {};
    init.credentials = 'same-origin';
    // A click's answer goes before the tiles still queued (Chrome's fetch priority hint).
    if (!init.priority) init.priority = 'high';
    init.headers = Object.assign({ Accept: 'application/json' }, init.headers || {});
    var method = (init.method || 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') {
      var csrf = cookie('gis_csrf');
      if (csrf) init.headers['X-CSRF-Token'] = csrf;
    }
    return fetch(path + qs(params), init).then(function (r) {
      var type = r.headers.get('content-type') || '';
      var body = type.indexOf('json') >= 0 ? r.json() : r.text();
      return body.then(
        function (data) {
          if (!r.ok) throw new ApiError(r.status, typeof data === 'object' ? data : null);
          return data;
        },
        function () {
          throw new ApiError(r.status, null);
        }
      );
    });
  }
  GM.api = api;

  var toastTimer = null;
  function toast(message, kind) {
    var el = $('gm-toast');
    el.textContent = message;
    el.className = kind ? 'gm-toast-' + kind : '';
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () {
      el.hidden = true;
    }, 4500);
  }
  GM.toast = toast;

  function debounce(fn, ms) {
    var t = null;
    return function () {
      var args = arguments;
      var self = this;
      clearTimeout(t);
      t = setTimeout(function () {
        fn.apply(self, args);
      }, ms);
    };
  }

  function ago(iso) {
    if (!iso) return '';
    var s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 60) return '刚刚';
    if (s < 3600) return Math.floor(s / 60) + ' 分钟前';
    if (s < 86400) return Math.floor(s / 3600) + ' 小时前';
    return Math.floor(s / 86400) + ' 天前';
  }

  function untilText(iso) {
    if (!iso) return '';
    var s = (new Date(iso).getTime() - Date.now()) / 1000;
    var a = Math.abs(s);
    var t = a < 3600 ? Math.max(1, Math.floor(a / 60)) + ' 分钟' : a < 86400 ? Math.floor(a / 3600) + ' 小时' : Math.floor(a / 86400) + ' 天';
    return s >= 0 ? '剩余 ' + t : '逾期 ' + t;
  }

  /** "剩余 3 小时" / "逾期 2 天"; nothing when the deadline passed but its clock is stopped. */
  function dueText(p) {
    if (!p.due_at) return '';
    if (p.overdue || new Date(p.due_at).getTime() > Date.now()) return untilText(p.due_at);
    return '';
  }

  /** The API's overdue rule: past the deadline while the clock runs (accepted … in_progress). */
  function isOverdue(p) {
    return !!p.overdue && (!cfg.clockStatuses || cfg.clockStatuses.indexOf(p.status) >= 0);
  }

  function fmtTime(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    var p = function (n) {
      return (n < 10 ? '0' : '') + n;
    };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  function distanceM(a, b) {
    var R = 6371008.8;
    var rad = Math.PI / 180;
    var dlat = (b[1] - a[1]) * rad;
    var dlon = (b[0] - a[0]) * rad;
    var h = Math.sin(dlat / 2) * Math.sin(dlat / 2) + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dlon / 2) * Math.sin(dlon / 2);
    return 2 * R * Math.asin(Math.sqrt(h));
  }

  function fmtDistance(m) {
    return m < 1000 ? Math.round(m) + ' 米' : (m / 1000).toFixed(1) + ' 公里';
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(b) : b.forEach(function (_, i) { b[i] = Math.random() * 256; });
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function levelInfo(level) {
    for (var i = 0; i < cfg.levels.length; i++) if (cfg.levels[i].level === level) return cfg.levels[i];
    return { level: level, name: level, color: '#555' };
  }

  function categoryName(code) {
    for (var i = 0; i < cfg.hazardCategories.length; i++) if (cfg.hazardCategories[i].code === code) return cfg.hazardCategories[i].name;
    return code;
  }

  function severityBadge(sev) {
    var s = cfg.severities[sev] || { name: sev || '—', color: '#777' };
    return '<span class="gm-sev" style="background:' + esc(s.color) + '">' + esc(s.name) + '</span>';
  }

  // ---------------------------------------------------------------------------------------
  // Hazard and facility filters (applied to tiles, markers and the heat map alike).
  function hazardVisible(p) {
    var f = state.filters;
    if (f.overdue && !isOverdue(p)) return false;
    if (f.statuses && f.statuses.indexOf(p.status) < 0) return false;
    if (f.categories && f.categories.indexOf(p.category_code) < 0) return false;
    return true;
  }

  function facilityVisible(type) {
    var f = state.filters.facilityTypes;
    return !f || f.indexOf(type) >= 0;
  }

  // ---------------------------------------------------------------------------------------
  // Vector-tile styles. In GCJ-02 mode a polygon arrives as two parts (see shiftedTile): a
  // fill without outline and an outline without fill, so the seams never show.
  function parted(fn) {
    return function (p, z) {
      var s = fn(p, z);
      if (!p.__part) return s;
      var list = Array.isArray(s) ? s : [s];
      return list.map(function (x) {
        return Object.assign({}, x, p.__part === 'fill' ? { stroke: false } : { fill: false });
      });
    };
  }

  function gridStyle(level) {
    var lv = levelInfo(level);
    return parted(function (p, z) {
      var s = { color: lv.color, weight: lv.weight, opacity: 0.85, fill: false };
      if (level === 'special') {
        s.dashArray = '6,4';
        s.fill = true;
        s.fillColor = lv.color;
        s.fillOpacity = 0.06;
      } else if (p.open_hazards > 0 && (level === 'micro_grid' || (level === 'grid' && z < levelInfo('micro_grid').minzoom))) {
        // Grids with open hazards are tinted (the finest level drawn): the more, the redder.
        s.fill = true;
        s.fillColor = '#e53935';
        s.fillOpacity = Math.min(0.06 + 0.04 * p.open_hazards, 0.28);
      }
      return s;
    });
  }

  function hazardStyle(p, z) {
    if (!hazardVisible(p)) return [];
    var sev = cfg.severities[p.severity] || { color: '#757575' };
    // Bigger where facility icons (26 px) share the view, so hazards stay the eye-catcher.
    var r = (z >= cfg.facilityMarkerZoom ? 10 : z >= 16 ? 7 : 5) + (p.count > 1 ? Math.min(6, Math.log2(p.count) * 1.5) : 0);
    var border = z >= cfg.facilityMarkerZoom ? 3 : 1.5;
    var dot = { radius: r, fill: true, fillColor: sev.color, fillOpacity: 0.95, color: '#ffffff', weight: border, opacity: 1 };
    if (isOverdue(p)) {
      return [{ radius: r + 4, fill: true, fillColor: '#b71c1c', fillOpacity: 0.15, color: '#b71c1c', weight: 2.5, opacity: 1, dashArray: '3,2' }, dot];
    }
    return dot;
  }

  function facilityStyle(p, z) {
    if (!facilityVisible(p.type_code)) return [];
    var t = cfg.facilityTypes[p.type_code] || {};
    if (t.geometry === 'line') return { color: p.color || '#607d8b', weight: 2, opacity: 0.8, fill: false };
    if (z >= cfg.facilityMarkerZoom) return []; // drawn as icons (facilityTile)
    var r = p.count > 1 ? 2.5 + Math.min(5, Math.log2(p.count)) : 2.5;
    return { radius: r, fill: true, fillColor: p.color || '#607d8b', fillOpacity: 0.75, color: '#ffffff', weight: 0.6, opacity: 0.8 };
  }

  function paddedBounds() {
    if (!cfg.bounds) return undefined;
    var b = cfg.bounds;
    // Padded by ~2 km so that the GCJ-02 shift (a few hundred metres) stays inside.
    return L.latLngBounds([b[0][0] - 0.02, b[0][1] - 0.02], [b[1][0] + 0.02, b[1][1] + 0.02]);
  }

  /** Options of one vector-tile layer; Folium calls this from the page. */
  GM.tileOptions = function (layerId) {
    var t = cfg.tile;
    var minzoom = t.layers[layerId].minzoom - t.zoomOffset;
    // Facility dots from one zoom later than the tiles allow: denser tiles cost more than
    // the overview gains.
    if (layerId === 'facilities') minzoom += 1;
    var pane = 'gm-grids';
    var style;
    if (layerId.indexOf('grids_') === 0) {
      style = gridStyle(layerId.slice(6));
    } else if (layerId === 'hazards') {
      pane = 'gm-hazards';
      style = parted(hazardStyle);
    } else {
      pane = 'gm-facilities';
      style = parted(facilityStyle);
    }
    var styles = {};
    styles[layerId] = style;
    return {
      gmLayer: layerId,
      pane: pane,
      tileSize: t.size,
      zoomOffset: t.zoomOffset,
      minZoom: minzoom,
      maxZoom: cfg.maxZoom,
      maxNativeZoom: t.maxNativeZoom,
      bounds: paddedBounds(),
      updateWhenIdle: true,
      updateWhenZooming: false,
      keepBuffer: 1,
      interactive: layerId === 'hazards',
      fetchOptions: { priority: 'low' },
      rendererFactory: L.canvas.tile,
      vectorTileLayerStyles: styles,
    };
  };

  // ---------------------------------------------------------------------------------------
  // Tile loading. Every vector tile goes through here: fetched once (a short in-memory cache
  // lets neighbouring GCJ-02 tiles share their sources), shifted when the datum is GCJ-02,
  // then read for labels and the heat map.
  var rawGetTile = null;
  var tileCache = new Map();
  var TILE_CACHE_MS = 60000;
  var TILE_CACHE_MAX = 600;
  var EXTENT = 4096;

  function fetchTile(layer, z, x, y) {
    var key = layer.options.gmLayer + '/' + z + '/' + x + '/' + y;
    var hit = tileCache.get(key);
    if (hit && Date.now() - hit.t < TILE_CACHE_MS) return hit.p;
    var p = rawGetTile.call(layer, { x: x, y: y, z: z }).catch(function () {
      tileCache.delete(key);
      return { layers: {} };
    });
    tileCache.set(key, { t: Date.now(), p: p });
    if (tileCache.size > TILE_CACHE_MAX) tileCache.delete(tileCache.keys().next().value);
    return p;
  }

  function dropCachedTiles(layerId) {
    Array.from(tileCache.keys()).forEach(function (k) {
      if (k.indexOf(layerId + '/') === 0) tileCache.delete(k);
    });
  }

  function lon2x(lon) {
    return lon / 360 + 0.5;
  }
  function lat2y(lat) {
    var s = Math.sin((lat * Math.PI) / 180);
    return 0.5 - (0.25 * Math.log((1 + s) / (1 - s))) / Math.PI;
  }
  function x2lon(x) {
    return x * 360 - 180;
  }
  function y2lat(y) {
    return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  }

  // Sutherland–Hodgman: a ring clipped to the square [0, E]².
  function clipRing(ring, E) {
    var pts = ring;
    var edges = [['x', 0, 1], ['x', E, -1], ['y', 0, 1], ['y', E, -1]];
    for (var k = 0; k < 4 && pts.length; k++) {
      var ax = edges[k][0];
      var v = edges[k][1];
      var sign = edges[k][2];
      var out = [];
      for (var i = 0; i < pts.length; i++) {
        var a = pts[i];
        var b = pts[(i + 1) % pts.length];
        var ina = (a[ax] - v) * sign >= 0;
        var inb = (b[ax] - v) * sign >= 0;
        if (ina) out.push(a);
        if (ina !== inb) {
          var t = (v - a[ax]) / (b[ax] - a[ax]);
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
    var t0 = 0;
    var t1 = 1;
    var dx = b.x - a.x;
    var dy = b.y - a.y;
    var p = [-dx, dx, -dy, dy];
    var q = [a.x, E - a.x, a.y, E - a.y];
    for (var i = 0; i < 4; i++) {
      if (p[i] === 0) {
        if (q[i] < 0) return null;
      } else {
        var r = q[i] / p[i];
        if (p[i] < 0) {
          if (r > t1) return null;
          if (r > t0) t0 = r;
        } else {
          if (r < t0) return null;
          if (r < t1) t1 = r;
        }
      }
    }
    var s = t0 === 0 ? a : { x: a.x + dx * t0, y: a.y + dy * t0 };
    var e = t1 === 1 ? b : { x: a.x + dx * t1, y: a.y + dy * t1 };
    return [s, e];
  }

  function clipLine(line, E) {
    var parts = [];
    var cur = null;
    for (var i = 0; i + 1 < line.length; i++) {
      var seg = clipSegment(line[i], line[i + 1], E);
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
    var o = Object.create(props);
    o.__part = part;
    return o;
  }

  /**
   * The GCJ-02 tile z/tx/ty, made from the WGS84 tiles under it: each source feature is
   * clipped to its own tile (no double drawing in the buffers), each vertex moved
   * WGS84 → GCJ-02 and re-expressed in the target tile's units.
   */
  function shiftedTile(layer, z, tx, ty) {
    var n = Math.pow(2, z);
    var nw = gcj2wgs(x2lon(tx / n), y2lat(ty / n));
    var se = gcj2wgs(x2lon((tx + 1) / n), y2lat((ty + 1) / n));
    var m = 1 / 64;
    var x0 = Math.max(0, Math.floor(lon2x(nw[0]) * n - m));
    var x1 = Math.min(n - 1, Math.floor(lon2x(se[0]) * n + m));
    var y0 = Math.max(0, Math.floor(lat2y(nw[1]) * n - m));
    var y1 = Math.min(n - 1, Math.floor(lat2y(se[1]) * n + m));
    var jobs = [];
    for (var sx = x0; sx <= x1; sx++) {
      for (var sy = y0; sy <= y1; sy++) {
        jobs.push(
          (function (sx, sy) {
            return fetchTile(layer, z, sx, sy).then(function (json) {
              return { sx: sx, sy: sy, json: json };
            });
          })(sx, sy)
        );
      }
    }
    return Promise.all(jobs).then(function (parts) {
      var out = {};
      parts.forEach(function (part) {
        var layers = part.json.layers || {};
        Object.keys(layers).forEach(function (name) {
          var src = layers[name];
          var ext = src.extent || EXTENT;
          var dst = out[name] || (out[name] = { name: name, extent: EXTENT, features: [], length: 0 });
          var tr = function (pt) {
            var lon = x2lon((part.sx + pt.x / ext) / n);
            var lat = y2lat((part.sy + pt.y / ext) / n);
            var g = wgs2gcj(lon, lat);
            return { x: (lon2x(g[0]) * n - tx) * EXTENT, y: (lat2y(g[1]) * n - ty) * EXTENT };
          };
          var push = function (type, props, geometry) {
            dst.features.push({ type: type, properties: props, geometry: geometry, extent: EXTENT });
          };
          (src.features || []).forEach(function (f) {
            if (f.type === 1) {
              var pt = f.geometry[0] && f.geometry[0][0];
              if (pt && pt.x >= 0 && pt.x < ext && pt.y >= 0 && pt.y < ext) push(1, f.properties, [[tr(pt)]]);
            } else if (f.type === 2) {
              var lines = [];
              f.geometry.forEach(function (line) {
                clipLine(line, ext).forEach(function (piece) {
                  lines.push(piece.map(tr));
                });
              });
              if (lines.length) push(2, f.properties, lines);
            } else if (f.type === 3) {
              var rings = [];
              var outline = [];
              f.geometry.forEach(function (ring) {
                var c = clipRing(ring, ext);
                if (c.length >= 3) rings.push(c.map(tr));
                var closed = ring.length && ring[0] !== ring[ring.length - 1] ? ring.concat([ring[0]]) : ring;
                clipLine(closed, ext).forEach(function (piece) {
                  outline.push(piece.map(tr));
                });
              });
              if (rings.length) push(3, derived(f.properties, 'fill'), rings);
              if (outline.length) push(2, derived(f.properties, 'line'), outline);
            }
          });
          dst.length = dst.features.length;
        });
      });
      return { layers: out };
    });
  }

  function patchVectorGrid() {
    // An interactive canvas tile swallows every mouse event, and Leaflet 1.9 ignores DOM
    // events on canvases: hand what hit no feature on to the map (clicks, double clicks).
    // (VectorGrid's own handler also calls L.DomEvent.fakeStop, gone from Leaflet 1.9.)
    L.Canvas.Tile.prototype._onClick = function (e) {
      if (!this._map) return;
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset());
      var hit = null;
      for (var id in this._layers) {
        var layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) && !this._map._draggableMoved(layer)) hit = layer;
      }
      if (hit) {
        // Leaflet 1.9 asks a small circle for its LatLng; VectorGrid's points have none.
        if (!hit._latlng) hit._latlng = this._map.mouseEventToLatLng(e);
        this._fireEvent([hit], e);
      } else this._map._fireDOMEvent(e, e.type);
    };
    var proto = L.VectorGrid.Protobuf.prototype;
    rawGetTile = proto._getVectorTilePromise;
    proto._getVectorTilePromise = function (coords) {
      var layer = this;
      var z = coords.z + (this.options.zoomOffset || 0);
      var datum = GM.datum;
      var p = datum === 'gcj02' ? shiftedTile(layer, z, coords.x, coords.y) : fetchTile(layer, z, coords.x, coords.y);
      return p.then(
        function (json) {
          try {
            afterTile(layer, coords, json, datum);
          } catch (e) {
            if (window.console) console.warn('gismap: tile post-processing failed', e);
          }
          return json;
        },
        function () {
          return { layers: {} };
        }
      );
    };
  }

  function tileLatLng(coords, pt) {
    var size = cfg.tile.size;
    var px = L.point(coords.x * size + (pt.x / EXTENT) * size, coords.y * size + (pt.y / EXTENT) * size);
    return map.unproject(px, coords.z);
  }

  function afterTile(layer, coords, json, datum) {
    if (datum !== GM.datum || !map) return;
    var id = layer.options.gmLayer;
    var data = json.layers && json.layers[id];
    if (id.indexOf('grids_') === 0) labelTile(id.slice(6), coords, data);
    else if (id === 'hazards') heatTile(coords, data);
    else if (id === 'facilities') facilityTile(layer, coords, data);
  }

  // ---------------------------------------------------------------------------------------
  // Labels: each grid's name at the centre of its largest visible piece, drawn only at the
  // level's label zooms and only where the name fits inside that piece.
  var labels = {}; // level → Map(id → {marker, score})
  var labelGroups = {}; // level → L.LayerGroup

  function labelTile(level, coords, data) {
    var lv = levelInfo(level);
    if (!data || !lv.label || coords.z < lv.label[0] || coords.z > lv.label[1]) return;
    if (coords.z !== Math.round(map.getZoom())) return;
    var store = labels[level] || (labels[level] = new Map());
    var scale = cfg.tile.size / EXTENT;
    data.features.forEach(function (f) {
      if (f.type !== 3 || !f.properties.name) return;
      var best = null;
      var bestArea = 0;
      f.geometry.forEach(function (ring) {
        var c = clipRing(ring, EXTENT);
        if (c.length < 3) return;
        var a = 0;
        var cx = 0;
        var cy = 0;
        for (var i = 0; i < c.length; i++) {
          var p = c[i];
          var q = c[(i + 1) % c.length];
          var cross = p.x * q.y - q.x * p.y;
          a += cross;
          cx += (p.x + q.x) * cross;
          cy += (p.y + q.y) * cross;
        }
        if (Math.abs(a) > bestArea && a !== 0) {
          var minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
          c.forEach(function (p) {
            minx = Math.min(minx, p.x); maxx = Math.max(maxx, p.x);
            miny = Math.min(miny, p.y); maxy = Math.max(maxy, p.y);
          });
          bestArea = Math.abs(a);
          best = { x: cx / (3 * a), y: cy / (3 * a), w: (maxx - minx) * scale, h: (maxy - miny) * scale };
        }
      });
      if (!best) return;
      var name = f.properties.name;
      var needW = name.length * 13 + 10;
      if (best.w < needW || best.h < 20) return;
      var id = f.properties.id;
      var old = store.get(id);
      if (old && old.score >= bestArea) return;
      var ll = tileLatLng(coords, best);
      if (old) {
        old.marker.setLatLng(ll);
        old.score = bestArea;
        return;
      }
      var marker = L.marker(ll, {
        icon: L.divIcon({ className: 'gm-label gm-label-' + level, html: '<span>' + esc(name) + '</span>', iconSize: null }),
        interactive: false,
        keyboard: false,
        pane: 'gm-labels',
      });
      store.set(id, { marker: marker, score: bestArea });
      var group = labelGroups[level];
      if (group) group.addLayer(marker);
    });
  }

  function clearLabels() {
    Object.keys(labelGroups).forEach(function (level) {
      labelGroups[level].clearLayers();
    });
    labels = {};
  }

  function pruneLabels() {
    var b = map.getBounds().pad(0.5);
    Object.keys(labels).forEach(function (level) {
      labels[level].forEach(function (v, id) {
        if (!b.contains(v.marker.getLatLng())) {
          labelGroups[level].removeLayer(v.marker);
          labels[level].delete(id);
        }
      });
    });
  }

  function syncLabelGroups() {
    cfg.levels.forEach(function (lv) {
      var vg = refs.layers['grids_' + lv.level];
      var group = labelGroups[lv.level];
      if (!group) return;
      var on = map.hasLayer(vg) && map.hasLayer(refs.groups.labels);
      if (on && !refs.groups.labels.hasLayer(group)) refs.groups.labels.addLayer(group);
      if (!on && refs.groups.labels.hasLayer(group)) refs.groups.labels.removeLayer(group);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Heat map of open hazards, from the hazard tiles already loaded (no extra request).
  var heat = null;
  var heatPoints = new Map(); // tile key → [[lat, lng, weight]]
  var heatRefresh = null;

  function heatTile(coords, data) {
    var key = coords.z + ':' + coords.x + ':' + coords.y;
    var pts = [];
    if (data) {
      data.features.forEach(function (f) {
        if (f.type !== 1 || !hazardVisible(f.properties)) return;
        var pt = f.geometry[0] && f.geometry[0][0];
        if (!pt) return;
        var ll = tileLatLng(coords, pt);
        var w = { low: 0.4, medium: 0.6, high: 0.8, critical: 1 }[f.properties.severity] || 0.5;
        pts.push([ll.lat, ll.lng, w * Math.min(5, f.properties.count || 1)]);
      });
    }
    heatPoints.set(key, pts);
    if (heatRefresh) heatRefresh();
  }

  function updateHeat() {
    if (!heat || !map.hasLayer(refs.groups.heat)) return;
    var z = Math.round(map.getZoom());
    var all = [];
    heatPoints.forEach(function (pts, key) {
      if (+key.split(':')[0] === z) Array.prototype.push.apply(all, pts);
    });
    heat.setLatLngs(all);
  }

  // ---------------------------------------------------------------------------------------
  // Facilities as icons when zoomed in: read from the same vector tiles (already shifted in
  // GCJ-02 mode), clustered; each tile's markers leave with the tile. Details are fetched
  // from the API when a popup opens.
  var facilityCluster = null;
  var facilityIcons = {};
  var facilityMarkers = new Map(); // facility id → marker
  var facilityTiles = new Map(); // tile key → [ids]

  function facilityIcon(type) {
    if (facilityIcons[type]) return facilityIcons[type];
    var t = cfg.facilityTypes[type] || { icon: 'circle', color: '#607d8b' };
    facilityIcons[type] = L.divIcon({
      className: 'gm-fac',
      html: '<span style="background:' + esc(t.color) + '"><i class="fa-solid fa-' + esc(t.icon) + '"></i></span>',
      iconSize: [26, 26],
      iconAnchor: [13, 13],
      popupAnchor: [0, -12],
    });
    return facilityIcons[type];
  }

  var FACILITY_STATUS = { planned: '规划', in_service: '在用', damaged: '损坏', under_repair: '维修中', retired: '停用' };

  function facilityPopup(p, f) {
    var t = cfg.facilityTypes[p.type_code || p.type] || {};
    var attrs = (f && f.properties.attributes) || {};
    var spec = t.attributes || {};
    var rows = Object.keys(attrs)
      .filter(function (k) { return k !== 'demo' && typeof attrs[k] !== 'object'; })
      .slice(0, 8)
      .map(function (k) {
        var a = spec[k] || {};
        var v = a.values && a.values[attrs[k]] ? a.values[attrs[k]] : attrs[k];
        return '<tr><th>' + esc(a.label || k) + '</th><td>' + esc(v === true ? '是' : v === false ? '否' : v) + '</td></tr>';
      })
      .join('');
    return (
      '<div class="gm-pop" data-facility="' + esc(p.id) + '"><div class="gm-pop-title"><i class="fa-solid fa-' + esc(t.icon || 'circle') + '" style="color:' + esc(t.color) + '"></i> ' +
      esc(p.name || t.name) + '</div><div class="gm-muted">' + esc(p.type_name || t.name) + ' · ' + esc(FACILITY_STATUS[p.status] || p.status) +
      '</div><div class="gm-code">' + esc(p.code) + '</div>' + (f ? (rows ? '<table class="gm-attrs">' + rows + '</table>' : '') : loadingHtml('')) +
      '<button class="gm-link" type="button" data-report-at="1">在此上报隐患</button></div>'
    );
  }

  function facilityTile(layer, coords, data) {
    var key = layer._tileCoordsToKey(coords);
    dropFacilityTile(key);
    if (!data || coords.z < cfg.facilityMarkerZoom || !layer._tiles[key]) return;
    var ids = [];
    var add = [];
    data.features.forEach(function (f) {
      var p = f.properties;
      var pt = f.type === 1 && f.geometry[0] && f.geometry[0][0];
      // Each point once: only in the tile that holds it (tiles overlap by their buffers).
      if (!pt || pt.x < 0 || pt.y < 0 || pt.x >= EXTENT || pt.y >= EXTENT) return;
      if (!facilityVisible(p.type_code) || facilityMarkers.has(p.id)) return;
      var mk = L.marker(tileLatLng(coords, pt), { icon: facilityIcon(p.type_code), title: p.name || p.type_name, keyboard: false });
      mk.bindPopup(facilityPopup(p, null), { maxWidth: 280 });
      mk.on('popupopen', function () {
        api('/api/v1/facilities/' + p.id).then(
          function (f) {
            mk.setPopupContent(facilityPopup(p, f));
          },
          function () {}
        );
      });
      mk.on('add', function () {
        var el = mk.getElement();
        if (el) el.setAttribute('data-facility-id', p.id);
      });
      facilityMarkers.set(p.id, mk);
      ids.push(p.id);
      add.push(mk);
    });
    facilityTiles.set(key, ids);
    if (add.length) facilityCluster.addLayers(add);
  }

  function dropFacilityTile(key) {
    var ids = facilityTiles.get(key);
    if (!ids) return;
    facilityTiles.delete(key);
    var gone = [];
    ids.forEach(function (id) {
      var mk = facilityMarkers.get(id);
      if (mk) gone.push(mk);
      facilityMarkers.delete(id);
    });
    if (gone.length) facilityCluster.removeLayers(gone);
  }

  GM.facilityMarker = function (id) {
    return facilityMarkers.get(id) || null;
  };


  // ---------------------------------------------------------------------------------------
  // Outline of the territory (always), and a mask around it on the "none" basemap.
  var outlineGeom = null;
  var outlineLayer = null;

  function drawOutline() {
    if (!outlineGeom) return;
    if (outlineLayer) map.removeLayer(outlineLayer);
    var polys = [];
    var collect = function (g) {
      if (!g) return;
      if (g.type === 'Polygon') polys.push(g.coordinates);
      else if (g.type === 'MultiPolygon') polys.push.apply(polys, g.coordinates);
      else if (g.type === 'GeometryCollection') g.geometries.forEach(collect);
    };
    collect(outlineGeom);
    var rings = [];
    polys.forEach(function (poly) {
      poly.forEach(function (ring) {
        rings.push(ring.map(function (c) { return toView(c[0], c[1]); }));
      });
    });
    var group = L.featureGroup();
    if (state.basemap === 'none' && rings.length) {
      var world = [L.latLng(-85, -180), L.latLng(85, -180), L.latLng(85, 180), L.latLng(-85, 180)];
      L.polygon([world].concat(rings), { pane: 'gm-outline', stroke: false, fillColor: '#dfe4ea', fillOpacity: 0.75, interactive: false }).addTo(group);
    }
    rings.forEach(function (r) {
      L.polyline(r.concat([r[0]]), { pane: 'gm-outline', color: '#ffffff', weight: 7, opacity: 0.9, interactive: false }).addTo(group);
      L.polyline(r.concat([r[0]]), { pane: 'gm-outline', color: '#1f3b73', weight: 2.5, opacity: 0.9, interactive: false }).addTo(group);
    });
    outlineLayer = group.addTo(map);
  }

  // ---------------------------------------------------------------------------------------
  // Selection highlight, my position, the report pin.
  var selectLayer = null;
  var selectGeom = null; // GeoJSON (WGS84) of the selected grid or hazard point
  var meLayer = null;
  var reportPin = null;

  function drawSelection() {
    if (selectLayer) map.removeLayer(selectLayer);
    selectLayer = null;
    if (!selectGeom) return;
    selectLayer = L.geoJSON(selectGeom, {
      coordsToLatLng: function (c) {
        return toView(c[0], c[1]);
      },
      pane: 'gm-select',
      interactive: false,
      style: { color: '#00b8d4', weight: 4, opacity: 1, fillColor: '#00e5ff', fillOpacity: 0.12 },
      pointToLayer: function (f, ll) {
        return L.circleMarker(ll, { pane: 'gm-select', radius: 14, color: '#00b8d4', weight: 3, fill: false, interactive: false });
      },
    }).addTo(map);
  }

  function drawMe() {
    if (meLayer) map.removeLayer(meLayer);
    meLayer = null;
    if (!state.me) return;
    var ll = toView(state.me.lon, state.me.lat);
    meLayer = L.featureGroup([
      L.circle(ll, { radius: state.me.acc || 20, color: '#1e88e5', weight: 1, fillColor: '#1e88e5', fillOpacity: 0.12, interactive: false }),
      L.circleMarker(ll, { radius: 8, color: '#ffffff', weight: 3, fillColor: '#1e88e5', fillOpacity: 1, interactive: false }),
    ]).addTo(map);
  }

  // ---------------------------------------------------------------------------------------
  // Basemaps and the datum switch.
  function basemapInfo(key) {
    for (var i = 0; i < cfg.basemaps.length; i++) if (cfg.basemaps[i].key === key) return cfg.basemaps[i];
    return null;
  }

  function chooseBasemap() {
    var url = new URLSearchParams(location.search).get('basemap');
    var stored = null;
    try {
      stored = localStorage.getItem('gm.basemap');
    } catch (e) {
      stored = null;
    }
    var pick = [url, stored, cfg.basemap].filter(function (k) {
      return k && basemapInfo(k);
    })[0];
    return pick || cfg.basemaps[0].key;
  }

  function vectorLayers() {
    return Object.keys(refs.layers).map(function (k) {
      return refs.layers[k];
    });
  }

  /** Switch the datum with the basemap, keeping the same ground under the same pixel. */
  function applyBasemap(key) {
    var info = basemapInfo(key);
    if (!info) return;
    var old = GM.datum;
    state.basemap = key;
    try {
      localStorage.setItem('gm.basemap', key);
    } catch (e) {
      /* private mode */
    }
    document.body.setAttribute('data-basemap', key);
    if (info.datum !== old) {
      var c = map.getCenter();
      var p = convert(c.lng, c.lat, old, info.datum);
      GM.datum = info.datum;
      map.setView([p[1], p[0]], map.getZoom(), { animate: false });
      clearLabels();
      heatPoints.clear();
      vectorLayers().forEach(function (l) {
        if (map.hasLayer(l)) l.redraw();
      });
      drawSelection();
      drawMe();
      if (reportPin && reportPoint) placeReportPin();
    }
    drawOutline();
    document.body.setAttribute('data-datum', GM.datum);
  }

  /** Programmatic basemap switch (the layer control does the same). */
  GM.setBasemap = function (key) {
    if (!refs.bases[key]) return;
    Object.keys(refs.bases).forEach(function (k) {
      if (k !== key && map.hasLayer(refs.bases[k])) map.removeLayer(refs.bases[k]);
    });
    if (!map.hasLayer(refs.bases[key])) map.addLayer(refs.bases[key]);
    applyBasemap(key);
  };

  // ---------------------------------------------------------------------------------------
  // The URL hash: #map=zoom/lat/lon (WGS84) [&grid=id | &hazard=id].
  function readHash() {
    var out = {};
    location.hash
      .replace(/^#/, '')
      .split('&')
      .forEach(function (kv) {
        var i = kv.indexOf('=');
        if (i > 0) out[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
      });
    return out;
  }

  function writeHash() {
    var c = map.getCenter();
    var w = fromView(c);
    var h = 'map=' + map.getZoom() + '/' + w[1].toFixed(5) + '/' + w[0].toFixed(5);
    if (state.selected) h += '&' + state.selected.kind + '=' + state.selected.id;
    if (history.replaceState) history.replaceState(null, '', '#' + h);
  }

  // ---------------------------------------------------------------------------------------
  // Hints at the bottom: what the current zoom shows.
  var hintTimer = null;
  function setHint(text) {
    var el = $('gm-hint');
    if (!text) {
      el.hidden = true;
      return;
    }
    el.textContent = text;
    el.hidden = false;
    clearTimeout(hintTimer);
    hintTimer = setTimeout(function () {
      el.hidden = true;
    }, 6000);
  }

  function zoomHint() {
    var z = map.getZoom();
    var next = null;
    for (var i = 0; i < cfg.levels.length; i++) {
      if (cfg.levels[i].level !== 'special' && z < cfg.levels[i].minzoom) {
        next = cfg.levels[i];
        break;
      }
    }
    var hz = cfg.tile.layers.hazards.minzoom - cfg.tile.zoomOffset;
    if (z < hz) setHint('放大查看隐患与' + (next ? next.name : '更细网格') + '（点击地图任意位置可查询所属网格）');
    else if (next) setHint('继续放大查看' + next.name);
    else if (z < cfg.facilityMarkerZoom) setHint('放大到 ' + cfg.facilityMarkerZoom + ' 级查看部件图标');
    else setHint(null);
  }

  // ---------------------------------------------------------------------------------------
  // The panel: a grid (chain, leaders with phones, counts, open hazards) or a hazard.
  var panelToken = 0;

  function openPanel(html) {
    $('gm-panel-body').innerHTML = html;
    show('gm-panel', true);
    document.body.classList.add('gm-panel-open');
  }

  function closePanel() {
    show('gm-panel', false);
    document.body.classList.remove('gm-panel-open');
    state.selected = null;
    selectGeom = null;
    drawSelection();
    writeHash();
  }

  function loadingHtml(text) {
    return '<div class="gm-loading"><i class="fa-solid fa-spinner fa-spin"></i> ' + esc(text || '正在查询…') + '</div>';
  }

  /** The finest grid of the chain whose level is drawn at this zoom. */
  function pickLevel(chain) {
    var z = map.getZoom();
    var pick = chain[chain.length - 1];
    for (var i = chain.length - 1; i >= 0; i--) {
      var lv = levelInfo(chain[i].level);
      if (z >= (lv.minzoom || 0) - 1) return chain[i];
      pick = chain[i];
    }
    return pick;
  }

  /** A click on the map: which grids cover this point (sent in the map's datum). */
  function selectAt(latlng) {
    var token = ++panelToken;
    openPanel(loadingHtml());
    api('/api/v1/locate', Object.assign({ lon: latlng.lng.toFixed(7), lat: latlng.lat.toFixed(7) }, crsParam())).then(
      function (loc) {
        if (token !== panelToken) return;
        var target = pickLevel(loc.chain);
        showGrid(target.id, { specials: loc.special_grids || [], point: latlng });
      },
      function (e) {
        if (token !== panelToken) return;
        var near = e.body && e.body.details && e.body.details.nearest_grid;
        openPanel(
          '<div class="gm-empty"><i class="fa-solid fa-circle-info"></i> 此处不在任何网格内。' +
            (near ? '<br>最近的网格：<a href="#grid=' + near.id + '" data-grid="' + near.id + '">' + esc(near.name) + '</a>（约 ' + Math.round(near.distance_m) + ' 米）' : '') +
            '</div>'
        );
      }
    );
  }
  GM.selectAt = selectAt;

  function peopleHtml(people) {
    if (!people || !people.length) return '<p class="gm-muted">暂无登记的负责人</p>';
    var sorted = people.slice().sort(function (a, b) {
      return (b.is_primary ? 1 : 0) - (a.is_primary ? 1 : 0);
    });
    return (
      '<ul class="gm-people">' +
      sorted
        .map(function (p, i) {
          var lead = i === 0 && p.is_primary;
          return (
            '<li' + (p.is_primary ? ' class="gm-primary-person"' : '') + '>' +
            '<span class="gm-role">' + esc(p.role_name || p.role) + '</span>' +
            '<b' + (lead ? ' data-gm="leader-name"' : '') + '>' + esc(p.name) + '</b>' +
            (p.is_primary ? '<span class="gm-tag">主责</span>' : '') +
            (p.work_phone
              ? '<a class="gm-phone" href="tel:' + esc(p.work_phone) + '"' + (lead ? ' data-gm="leader-phone"' : '') + '><i class="fa-solid fa-phone"></i> ' + esc(p.work_phone) + '</a>'
              : '') +
            '</li>'
          );
        })
        .join('') +
      '</ul>'
    );
  }

  function hazardItemHtml(f) {
    var p = f.properties;
    return (
      '<li class="gm-hz' + (p.overdue ? ' gm-overdue' : '') + '">' +
      '<a href="#hazard=' + f.id + '" data-hazard="' + f.id + '">' +
      severityBadge(p.severity) +
      '<span class="gm-hz-name">' + esc(p.category_name || categoryName(p.category)) + '</span>' +
      '<span class="gm-status">' + esc(p.status_name || cfg.statuses[p.status] || p.status) + '</span>' +
      (p.overdue ? '<span class="gm-tag gm-tag-red">逾期</span>' : '') +
      '<span class="gm-hz-meta">' + esc(p.public_code) + ' · ' + esc(ago(p.reported_at)) + (dueText(p) ? ' · ' + esc(dueText(p)) : '') + '</span>' +
      '</a></li>'
    );
  }

  function countsHtml(sub) {
    var cells = [
      ['未结隐患', sub.open_hazards, 'open-count', sub.open_hazards > 0 ? 'gm-warn' : ''],
      ['逾期', sub.overdue_hazards, 'overdue-count', sub.overdue_hazards > 0 ? 'gm-bad' : ''],
      ['部件', sub.facilities, 'facility-count', ''],
      ['人员', sub.people, 'people-count', ''],
    ];
    return (
      '<div class="gm-stats">' +
      cells
        .map(function (c) {
          return '<div class="gm-stat ' + c[3] + '"><b data-gm="' + c[2] + '">' + esc(c[1] == null ? '—' : c[1]) + '</b><span>' + c[0] + '</span></div>';
        })
        .join('') +
      '</div>'
    );
  }

  function chipsHtml(obj, names, icons) {
    var keys = Object.keys(obj || {}).sort(function (a, b) {
      return obj[b] - obj[a];
    });
    if (!keys.length) return '';
    return (
      '<div class="gm-chips">' +
      keys
        .map(function (k) {
          var ic = icons && icons[k];
          return (
            '<span class="gm-chip">' +
            (ic ? '<i class="fa-solid fa-' + esc(ic.icon) + '" style="color:' + esc(ic.color) + '"></i> ' : '') +
            esc(names(k)) + ' <b>' + esc(obj[k]) + '</b></span>'
          );
        })
        .join('') +
      '</div>'
    );
  }

  function attributesHtml(a) {
    if (!a) return '';
    var rows = [];
    if (a.households != null) rows.push(['户数', a.households]);
    if (a.population != null) rows.push(['人口', a.population]);
    if (a.building) {
      if (a.building.floors) rows.push(['楼层', a.building.floors]);
      if (a.building.built_year) rows.push(['建成', a.building.built_year]);
      if (a.building.property_company) rows.push(['物业', a.building.property_company]);
    }
    if (a.unmanaged_compound) rows.push(['性质', '无主管楼院']);
    if (a.kind && !a.building) rows.push(['类型', a.kind]);
    if (!rows.length) return '';
    return '<table class="gm-attrs">' + rows.map(function (r) { return '<tr><th>' + esc(r[0]) + '</th><td>' + esc(r[1]) + '</td></tr>'; }).join('') + '</table>';
  }

  /** Show one grid: its feature, summary and open hazards, fetched now. */
  function showGrid(id, opts) {
    opts = opts || {};
    var token = ++panelToken;
    state.selected = { kind: 'grid', id: id };
    writeHash();
    if (!opts.keepPanel) openPanel(loadingHtml());
    var crs = crsParam();
    Promise.all([
      api('/api/v1/grids/' + id),
      api('/api/v1/grids/' + id + '/summary'),
      api('/api/v1/grids/' + id + '/hazards', Object.assign({ limit: 50 }, crs)),
    ]).then(
      function (res) {
        if (token !== panelToken) return;
        var feat = res[0];
        var sum = res[1];
        var hz = res[2];
        var p = feat.properties;
        var lv = levelInfo(p.level);
        selectGeom = feat.geometry;
        drawSelection();
        if (opts.fly) flyToGeometry(feat.geometry);
        var chain = (p.chain || [])
          .map(function (c) {
            var cur = c.id === id;
            return (cur ? '<b>' : '<a href="#grid=' + c.id + '" data-grid="' + c.id + '">') + '<small>' + esc(levelInfo(c.level).name) + '</small> ' + esc(c.name) + (cur ? '</b>' : '</a>');
          })
          .join('<span class="gm-sep">›</span>');
        var sub = sum.subtree || {};
        var hazards = hz.features || [];
        var more = (hz.numberMatched || 0) > hazards.length ? '<p class="gm-muted">共 ' + hz.numberMatched + ' 条，显示最近 ' + hazards.length + ' 条</p>' : '';
        var children = sub.grids_by_level || {};
        var specials = (opts.specials || [])
          .map(function (s) {
            return '<a class="gm-chip" href="#grid=' + s.id + '" data-grid="' + s.id + '"><i class="fa-solid fa-building-flag"></i> ' + esc(s.name) + '</a>';
          })
          .join('');
        var html =
          '<header class="gm-ph" data-grid-id="' + id + '">' +
          '<span class="gm-level" style="background:' + esc(lv.color) + '">' + esc(p.level_name || lv.name) + '</span>' +
          '<h2 data-gm="grid-name">' + esc(p.name) + '</h2>' +
          '<div class="gm-code" data-gm="grid-code">' + esc(p.code) + '</div>' +
          '</header>' +
          '<nav class="gm-chain" data-gm="chain">' + chain + '</nav>' +
          (specials ? '<div class="gm-specials"><span class="gm-muted">专属网格：</span>' + specials + '</div>' : '') +
          '<section><h3>负责人 <small>Responsible</small></h3>' + peopleHtml(sum.people || p.people) + '</section>' +
          countsHtml(sub) +
          (Object.keys(children).length
            ? '<p class="gm-muted gm-children">下辖：' + Object.keys(children).map(function (k) { return esc(levelInfo(k).name) + ' ' + children[k] + ' 个'; }).join('，') + '</p>'
            : '') +
          '<section><h3>未结隐患 <small>Open hazards</small> <span class="gm-count">' + esc(sub.open_hazards) + '</span></h3>' +
          (hazards.length ? '<ul class="gm-hazards" data-gm="hazard-list">' + hazards.map(hazardItemHtml).join('') + '</ul>' + more : '<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> 暂无未结隐患</p>') +
          '</section>' +
          (Object.keys(sub.open_hazards_by_category || {}).length
            ? '<section><h3>按类别</h3>' + chipsHtml(sub.open_hazards_by_category, categoryName) + chipsHtml(sub.open_hazards_by_status, function (k) { return cfg.statuses[k] || k; }) + '</section>'
            : '') +
          (Object.keys(sub.facilities_by_type || {}).length
            ? '<section><h3>部件 <small>Facilities</small></h3>' + chipsHtml(sub.facilities_by_type, function (k) { return (cfg.facilityTypes[k] || {}).name || k; }, cfg.facilityTypes) + '</section>'
            : '') +
          (attributesHtml(p.attributes) ? '<section><h3>基本信息</h3>' + attributesHtml(p.attributes) + '</section>' : '') +
          '<div class="gm-actions">' +
          '<button type="button" class="gm-btn" data-action="zoom-grid"><i class="fa-solid fa-expand"></i> 缩放至网格</button>' +
          '<button type="button" class="gm-btn gm-primary" data-action="report-here"><i class="fa-solid fa-triangle-exclamation"></i> 在此上报</button>' +
          '<a class="gm-btn" href="/api/v1/grids/' + id + '" target="_blank" rel="noopener">API</a>' +
          '</div>';
        openPanel(html);
        lastGrid = { id: id, geometry: feat.geometry, point: opts.point || null };
      },
      function (e) {
        if (token !== panelToken) return;
        openPanel('<div class="gm-error">查询失败：' + esc(e.message) + '</div>');
      }
    );
  }
  GM.showGrid = showGrid;
  var lastGrid = null;

  function geometryBounds(geom) {
    var b = L.latLngBounds([]);
    var walk = function (c) {
      if (typeof c[0] === 'number') b.extend(toView(c[0], c[1]));
      else c.forEach(walk);
    };
    if (geom && geom.coordinates) walk(geom.coordinates);
    return b;
  }

  function flyToGeometry(geom) {
    var b = geometryBounds(geom);
    if (!b.isValid()) return;
    var pad = state.field ? [20, 20] : [40, 40];
    var opts = { paddingTopLeft: pad, paddingBottomRight: document.body.classList.contains('gm-panel-open') && !state.field ? [400, 40] : pad, maxZoom: 18 };
    map.flyToBounds(b, Object.assign(opts, { duration: 0.6 }));
  }

  /** Show one hazard: status, deadline, responsible, history. */
  function showHazard(id, opts) {
    opts = opts || {};
    var token = ++panelToken;
    state.selected = { kind: 'hazard', id: id };
    writeHash();
    openPanel(loadingHtml());
    api('/api/v1/hazards/' + id).then(
      function (f) {
        if (token !== panelToken) return;
        var p = f.properties;
        selectGeom = f.geometry;
        drawSelection();
        if (opts.fly !== false && f.geometry) {
          var c = f.geometry.coordinates;
          map.flyTo(toView(c[0], c[1]), Math.max(map.getZoom(), 17), { duration: 0.6 });
        }
        var chain = (p.grid_chain || [])
          .map(function (c) {
            return '<a href="#grid=' + c.id + '" data-grid="' + c.id + '"><small>' + esc(levelInfo(c.level).name) + '</small> ' + esc(c.name) + '</a>';
          })
          .join('<span class="gm-sep">›</span>');
        var resp = p.responsible || p.assignee;
        var history = (p.history || [])
          .map(function (h) {
            return '<li><span class="gm-when">' + esc(fmtTime(h.at)) + '</span> ' + esc(cfg.statuses[h.to_status] || h.action) + (h.actor ? ' · ' + esc(h.actor) : '') + (h.note ? '<div class="gm-muted">' + esc(h.note) + '</div>' : '') + '</li>';
          })
          .join('');
        var photos = (p.photos || [])
          .map(function (ph) {
            var url = ph.thumb_url || ph.url;
            return url ? '<a href="' + esc(ph.url || url) + '" target="_blank" rel="noopener"><img src="' + esc(url) + '" alt="照片" loading="lazy"></a>' : '';
          })
          .join('');
        openPanel(
          '<header class="gm-ph" data-hazard-id="' + id + '">' +
            '<span class="gm-level" style="background:#c62828">隐患</span>' +
            '<h2>' + esc(p.category_name || categoryName(p.category)) + '</h2>' +
            '<div class="gm-code">' + esc(p.public_code) + '</div>' +
            '</header>' +
            '<div class="gm-hz-head">' + severityBadge(p.severity) + '<span class="gm-status">' + esc(p.status_name || cfg.statuses[p.status]) + '</span>' +
            (p.overdue ? '<span class="gm-tag gm-tag-red">已逾期</span>' : '') + '</div>' +
            (p.description ? '<p class="gm-desc">' + esc(p.description) + '</p>' : '') +
            (photos ? '<div class="gm-photos">' + photos + '</div>' : '') +
            '<table class="gm-attrs">' +
            '<tr><th>上报</th><td>' + esc(fmtTime(p.reported_at)) + '（' + esc(ago(p.reported_at)) + '）</td></tr>' +
            (p.due_at ? '<tr><th>期限</th><td>' + esc(fmtTime(p.due_at)) + (dueText(p) ? '（' + esc(dueText(p)) + '）' : '') + '</td></tr>' : '') +
            (p.address ? '<tr><th>地址</th><td>' + esc(p.address) + '</td></tr>' : '') +
            (p.department ? '<tr><th>责任部门</th><td>' + esc(typeof p.department === 'object' ? p.department.name : p.department) + '</td></tr>' : '') +
            (resp ? '<tr><th>责任人</th><td>' + esc(resp.name) + (resp.work_phone ? ' <a href="tel:' + esc(resp.work_phone) + '">' + esc(resp.work_phone) + '</a>' : '') + '</td></tr>' : '') +
            '</table>' +
            (chain ? '<nav class="gm-chain">' + chain + '</nav>' : '') +
            (history ? '<section><h3>办理经过</h3><ol class="gm-history">' + history + '</ol></section>' : '') +
            '<div class="gm-actions">' +
            (p.grid_id ? '<a class="gm-btn" href="#grid=' + p.grid_id + '" data-grid="' + p.grid_id + '"><i class="fa-solid fa-arrow-left"></i> 所属网格</a>' : '') +
            (f.geometry ? navLink(f.geometry.coordinates, p.category_name) : '') +
            '<a class="gm-btn" href="/api/v1/hazards/' + id + '" target="_blank" rel="noopener">API</a>' +
            '</div>'
        );
      },
      function (e) {
        if (token !== panelToken) return;
        openPanel('<div class="gm-error">查询失败：' + esc(e.message) + '</div>');
      }
    );
  }
  GM.showHazard = showHazard;

  /** An AMap navigation link (opens the AMap app on a phone); AMap wants GCJ-02. */
  function navLink(wgs, name, given) {
    var href = given;
    if (!href) {
      var g = wgs2gcj(wgs[0], wgs[1]);
      href = 'https://uri.amap.com/navigation?to=' + g[0].toFixed(6) + ',' + g[1].toFixed(6) + ',' + encodeURIComponent(name || '隐患位置') + '&mode=walk&coordinate=gaode&callnative=1&src=gis-service';
    }
    return '<a class="gm-btn" href="' + esc(href) + '" target="_blank" rel="noopener"><i class="fa-solid fa-diamond-turn-right"></i> 高德导航</a>';
  }

  // ---------------------------------------------------------------------------------------
  // Search: grids by name or code (name part or code prefix), fly to the chosen one.
  function initSearch() {
    var input = $('gm-search');
    var list = $('gm-search-results');
    var results = [];
    var active = -1;
    var ctl = null;

    function render() {
      if (!results.length) {
        list.innerHTML = '<li class="gm-muted gm-noresult">没有找到匹配的网格</li>';
        show(list, true);
        return;
      }
      list.innerHTML = results
        .map(function (f, i) {
          var p = f.properties;
          var lv = levelInfo(p.level);
          return (
            '<li role="option" data-i="' + i + '"' + (i === active ? ' class="gm-active"' : '') + '>' +
            '<span class="gm-level" style="background:' + esc(lv.color) + '">' + esc(p.level_name || lv.name) + '</span>' +
            '<span class="gm-res-name">' + esc(p.name) + '</span><span class="gm-code">' + esc(p.code) + '</span></li>'
          );
        })
        .join('');
      show(list, true);
    }

    function choose(i) {
      var f = results[i];
      if (!f) return;
      show(list, false);
      input.blur();
      flyToGeometry(f.geometry);
      showGrid(f.id, {});
    }

    var run = debounce(function () {
      var q = input.value.trim();
      if (ctl) ctl.abort();
      if (!q) {
        show(list, false);
        return;
      }
      ctl = new AbortController();
      var mine = ctl;
      api('/api/v1/grids', Object.assign({ q: q, limit: 8 }, crsParam()), { signal: mine.signal }).then(
        function (fc) {
          if (mine.signal.aborted) return;
          results = fc.features || [];
          active = results.length ? 0 : -1;
          render();
        },
        function () {}
      );
    }, 220);

    input.addEventListener('input', run);
    input.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (!results.length) return;
        active = (active + (e.key === 'ArrowDown' ? 1 : results.length - 1)) % results.length;
        render();
        e.preventDefault();
      } else if (e.key === 'Enter') {
        choose(active < 0 ? 0 : active);
        e.preventDefault();
      } else if (e.key === 'Escape') {
        show(list, false);
      }
    });
    list.addEventListener('mousedown', function (e) {
      var li = e.target.closest('li[data-i]');
      if (li) {
        e.preventDefault();
        choose(+li.getAttribute('data-i'));
      }
    });
    input.addEventListener('blur', function () {
      setTimeout(function () {
        show(list, false);
      }, 150);
    });
    L.DomEvent.disableClickPropagation($('gm-top'));
    L.DomEvent.disableScrollPropagation($('gm-top'));
  }

  // ---------------------------------------------------------------------------------------
  // Filters (hazard status and category, facility types) and the legend.
  function chip(name, value, label, checked, extra) {
    return '<label class="gm-chip gm-chip-check"><input type="checkbox" name="' + name + '" value="' + esc(value) + '"' + (checked ? ' checked' : '') + '> ' + (extra || '') + esc(label) + '</label>';
  }

  function initFilters() {
    $('gm-filter-status').innerHTML = cfg.openStatuses.map(function (s) { return chip('status', s, cfg.statuses[s], true); }).join('');
    $('gm-filter-category').innerHTML = cfg.hazardCategories.map(function (c) { return chip('category', c.code, c.name, true); }).join('');
    $('gm-filter-facility').innerHTML = Object.keys(cfg.facilityTypes)
      .map(function (k) {
        var t = cfg.facilityTypes[k];
        return chip('facility', k, t.name, true, '<i class="fa-solid fa-' + esc(t.icon) + '" style="color:' + esc(t.color) + '"></i> ');
      })
      .join('');
    var box = $('gm-filters');
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    var read = function (name, all) {
      var checked = Array.prototype.filter.call(box.querySelectorAll('input[name="' + name + '"]'), function (i) { return i.checked; }).map(function (i) { return i.value; });
      return checked.length === all ? null : checked;
    };
    var apply = function () {
      var f = state.filters;
      f.statuses = read('status', cfg.openStatuses.length);
      f.categories = read('category', cfg.hazardCategories.length);
      f.facilityTypes = read('facility', Object.keys(cfg.facilityTypes).length);
      f.overdue = $('gm-filter-overdue').checked;
      var n = (f.statuses ? 1 : 0) + (f.categories ? 1 : 0) + (f.facilityTypes ? 1 : 0) + (f.overdue ? 1 : 0);
      var dot = $('gm-filter-count');
      dot.textContent = n;
      dot.hidden = !n;
      heatPoints.clear();
      ['hazards', 'facilities'].forEach(function (k) {
        if (map.hasLayer(refs.layers[k])) refs.layers[k].redraw();
      });
      updateHeat();
    };
    box.addEventListener('change', apply);
    $('gm-filter-reset').addEventListener('click', function () {
      box.querySelectorAll('input[type=checkbox]').forEach(function (i) {
        i.checked = i.name !== '' && i.id !== 'gm-filter-overdue';
      });
      $('gm-filter-overdue').checked = false;
      apply();
    });
    $('gm-filter-btn').addEventListener('click', function () {
      show(box, box.hidden);
    });
    GM.applyFilters = apply;
  }

  function initLegend() {
    var sev = Object.keys(cfg.severities)
      .map(function (k) {
        return '<div><span class="gm-sw-dot" style="background:' + esc(cfg.severities[k].color) + '"></span>' + esc(cfg.severities[k].name) + '</div>';
      })
      .join('');
    var lv = cfg.levels
      .map(function (l) {
        return '<div><span class="gm-sw-line" style="border-color:' + esc(l.color) + (l.level === 'special' ? ';border-style:dashed' : '') + '"></span>' + esc(l.name) + '</div>';
      })
      .join('');
    $('gm-legend-body').innerHTML =
      '<div class="gm-label">隐患 · 紧急程度</div>' + sev +
      '<div><span class="gm-sw-dot gm-sw-overdue"></span>虚线红圈：已逾期</div>' +
      '<div><span class="gm-sw-fill"></span>网格底色越红，未结隐患越多</div>' +
      '<div class="gm-label">网格层级</div>' + lv +
      '<div class="gm-label">部件</div><div class="gm-muted">小圆点为部件分布（按类型着色），放大到 ' + cfg.facilityMarkerZoom + ' 级显示图标</div>';
    $('gm-legend-toggle').addEventListener('click', function () {
      show('gm-legend-body', $('gm-legend-body').hidden);
    });
    L.DomEvent.disableClickPropagation($('gm-legend'));
    L.DomEvent.disableScrollPropagation($('gm-legend'));
  }

  // ---------------------------------------------------------------------------------------
  // Field mode: locate me, report a hazard here, my tasks nearby.
  function setField(on) {
    state.field = on;
    document.body.classList.toggle('gm-field', on);
    show('gm-fieldbar', on);
    $('gm-field-btn').classList.toggle('gm-on', on);
  }

  var watchId = null;
  function locateMe(fly) {
    return new Promise(function (resolve, reject) {
      if (!navigator.geolocation) {
        toast('此浏览器不支持定位', 'error');
        reject(new Error('no geolocation'));
        return;
      }
      navigator.geolocation.getCurrentPosition(
        function (pos) {
          state.me = { lon: pos.coords.longitude, lat: pos.coords.latitude, acc: pos.coords.accuracy };
          drawMe();
          if (fly) map.flyTo(toView(state.me.lon, state.me.lat), Math.max(map.getZoom(), 17), { duration: 0.6 });
          if (watchId === null && navigator.geolocation.watchPosition) {
            watchId = navigator.geolocation.watchPosition(
              function (p) {
                state.me = { lon: p.coords.longitude, lat: p.coords.latitude, acc: p.coords.accuracy };
                drawMe();
              },
              function () {},
              { enableHighAccuracy: true, maximumAge: 15000 }
            );
          }
          resolve(state.me);
        },
        function (err) {
          toast('无法获取位置：' + (err.code === 1 ? '未允许定位权限' : err.message || '定位超时') + '（定位需要 HTTPS 或本机访问）', 'error');
          reject(err);
        },
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 10000 }
      );
    });
  }
  GM.locateMe = locateMe;

  var reportPoint = null; // {lon, lat, crs, accuracy}
  var picking = false;
  var idempotencyKey = null;

  function startPick() {
    closeSheets();
    picking = true;
    show('gm-pick', true);
    document.body.classList.add('gm-picking');
  }

  function endPick() {
    picking = false;
    show('gm-pick', false);
    document.body.classList.remove('gm-picking');
  }

  function placeReportPin() {
    if (reportPin) map.removeLayer(reportPin);
    reportPin = null;
    if (!reportPoint) return;
    var w = convert(reportPoint.lon, reportPoint.lat, reportPoint.crs === 'gcj02' ? 'gcj02' : 'wgs84', 'wgs84');
    reportPin = L.marker(toView(w[0], w[1]), {
      icon: L.divIcon({ className: 'gm-pin', html: '<i class="fa-solid fa-location-dot"></i>', iconSize: [30, 40], iconAnchor: [15, 38] }),
      keyboard: false,
      interactive: false,
    }).addTo(map);
  }

  /** Open the form for a point given in the map's datum (a tap) or in WGS84 (GPS). */
  function openReport(point) {
    endPick();
    closeSheets();
    reportPoint = point;
    idempotencyKey = uuid();
    placeReportPin();
    var form = $('gm-report-form');
    form.reset();
    $('gm-report-photos-text').textContent = '拍照或选择照片';
    show('gm-report-error', false);
    $('gm-report-where').innerHTML = loadingHtml('正在确定所属网格…');
    show('gm-sheet-report', true);
    var params = { lon: point.lon.toFixed(7), lat: point.lat.toFixed(7) };
    if (point.crs === 'gcj02') params.crs = 'gcj02';
    api('/api/v1/locate', params).then(
      function (loc) {
        var chain = loc.chain || [];
        var fine = chain[chain.length - 1];
        var lead = fine && (fine.people || []).filter(function (p) { return p.is_primary; })[0];
        $('gm-report-where').innerHTML =
          '<i class="fa-solid fa-location-dot"></i> ' +
          chain.map(function (c) { return esc(c.name); }).join(' › ') +
          (lead ? '<div class="gm-muted">将派往 ' + esc(lead.role_name) + ' ' + esc(lead.name) + (lead.work_phone ? ' · ' + esc(lead.work_phone) : '') + '</div>' : '') +
          (point.accuracy ? '<div class="gm-muted">GPS 精度约 ' + Math.round(point.accuracy) + ' 米</div>' : '');
        $('gm-report-where').setAttribute('data-grid-id', fine ? fine.id : '');
      },
      function () {
        $('gm-report-where').innerHTML = '<span class="gm-error">此位置不在任何网格内，无法上报</span>';
      }
    );
  }
  GM.openReport = openReport;

  function reportHereFromMap(latlng) {
    openReport({ lon: latlng.lng, lat: latlng.lat, crs: GM.datum });
  }

  function initReportForm() {
    var sel = $('gm-report-category');
    var groups = {};
    cfg.hazardCategories.forEach(function (c) {
      (groups[c.reportClass] = groups[c.reportClass] || []).push(c);
    });
    sel.innerHTML =
      '<option value="">请选择类别</option>' +
      Object.keys(groups)
        .map(function (rc) {
          return '<optgroup label="' + esc(cfg.reportClasses[rc] || rc) + '">' + groups[rc].map(function (c) { return '<option value="' + esc(c.code) + '">' + esc(c.name) + '</option>'; }).join('') + '</optgroup>';
        })
        .join('');
    $('gm-report-severity').innerHTML =
      '<option value="">按类别默认</option>' +
      Object.keys(cfg.severities).map(function (k) { return '<option value="' + k + '">' + esc(cfg.severities[k].name) + '</option>'; }).join('');
    $('gm-report-photos').addEventListener('change', function (e) {
      var n = e.target.files ? e.target.files.length : 0;
      $('gm-report-photos-text').textContent = n ? '已选 ' + Math.min(n, 5) + ' 张照片' + (n > 5 ? '（只取前 5 张）' : '') : '拍照或选择照片';
    });
    sel.addEventListener('change', function () {
      var c = cfg.hazardCategories.filter(function (x) { return x.code === sel.value; })[0];
      if (c) $('gm-report-severity').options[0].textContent = '按类别默认（' + (cfg.severities[c.severity] || {}).name + '）';
    });
    $('gm-report-form').addEventListener('submit', function (e) {
      e.preventDefault();
      submitReport();
    });
  }

  function submitReport() {
    var err = $('gm-report-error');
    show(err, false);
    var category = $('gm-report-category').value;
    var description = $('gm-report-description').value.trim();
    if (!reportPoint) return;
    if (!category || !description) {
      err.textContent = !category ? '请选择隐患类别' : '请填写描述';
      show(err, true);
      return;
    }
    var fields = {
      category: category,
      lon: +reportPoint.lon.toFixed(7),
      lat: +reportPoint.lat.toFixed(7),
      crs: reportPoint.crs === 'gcj02' ? 'gcj02' : 'wgs84',
      description: description,
    };
    if (reportPoint.accuracy) fields.accuracy_m = Math.round(reportPoint.accuracy * 10) / 10;
    var severity = $('gm-report-severity').value;
    if (severity) fields.severity = severity;
    var name = $('gm-report-name').value.trim();
    var phone = $('gm-report-phone').value.trim();
    if (name) fields.reporter_name = name;
    if (phone) fields.reporter_phone = phone;
    var files = $('gm-report-photos').files;
    var init = { method: 'POST', headers: { 'Idempotency-Key': idempotencyKey } };
    if (files && files.length) {
      var fd = new FormData();
      Object.keys(fields).forEach(function (k) { fd.append(k, fields[k]); });
      Array.prototype.slice.call(files, 0, 5).forEach(function (f) { fd.append('photos', f, f.name); });
      init.body = fd;
    } else {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(fields);
    }
    var btn = $('gm-report-submit');
    btn.disabled = true;
    btn.textContent = '正在提交…';
    api('/api/v1/hazards', null, init).then(
      function (f) {
        btn.disabled = false;
        btn.textContent = '提交上报';
        var p = (f && f.properties) || {};
        closeSheets();
        reportPoint = null;
        placeReportPin();
        toast('已上报 ' + (p.public_code || '') + '，已派往所属网格', 'ok');
        refreshHazards();
        if (f && f.id) showHazard(f.id, { fly: false });
      },
      function (e) {
        btn.disabled = false;
        btn.textContent = '提交上报';
        err.textContent = e.status === 404 || e.status === 405 ? '上报接口暂不可用（服务尚未启用上报）' : '上报失败：' + e.message;
        show(err, true);
      }
    );
  }

  /** After a write: forget cached hazard tiles and revalidate them with the server. */
  function refreshHazards() {
    var hz = refs.layers.hazards;
    dropCachedTiles('hazards');
    dropCachedTiles('grids_micro_grid');
    dropCachedTiles('grids_grid');
    heatPoints.clear();
    ['hazards', 'grids_micro_grid', 'grids_grid'].forEach(function (k) {
      refs.layers[k].options.fetchOptions = { cache: 'no-cache', priority: 'low' };
      if (map.hasLayer(refs.layers[k])) refs.layers[k].redraw();
    });
  }
  GM.refreshHazards = refreshHazards;

  function closeSheets() {
    show('gm-sheet-report', false);
    show('gm-sheet-tasks', false);
  }

  function loadTasks() {
    closeSheets();
    show('gm-sheet-tasks', true);
    var body = $('gm-tasks-body');
    body.innerHTML = loadingHtml('正在获取任务…');
    show('gm-login-form', false);
    var near = state.me ? [state.me.lon, state.me.lat] : fromView(map.getCenter());
    // Ask who we are first, so that an anonymous visitor sees the login form, not a 401.
    api('/api/v1/auth/me')
      .then(
        function (me) {
          if (me && me.kind === 'anonymous') throw new ApiError(401, { message: '未登录' });
        },
        function (e) {
          if (e.status !== 404) throw e;
        }
      )
      .then(function () {
        return api('/api/v1/me/tasks', { near: near[0].toFixed(6) + ',' + near[1].toFixed(6) });
      })
      .then(
      function (res) {
        var items = (res && (res.features || res.items || res.tasks)) || [];
        if (!items.length) {
          body.innerHTML = '<p class="gm-muted gm-ok"><i class="fa-solid fa-circle-check"></i> 附近暂无待办任务</p>';
          return;
        }
        body.innerHTML =
          '<ul class="gm-tasks">' +
          items
            .map(function (f) {
              var p = f.properties || f;
              var c = f.geometry && f.geometry.coordinates;
              var d = p.distance_m != null ? p.distance_m : c ? distanceM(near, c) : null;
              var id = f.id != null ? f.id : p.id;
              return (
                '<li class="gm-hz' + (p.overdue ? ' gm-overdue' : '') + '">' +
                '<a href="#hazard=' + id + '" data-hazard="' + id + '">' + severityBadge(p.severity) +
                '<span class="gm-hz-name">' + esc(p.category_name || categoryName(p.category)) + '</span>' +
                '<span class="gm-status">' + esc(p.status_name || cfg.statuses[p.status] || '') + '</span>' +
                (p.overdue ? '<span class="gm-tag gm-tag-red">逾期</span>' : '') +
                '<span class="gm-hz-meta">' + esc(p.public_code || '') + (d != null ? ' · ' + fmtDistance(d) : '') + (dueText(p) ? ' · ' + esc(dueText(p)) : '') + '</span></a>' +
                (c || p.navigation_url ? '<div class="gm-row">' + navLink(c, p.category_name, p.navigation_url) + '</div>' : '') +
                '</li>'
              );
            })
            .join('') +
          '</ul>';
      },
      function (e) {
        if (e.status === 401) {
          body.innerHTML = '';
          show('gm-login-form', true);
        } else if (e.status === 404 || e.status === 405) {
          body.innerHTML = '<p class="gm-error">任务接口暂不可用</p>';
        } else {
          body.innerHTML = '<p class="gm-error">获取任务失败：' + esc(e.message) + '</p>';
        }
      }
    );
  }
  GM.loadTasks = loadTasks;

  function initField() {
    $('gm-field-btn').addEventListener('click', function () {
      setField(!state.field);
    });
    $('gm-locate').addEventListener('click', function () {
      locateMe(true).catch(function () {});
    });
    $('gm-report').addEventListener('click', startPick);
    $('gm-tasks').addEventListener('click', loadTasks);
    $('gm-pick-cancel').addEventListener('click', endPick);
    $('gm-pick-ok').addEventListener('click', function () {
      reportHereFromMap(map.getCenter());
    });
    $('gm-pick-gps').addEventListener('click', function () {
      locateMe(true).then(
        function (me) {
          openReport({ lon: me.lon, lat: me.lat, crs: 'wgs84', accuracy: me.acc });
        },
        function () {}
      );
    });
    $('gm-login-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var f = e.target;
      show('gm-login-error', false);
      api('/api/v1/auth/login', null, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: f.username.value, password: f.password.value }),
      }).then(loadTasks, function (err) {
        $('gm-login-error').textContent = '登录失败：' + err.message;
        show('gm-login-error', true);
      });
    });
    var auto = new URLSearchParams(location.search).get('mode');
    setField(auto === 'field' || (auto !== 'desk' && window.matchMedia && matchMedia('(max-width: 640px)').matches));
    ['gm-fieldbar', 'gm-pick', 'gm-sheet-report', 'gm-sheet-tasks', 'gm-panel'].forEach(function (id) {
      L.DomEvent.disableClickPropagation($(id));
      L.DomEvent.disableScrollPropagation($(id));
    });
  }

  // ---------------------------------------------------------------------------------------
  // Entry points called by the Folium page.
  GM.setup = function (m) {
    map = m;
    GM.map = m;
    cfg = JSON.parse($('gm-config').textContent);
    GM.config = cfg;
    patchVectorGrid();
    [['gm-outline', 390], ['gm-grids', 400], ['gm-facilities', 410], ['gm-select', 420], ['gm-hazards', 450], ['gm-labels', 460]].forEach(function (p) {
      var pane = map.createPane(p[0]);
      pane.style.zIndex = p[1];
      if (p[0] === 'gm-labels' || p[0] === 'gm-outline' || p[0] === 'gm-select') pane.style.pointerEvents = 'none';
    });
    state.basemap = chooseBasemap();
    GM.datum = basemapInfo(state.basemap).datum;
    document.body.setAttribute('data-datum', GM.datum);
    document.body.setAttribute('data-basemap', state.basemap);
    // Fixed zoom range (not derived from the layers): marker clustering needs it stable.
    map.setMinZoom(3);
    map.setMaxZoom(cfg.maxZoom);
    var h = readHash();
    var view = h.map && h.map.split('/').map(Number);
    if (view && view.length === 3 && view.every(isFinite)) {
      map.setView(toView(view[2], view[1]), view[0], { animate: false });
    } else if (cfg.bounds) {
      var b = cfg.bounds;
      var sw = toView(b[0][1], b[0][0]);
      var ne = toView(b[1][1], b[1][0]);
      map.fitBounds(L.latLngBounds(sw, ne), { animate: false, padding: [20, 20] });
    }
  };

  GM.init = function (r) {
    refs = r;
    GM.refs = r;
    L.control.zoom({ position: 'bottomright', zoomInTitle: '放大', zoomOutTitle: '缩小' }).addTo(map);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>');

    // Labels: one group per level inside the Folium "labels" overlay.
    cfg.levels.forEach(function (lv) {
      labelGroups[lv.level] = L.layerGroup();
    });
    syncLabelGroups();

    // Facility icons (zoomed in), clustered; lines (pipes, walls) beside them.
    facilityCluster = L.markerClusterGroup({
      disableClusteringAtZoom: 19,
      maxClusterRadius: 45,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      chunkedLoading: true,
      iconCreateFunction: function (cluster) {
        var n = cluster.getChildCount();
        return L.divIcon({ html: '<span>' + n + '</span>', className: 'gm-cluster', iconSize: [34, 34] });
      },
    });
    refs.groups.facilities.addLayer(facilityCluster);
    refs.layers.facilities.on('tileunload', function (e) {
      dropFacilityTile(refs.layers.facilities._tileCoordsToKey(e.coords));
    });

    // Heat map from the hazard tiles.
    heat = L.heatLayer([], { radius: 28, blur: 20, maxZoom: 17, minOpacity: 0.35, gradient: { 0.3: '#ffeb3b', 0.6: '#ff9800', 0.85: '#f44336', 1: '#8e24aa' } });
    refs.groups.heat.addLayer(heat);
    heatRefresh = debounce(updateHeat, 150);
    refs.layers.hazards.on('tileunload', function (e) {
      heatPoints.delete(e.coords.z + ':' + e.coords.x + ':' + e.coords.y);
      if (heatRefresh) heatRefresh();
    });

    // The basemap last: everything it may redraw exists now.
    map.addLayer(refs.bases[state.basemap]);
    applyBasemap(state.basemap);

    // Hazards are clickable; everything else answers a map click with /locate.
    refs.layers.hazards.on('click', function (e) {
      L.DomEvent.stopPropagation(e);
      var p = e.layer && e.layer.properties;
      if (!p) return;
      if (p.count > 1) {
        map.setView(e.latlng, Math.min(map.getZoom() + 2, cfg.maxZoom));
        return;
      }
      showHazard(p.id, { fly: false });
    });
    map.on('click', function (e) {
      if (picking) {
        reportHereFromMap(e.latlng);
        return;
      }
      selectAt(e.latlng);
    });
    map.on('baselayerchange', function (e) {
      Object.keys(refs.bases).forEach(function (k) {
        if (refs.bases[k] === e.layer) applyBasemap(k);
      });
    });
    map.on('overlayadd overlayremove', function (e) {
      syncLabelGroups();
      if (e.layer === refs.groups.heat) {
        if (e.type === 'overlayadd' && !map.hasLayer(refs.groups.hazards)) setHint('热力图基于隐患图层，请同时打开“隐患”');
        updateHeat();
      }
    });
    map.on('zoomend', function () {
      clearLabels();
      zoomHint();
    });
    map.on('moveend', function () {
      pruneLabels();
      updateHeat();
      writeHash();
    });
    map.on('popupopen', function (e) {
      var btn = e.popup.getElement().querySelector('[data-report-at]');
      if (btn) {
        btn.addEventListener('click', function () {
          map.closePopup();
          reportHereFromMap(e.popup.getLatLng());
        });
      }
    });

    // Panel links: grids, hazards, actions.
    document.addEventListener('click', function (e) {
      var a = e.target.closest('[data-grid],[data-hazard],[data-action],[data-close]');
      if (!a) return;
      if (a.hasAttribute('data-close')) {
        var id = a.getAttribute('data-close');
        if (id === 'gm-panel') closePanel();
        else show(id, false);
        if (id === 'gm-sheet-report') {
          reportPoint = null;
          placeReportPin();
        }
        return;
      }
      e.preventDefault();
      if (a.hasAttribute('data-grid')) showGrid(+a.getAttribute('data-grid'), { fly: true });
      else if (a.hasAttribute('data-hazard')) showHazard(+a.getAttribute('data-hazard'));
      else if (a.getAttribute('data-action') === 'zoom-grid' && lastGrid) flyToGeometry(lastGrid.geometry);
      else if (a.getAttribute('data-action') === 'report-here' && lastGrid) {
        if (lastGrid.point) reportHereFromMap(lastGrid.point);
        else startPick();
      }
    });

    initSearch();
    initFilters();
    initLegend();
    initReportForm();
    initField();

    api('/map/outline.geojson').then(
      function (g) {
        outlineGeom = g;
        drawOutline();
      },
      function () {}
    );

    var h = readHash();
    if (h.grid) showGrid(+h.grid, {});
    else if (h.hazard) showHazard(+h.hazard, { fly: false });
    zoomHint();
    writeHash();
    document.documentElement.setAttribute('data-gm-ready', '1');
  };
})();
