/* map/visits.js: the 七必访 tint of the map. For staff, the micro-grids of their scope that hold
 * people under care (GET /api/v1/care/overdue-map, WGS84, counts only), tinted by how many
 * of those people are overdue for a visit: green none, amber one or two, red three or more.
 * In the layer control as “走访逾期（七必访）” (off by default); a click names the grid and its
 * counts and opens its panel. Anonymous visitors never get the layer; it is not in the
 * vector tiles either (tiles are public and cached). */

import { api } from '../lib/api.js';
import { esc } from '../lib/dom.js';
import { GM, toView } from './context.js';
import { offerToStaff } from './stafflayer.js';

const LABEL = '走访逾期（七必访）';
const TINTS = [
  [3, '#d32f2f'],
  [1, '#f9a825'],
  [0, '#43a047'],
];

let layer = null;
let collection = null;

export const tintOf = (overdue) => TINTS.find(([min]) => overdue >= min)[1];

function popupHtml(p, id) {
  return (
    `<div class="gm-visit-popup" data-visit-grid="${id}"><b>${esc(p.name)}</b>` +
    `<div>关爱对象 ${esc(p.people)} 人 · <span class="${p.overdue ? 'gm-error' : ''}">逾期未访 ${esc(p.overdue)} 人</span> · 今日应访 ${esc(p.due_today)} 人</div>` +
    `<button type="button" class="gm-link" data-gm="visit-grid-open">查看网格</button></div>`
  );
}

function draw() {
  layer.clearLayers();
  if (!collection) return;
  L.geoJSON(collection, {
    pane: 'gm-visits',
    // its own click: the map's (which opens the grid under the point) must not close the popup
    bubblingMouseEvents: false,
    coordsToLatLng: (c) => toView(c[0], c[1]),
    style: (f) => ({
      color: tintOf(f.properties.overdue),
      weight: 2,
      fillColor: tintOf(f.properties.overdue),
      fillOpacity: 0.35,
    }),
    onEachFeature: (f, l) => {
      l.bindPopup(popupHtml(f.properties, f.id));
      l.on('popupopen', (e) => {
        const b = e.popup.getElement().querySelector('[data-gm=visit-grid-open]');
        if (b) b.addEventListener('click', () => GM.showGrid(f.id));
      });
    },
  }).addTo(layer);
  document.body.setAttribute('data-visits-drawn', String(collection.features.length));
}

async function load() {
  try {
    collection = await api('/api/v1/care/overdue-map', null, { cache: 'no-store' });
  } catch (e) {
    collection = null;
  }
  draw();
}

/** Offer the layer to staff (and take it away on logout). */
export function initVisits(refs) {
  layer = L.layerGroup();
  GM.map.on('baselayerchange', () => {
    if (collection) draw();
  });
  GM.map.on('overlayadd', (e) => {
    if (e.layer === layer) load();
  });
  offerToStaff(refs, layer, LABEL, () => {
    collection = null;
  });
}
