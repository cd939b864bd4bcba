/* context.js: the state the map's modules share, published as window.GM (the Folium page
 * calls GM.setup, GM.tileOptions and GM.init; tests read GM.map, GM.state and GM.datum).
 *
 * Datums: the API and the tiles speak WGS84. An AMap basemap is drawn in GCJ-02, so while it
 * is on, GM.datum is 'gcj02' and every layer is shifted into GCJ-02 (vector tiles vertex by
 * vertex, JSON by asking the API for crs=gcj02); clicks are sent back with crs=gcj02.
 * Everything kept in state (the URL hash, my position) stays WGS84.
 */

import { convert } from '../lib/datum.js';

export const GM = (window.GM = window.GM || {});
GM.datum = 'wgs84';
GM.state = {
  basemap: 'none',
  selected: null, // {kind: 'grid'|'hazard', id}
  me: null, // {lon, lat, acc} WGS84
  filters: { statuses: null, categories: null, facilityTypes: null, overdue: false },
  field: false,
  embed: false, // inside the workbench's frame
};
GM.map = null;
GM.cfg = null; // the page's #gm-config
GM.refs = null; // {map, control, bases, layers, groups} from Folium

/** WGS84 lon/lat → a LatLng in the map's current datum. */
export function toView(lon, lat) {
  const p = convert(lon, lat, 'wgs84', GM.datum);
  return L.latLng(p[1], p[0]);
}

/** A LatLng of the map → [lon, lat] WGS84. */
export function fromView(latlng) {
  return convert(latlng.lng, latlng.lat, GM.datum, 'wgs84');
}

/** The crs parameter that makes the API answer in the map's datum. */
export function crsParam() {
  return GM.datum === 'gcj02' ? { crs: 'gcj02' } : {};
}

/** A grid level's name, colour and zooms from the config. */
export function levelInfo(level) {
  const found = GM.cfg.levels.find((l) => l.level === level);
  return found || { level, name: level, color: '#555' };
}

/** A hazard category's Chinese name. */
export function categoryName(code) {
  const c = GM.cfg.hazardCategories.find((x) => x.code === code);
  return c ? c.name : code;
}

/** The API's overdue rule: past the deadline while the clock runs (accepted … in_progress). */
export function isOverdue(p) {
  return !!p.overdue && GM.cfg.clockStatuses.indexOf(p.status) >= 0;
}

GM.toView = toView;
GM.fromView = fromView;
