/* styles.js: how each vector-tile layer is drawn, and the hazard and facility filters that
 * tiles, icons and the heat map all obey. In GCJ-02 mode a polygon arrives as two parts (see
 * tiles.js): a fill without outline and an outline without fill, so the seams never show. */

import { GM, isOverdue, levelInfo } from './context.js';

/** Does the hazard pass the filters (status, category, overdue only)? */
export function hazardVisible(p) {
  const f = GM.state.filters;
  if (f.overdue && !isOverdue(p)) return false;
  if (f.statuses && f.statuses.indexOf(p.status) < 0) return false;
  if (f.categories && f.categories.indexOf(p.category_code) < 0) return false;
  return true;
}

/** Does a facility type pass the filter? */
export function facilityVisible(type) {
  const f = GM.state.filters.facilityTypes;
  return !f || f.indexOf(type) >= 0;
}

function parted(fn) {
  return (p, z) => {
    const s = fn(p, z);
    if (!p.__part) return s;
    const list = Array.isArray(s) ? s : [s];
    return list.map((x) => ({ ...x, ...(p.__part === 'fill' ? { stroke: false } : { fill: false }) }));
  };
}

function gridStyle(level) {
  const lv = levelInfo(level);
  return parted((p, z) => {
    const s = { color: lv.color, weight: lv.weight, opacity: 0.85, fill: false };
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

/** The radius a hazard dot is drawn with at zoom z (also its hit radius). */
export function hazardRadius(p, z) {
  const base = z >= GM.cfg.facilityMarkerZoom ? 10 : z >= 16 ? 7 : 5;
  return base + (p.count > 1 ? Math.min(6, Math.log2(p.count) * 1.5) : 0);
}

function hazardStyle(p, z) {
  if (!hazardVisible(p)) return [];
  const sev = GM.cfg.severities[p.severity] || { color: '#757575' };
  const r = hazardRadius(p, z);
  const big = z >= GM.cfg.facilityMarkerZoom;
  // A dark rim inside a white halo: readable on any basemap and above any facility icon.
  const halo = { radius: r + (big ? 2.5 : 1.5), fill: true, fillColor: '#ffffff', fillOpacity: 1, stroke: false };
  const dot = { radius: r, fill: true, fillColor: sev.color, fillOpacity: 1, color: '#3e2723', weight: big ? 1.5 : 1, opacity: 0.9 };
  if (isOverdue(p)) {
    return [{ radius: r + 5, fill: true, fillColor: '#b71c1c', fillOpacity: 0.15, color: '#b71c1c', weight: 2.5, opacity: 1, dashArray: '3,2' }, halo, dot];
  }
  return [halo, dot];
}

function facilityStyle(p, z) {
  if (!facilityVisible(p.type_code)) return [];
  const t = GM.cfg.facilityTypes[p.type_code] || {};
  if (t.geometry === 'line') return { color: p.color || '#607d8b', weight: 2, opacity: z >= GM.cfg.facilityMarkerZoom ? 0.45 : 0.8, fill: false };
  if (z >= GM.cfg.facilityMarkerZoom) return []; // drawn as icons (overlays.js)
  const r = p.count > 1 ? 2.5 + Math.min(5, Math.log2(p.count)) : 2.5;
  return { radius: r, fill: true, fillColor: p.color || '#607d8b', fillOpacity: 0.75, color: '#ffffff', weight: 0.6, opacity: 0.8 };
}

function paddedBounds() {
  const b = GM.cfg.bounds;
  if (!b) return undefined;
  // Padded by ~2 km so that the GCJ-02 shift (a few hundred metres) stays inside.
  return L.latLngBounds([b[0][0] - 0.02, b[0][1] - 0.02], [b[1][0] + 0.02, b[1][1] + 0.02]);
}

/** Options of one vector-tile layer; the Folium page calls this (as GM.tileOptions). */
export function tileOptions(layerId) {
  const t = GM.cfg.tile;
  let minzoom = t.layers[layerId].minzoom - t.zoomOffset;
  // Facility dots from one zoom later than the tiles allow: denser tiles cost more than the
  // overview gains.
  if (layerId === 'facilities') minzoom += 1;
  let pane = 'gm-grids';
  let style;
  if (layerId.startsWith('grids_')) style = gridStyle(layerId.slice(6));
  else if (layerId === 'hazards') {
    pane = 'gm-hazards';
    style = parted(hazardStyle);
  } else {
    pane = 'gm-facilities';
    style = parted(facilityStyle);
  }
  const options = {
    gmLayer: layerId,
    pane,
    tileSize: t.size,
    zoomOffset: t.zoomOffset,
    minZoom: minzoom,
    maxZoom: GM.cfg.maxZoom,
    maxNativeZoom: t.maxNativeZoom,
    bounds: paddedBounds(),
    updateWhenIdle: true,
    updateWhenZooming: false,
    keepBuffer: 1,
    // Hazards are hit-tested by the map itself (overlays.js), so that they stay clickable
    // above the facility icons; their canvas lets every pointer event through.
    interactive: false,
    fetchOptions: { priority: 'low' },
    rendererFactory: L.canvas.tile,
    vectorTileLayerStyles: { [layerId]: style },
  };
  // Keep each hazard tile's renderer (VectorGrid does when features have ids), for hit tests.
  if (layerId === 'hazards') options.getFeatureId = (f) => f.properties.id;
  return options;
}
