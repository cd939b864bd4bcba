/* datum.js: WGS84 ⇄ GCJ-02 (the published formulas; the inverse by fixed-point iteration),
 * as in gis_service/geo/datums.py, and distances on the sphere. */

const GA = 6378245.0;
const GEE = 0.00669342162296594323;

function inChina(lon, lat) {
  return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
}

function gcjDelta(lon, lat) {
  const x = lon - 105.0;
  const y = lat - 35.0;
  const sx = Math.sqrt(Math.abs(x));
  const PI = Math.PI;
  const common = ((20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2) / 3;
  let dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common;
  dlat += ((20 * Math.sin(y * PI) + 40 * Math.sin((y / 3) * PI)) * 2) / 3;
  dlat += ((160 * Math.sin((y / 12) * PI) + 320 * Math.sin((y * PI) / 30)) * 2) / 3;
  let dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common;
  dlon += ((20 * Math.sin(x * PI) + 40 * Math.sin((x / 3) * PI)) * 2) / 3;
  dlon += ((150 * Math.sin((x / 12) * PI) + 300 * Math.sin((x / 30) * PI)) * 2) / 3;
  const radlat = (lat / 180) * PI;
  const magic = 1 - GEE * Math.sin(radlat) * Math.sin(radlat);
  const sqrtmagic = Math.sqrt(magic);
  dlat = (dlat * 180) / (((GA * (1 - GEE)) / (magic * sqrtmagic)) * PI);
  dlon = (dlon * 180) / ((GA / sqrtmagic) * Math.cos(radlat) * PI);
  return [dlon, dlat];
}

/** WGS84 → GCJ-02 (unchanged outside China). */
export function wgs2gcj(lon, lat) {
  if (!inChina(lon, lat)) return [lon, lat];
  const d = gcjDelta(lon, lat);
  return [lon + d[0], lat + d[1]];
}

/** GCJ-02 → WGS84. */
export function gcj2wgs(lon, lat) {
  let w = [lon, lat];
  for (let i = 0; i < 30; i++) {
    const f = wgs2gcj(w[0], w[1]);
    const ex = f[0] - lon;
    const ey = f[1] - lat;
    w = [w[0] - ex, w[1] - ey];
    if (Math.abs(ex) < 1e-12 && Math.abs(ey) < 1e-12) break;
  }
  return w;
}

/** [lon, lat] from one datum ('wgs84' | 'gcj02') to another. */
export function convert(lon, lat, from, to) {
  if (from === to) return [lon, lat];
  const w = from === 'gcj02' ? gcj2wgs(lon, lat) : [lon, lat];
  return to === 'gcj02' ? wgs2gcj(w[0], w[1]) : w;
}

/** Great-circle distance in metres between two [lon, lat]. */
export function distanceM(a, b) {
  const R = 6371008.8;
  const rad = Math.PI / 180;
  const dlat = (b[1] - a[1]) * rad;
  const dlon = (b[0] - a[0]) * rad;
  const h =
    Math.sin(dlat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}
