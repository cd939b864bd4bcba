/* overlays.js: what is drawn from the loaded tiles and beside them: grid names, the heat map,
 * facility icons (zoomed in), the territory outline, the selection, my position, and the
 * hit test that keeps hazards clickable above everything else. */

import { api } from '../lib/api.js';
import { esc, loadingHtml } from '../lib/dom.js';
import { GM, levelInfo, toView } from './context.js';
import { facilityVisible, hazardVisible } from './styles.js';
import { clipRing, EXTENT, tileLatLng } from './tiles.js';

// ---- labels: each grid's name at the centre of its largest visible piece, drawn only at the
// level's label zooms and only where the name fits inside that piece.
let labels = {}; // level → Map(id → {marker, score})
const labelGroups = {}; // level → L.LayerGroup

function labelTile(level, coords, data) {
  const lv = levelInfo(level);
  const map = GM.map;
  if (!data || !lv.label || coords.z < lv.label[0] || coords.z > lv.label[1]) return;
  if (coords.z !== Math.round(map.getZoom())) return;
  const store = labels[level] || (labels[level] = new Map());
  const scale = GM.cfg.tile.size / EXTENT;
  for (const f of data.features) {
    if (f.type !== 3 || !f.properties.name) continue;
    let best = null;
    let bestArea = 0;
    for (const ring of f.geometry) {
      const c = clipRing(ring, EXTENT);
      if (c.length < 3) continue;
      let a = 0;
      let cx = 0;
      let cy = 0;
      for (let i = 0; i < c.length; i++) {
        const p = c[i];
        const q = c[(i + 1) % c.length];
        const cross = p.x * q.y - q.x * p.y;
        a += cross;
        cx += (p.x + q.x) * cross;
        cy += (p.y + q.y) * cross;
      }
      if (Math.abs(a) > bestArea && a !== 0) {
        let minx = Infinity;
        let maxx = -Infinity;
        let miny = Infinity;
        let maxy = -Infinity;
        for (const p of c) {
          minx = Math.min(minx, p.x);
          maxx = Math.max(maxx, p.x);
          miny = Math.min(miny, p.y);
          maxy = Math.max(maxy, p.y);
        }
        bestArea = Math.abs(a);
        best = { x: cx / (3 * a), y: cy / (3 * a), w: (maxx - minx) * scale, h: (maxy - miny) * scale };
      }
    }
    if (!best) continue;
    const name = f.properties.name;
    if (best.w < name.length * 13 + 10 || best.h < 20) continue;
    const id = f.properties.id;
    const old = store.get(id);
    if (old && old.score >= bestArea) continue;
    const ll = tileLatLng(coords, best);
    if (old) {
      old.marker.setLatLng(ll);
      old.score = bestArea;
      continue;
    }
    const marker = L.marker(ll, {
      icon: L.divIcon({ className: `gm-maplabel gm-label-${level}`, html: `<span>${esc(name)}</span>`, iconSize: null }),
      interactive: false,
      keyboard: false,
      pane: 'gm-labels',
    });
    store.set(id, { marker, score: bestArea });
    if (labelGroups[level]) labelGroups[level].addLayer(marker);
  }
}

export function clearLabels() {
  for (const level of Object.keys(labelGroups)) labelGroups[level].clearLayers();
  labels = {};
}

export function pruneLabels() {
  const b = GM.map.getBounds().pad(0.5);
  for (const level of Object.keys(labels)) {
    labels[level].forEach((v, id) => {
      if (!b.contains(v.marker.getLatLng())) {
        labelGroups[level].removeLayer(v.marker);
        labels[level].delete(id);
      }
    });
  }
}

/** Show each level's names only while that level and the names overlay are on. */
export function syncLabelGroups() {
  const { map, refs } = GM;
  for (const lv of GM.cfg.levels) {
    const vg = refs.layers[`grids_${lv.level}`];
    const group = labelGroups[lv.level];
    if (!group) continue;
    const on = map.hasLayer(vg) && map.hasLayer(refs.groups.labels);
    if (on && !refs.groups.labels.hasLayer(group)) refs.groups.labels.addLayer(group);
    if (!on && refs.groups.labels.hasLayer(group)) refs.groups.labels.removeLayer(group);
  }
}

// ---- heat map of open hazards, from the hazard tiles already loaded (no extra request).
let heat = null;
export const heatPoints = new Map(); // tile key → [[lat, lng, weight]]
let heatRefresh = null;
const HEAT_WEIGHT = { low: 0.4, medium: 0.6, high: 0.8, critical: 1 };

function heatTile(coords, data) {
  const key = `${coords.z}:${coords.x}:${coords.y}`;
  const pts = [];
  if (data) {
    for (const f of data.features) {
      if (f.type !== 1 || !hazardVisible(f.properties)) continue;
      const pt = f.geometry[0] && f.geometry[0][0];
      if (!pt) continue;
      const ll = tileLatLng(coords, pt);
      const w = HEAT_WEIGHT[f.properties.severity] || 0.5;
      pts.push([ll.lat, ll.lng, w * Math.min(5, f.properties.count || 1)]);
    }
  }
  heatPoints.set(key, pts);
  if (heatRefresh) heatRefresh();
}

export function updateHeat() {
  const { map, refs } = GM;
  if (!heat || !map.hasLayer(refs.groups.heat)) return;
  const z = Math.round(map.getZoom());
  const all = [];
  heatPoints.forEach((pts, key) => {
    if (+key.split(':')[0] === z) all.push(...pts);
  });
  heat.setLatLngs(all);
}

// ---- facilities as icons when zoomed in: read from the same vector tiles (already shifted in
// GCJ-02 mode), clustered, muted (hazards are the eye-catcher); each tile's markers leave
// with the tile. Details are fetched from the API when a popup opens.
let facilityCluster = null;
const facilityIcons = {};
const facilityMarkers = new Map(); // facility id → marker
const facilityTiles = new Map(); // tile key → [ids]
const FACILITY_STATUS = { planned: '规划', in_service: '在用', damaged: '损坏', under_repair: '维修中', retired: '停用' };

function facilityIcon(type) {
  if (facilityIcons[type]) return facilityIcons[type];
  const t = GM.cfg.facilityTypes[type] || { icon: 'circle', color: '#607d8b' };
  facilityIcons[type] = L.divIcon({
    className: 'gm-fac',
    html: `<span style="background:${esc(t.color)}"><i class="fa-solid fa-${esc(t.icon)}"></i></span>`,
    iconSize: [22, 22],
    iconAnchor: [11, 11],
    popupAnchor: [0, -10],
  });
  return facilityIcons[type];
}

function facilityPopup(p, f) {
  const t = GM.cfg.facilityTypes[p.type_code || p.type] || {};
  const attrs = (f && f.properties.attributes) || {};
  const spec = t.attributes || {};
  const rows = Object.keys(attrs)
    .filter((k) => k !== 'demo' && typeof attrs[k] !== 'object')
    .slice(0, 8)
    .map((k) => {
      const a = spec[k] || {};
      const v = a.values && a.values[attrs[k]] ? a.values[attrs[k]] : attrs[k];
      return `<tr><th>${esc(a.label || k)}</th><td>${esc(v === true ? '是' : v === false ? '否' : v)}</td></tr>`;
    })
    .join('');
  return (
    `<div class="gm-pop" data-facility="${esc(p.id)}"><div class="gm-pop-title"><i class="fa-solid fa-${esc(t.icon || 'circle')}" style="color:${esc(t.color)}"></i> ` +
    `${esc(p.name || t.name)}</div><div class="gm-muted">${esc(p.type_name || t.name)} · ${esc(FACILITY_STATUS[p.status] || p.status)}` +
    `</div><div class="gm-code">${esc(p.code)}</div>${f ? (rows ? `<table class="gm-attrs">${rows}</table>` : '') : loadingHtml('')}` +
    '<button class="gm-link" type="button" data-report-at="1">在此上报隐患</button></div>'
  );
}

function facilityTile(layer, coords, data) {
  const key = layer._tileCoordsToKey(coords);
  dropFacilityTile(key);
  if (!data || coords.z < GM.cfg.facilityMarkerZoom || !layer._tiles[key]) return;
  const ids = [];
  const add = [];
  for (const f of data.features) {
    const p = f.properties;
    const pt = f.type === 1 && f.geometry[0] && f.geometry[0][0];
    // Each point once: only in the tile that holds it (tiles overlap by their buffers).
    if (!pt || pt.x < 0 || pt.y < 0 || pt.x >= EXTENT || pt.y >= EXTENT) continue;
    if (!facilityVisible(p.type_code) || facilityMarkers.has(p.id)) continue;
    const mk = L.marker(tileLatLng(coords, pt), { icon: facilityIcon(p.type_code), title: p.name || p.type_name, keyboard: false, opacity: 0.8 });
    mk.bindPopup(facilityPopup(p, null), { maxWidth: 280 });
    mk.on('popupopen', () => {
      api(`/api/v1/facilities/${p.id}`).then(
        (full) => mk.setPopupContent(facilityPopup(p, full)),
        () => {}
      );
    });
    mk.on('add', () => {
      const el = mk.getElement();
      if (el) el.setAttribute('data-facility-id', p.id);
    });
    facilityMarkers.set(p.id, mk);
    ids.push(p.id);
    add.push(mk);
  }
  facilityTiles.set(key, ids);
  if (add.length) facilityCluster.addLayers(add);
}

function dropFacilityTile(key) {
  const ids = facilityTiles.get(key);
  if (!ids) return;
  facilityTiles.delete(key);
  const gone = [];
  for (const id of ids) {
    const mk = facilityMarkers.get(id);
    if (mk) gone.push(mk);
    facilityMarkers.delete(id);
  }
  if (gone.length) facilityCluster.removeLayers(gone);
}

GM.facilityMarker = (id) => facilityMarkers.get(id) || null;

/** Every loaded tile passes here (tiles.js): names, heat points, facility icons. */
export function afterTile(layer, coords, json, datum) {
  if (datum !== GM.datum || !GM.map) return;
  const id = layer.options.gmLayer;
  const data = json.layers && json.layers[id];
  if (id.startsWith('grids_')) labelTile(id.slice(6), coords, data);
  else if (id === 'hazards') heatTile(coords, data);
  else if (id === 'facilities') facilityTile(layer, coords, data);
}

// ---- hazards stay clickable: their canvas takes no pointer events (facility icons and
// cluster bubbles below them would otherwise swallow the click); a click or tap on the map is
// first tested against the hazard dots drawn at this zoom.

/** The hazard drawn under a layer point (a Leaflet Point), or null: its tile properties. */
export function hazardAt(layerPoint) {
  const { map, refs } = GM;
  const vg = refs && refs.layers.hazards;
  if (!vg || !map.hasLayer(vg) || !vg._vectorTiles) return null;
  let best = null;
  let bestD = Infinity;
  for (const key of Object.keys(vg._vectorTiles)) {
    const tile = vg._vectorTiles[key];
    if (!tile._map || !tile._tileCoord || tile._tileCoord.z !== vg._tileZoom) continue;
    const p = layerPoint.subtract(tile.getOffset());
    for (const id of Object.keys(tile._layers)) {
      const sym = tile._layers[id];
      if (!sym._point || !sym.properties || !sym._containsPoint(p)) continue;
      const d = p.distanceTo(sym._point);
      if (d < bestD) {
        bestD = d;
        best = sym.properties;
      }
    }
  }
  return best;
}

/** Capture clicks on hazards before any facility icon or the map sees them. */
export function bindHazardClicks(onHazard) {
  const { map } = GM;
  const container = map.getContainer();
  container.addEventListener(
    'click',
    (e) => {
      if (map.dragging && map.dragging.moved()) return;
      if (e.target.closest('.leaflet-control, .leaflet-popup, .gm-card')) return;
      const hit = hazardAt(map.mouseEventToLayerPoint(e));
      if (!hit) return;
      e.stopPropagation();
      e.preventDefault();
      onHazard(hit, map.mouseEventToLatLng(e));
    },
    true
  );
  // A pointer cursor over hazards, as over any clickable thing.
  let last = 0;
  container.addEventListener('mousemove', (e) => {
    const now = Date.now();
    if (now - last < 60) return;
    last = now;
    const over = !e.target.closest('.leaflet-control, .gm-card') && hazardAt(map.mouseEventToLayerPoint(e));
    container.classList.toggle('gm-over-hazard', !!over);
  });
}

// ---- the territory outline (always), and a mask around it on the "none" basemap.
let outlineGeom = null;
let outlineLayer = null;

export function setOutline(geom) {
  outlineGeom = geom;
  drawOutline();
}

export function drawOutline() {
  const { map } = GM;
  if (!outlineGeom) return;
  if (outlineLayer) map.removeLayer(outlineLayer);
  const polys = [];
  const collect = (g) => {
    if (!g) return;
    if (g.type === 'Polygon') polys.push(g.coordinates);
    else if (g.type === 'MultiPolygon') polys.push(...g.coordinates);
    else if (g.type === 'GeometryCollection') g.geometries.forEach(collect);
  };
  collect(outlineGeom);
  const rings = [];
  for (const poly of polys) for (const ring of poly) rings.push(ring.map((c) => toView(c[0], c[1])));
  const group = L.featureGroup();
  if (GM.state.basemap === 'none' && rings.length) {
    const world = [L.latLng(-85, -180), L.latLng(85, -180), L.latLng(85, 180), L.latLng(-85, 180)];
    L.polygon([world, ...rings], { pane: 'gm-outline', stroke: false, fillColor: '#dfe4ea', fillOpacity: 0.75, interactive: false }).addTo(group);
  }
  for (const r of rings) {
    L.polyline(r.concat([r[0]]), { pane: 'gm-outline', color: '#ffffff', weight: 7, opacity: 0.9, interactive: false }).addTo(group);
    L.polyline(r.concat([r[0]]), { pane: 'gm-outline', color: '#1f3b73', weight: 2.5, opacity: 0.9, interactive: false }).addTo(group);
  }
  outlineLayer = group.addTo(map);
}

// ---- the selection highlight and my position.
let selectLayer = null;
let selectGeom = null; // GeoJSON (WGS84) of the selected grid or hazard point
let meLayer = null;

export function setSelection(geom) {
  selectGeom = geom;
  drawSelection();
}

export function drawSelection() {
  const { map } = GM;
  if (selectLayer) map.removeLayer(selectLayer);
  selectLayer = null;
  if (!selectGeom) return;
  selectLayer = L.geoJSON(selectGeom, {
    coordsToLatLng: (c) => toView(c[0], c[1]),
    pane: 'gm-select',
    interactive: false,
    style: { color: '#00b8d4', weight: 4, opacity: 1, fillColor: '#00e5ff', fillOpacity: 0.12 },
    pointToLayer: (f, ll) => L.circleMarker(ll, { pane: 'gm-select', radius: 16, color: '#00b8d4', weight: 3, fill: false, interactive: false }),
  }).addTo(map);
}

export function drawMe() {
  const { map, state } = GM;
  if (meLayer) map.removeLayer(meLayer);
  meLayer = null;
  if (!state.me) return;
  const ll = toView(state.me.lon, state.me.lat);
  meLayer = L.featureGroup([
    L.circle(ll, { radius: state.me.acc || 20, color: '#1e88e5', weight: 1, fillColor: '#1e88e5', fillOpacity: 0.12, interactive: false }),
    L.circleMarker(ll, { radius: 8, color: '#ffffff', weight: 3, fillColor: '#1e88e5', fillOpacity: 1, interactive: false }),
  ]).addTo(map);
}

/** Create the overlays inside Folium's groups, once every layer exists. */
export function initOverlays() {
  const { map, refs, cfg } = GM;
  for (const lv of cfg.levels) labelGroups[lv.level] = L.layerGroup();
  syncLabelGroups();

  facilityCluster = L.markerClusterGroup({
    disableClusteringAtZoom: 19,
    maxClusterRadius: 45,
    showCoverageOnHover: false,
    spiderfyOnMaxZoom: false,
    chunkedLoading: true,
    iconCreateFunction: (cluster) =>
      L.divIcon({ html: `<span>${cluster.getChildCount()}</span>`, className: 'gm-cluster', iconSize: [30, 30] }),
  });
  refs.groups.facilities.addLayer(facilityCluster);
  refs.layers.facilities.on('tileunload', (e) => dropFacilityTile(refs.layers.facilities._tileCoordsToKey(e.coords)));

  const ramp = {};
  const sev = Object.values(cfg.severities);
  sev.forEach((s, i) => {
    ramp[(0.3 + (0.7 * i) / Math.max(1, sev.length - 1)).toFixed(2)] = s.color;
  });
  heat = L.heatLayer([], { radius: 28, blur: 20, maxZoom: 17, minOpacity: 0.35, gradient: ramp });
  refs.groups.heat.addLayer(heat);
  let t = null;
  heatRefresh = () => {
    clearTimeout(t);
    t = setTimeout(updateHeat, 150);
  };
  refs.layers.hazards.on('tileunload', (e) => {
    heatPoints.delete(`${e.coords.z}:${e.coords.x}:${e.coords.y}`);
    heatRefresh();
  });
  void map;
}
