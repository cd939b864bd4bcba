/* map/orders.js: the 三单制 layer of the map. For staff, the residents' service orders of
 * their scope (GET /api/v1/orders, WGS84) as dots coloured by state, in the layer control as
 * “三单制服务” (off by default); a dot's popup names the service, state, place and who took
 * it, and links to the workbench. Anonymous visitors never get the layer: orders carry
 * residents' needs. */

import { api } from '../lib/api.js';
import { esc } from '../lib/dom.js';
import { fmtTime } from '../lib/format.js';
import { GM, toView } from './context.js';
import { offerToStaff } from './stafflayer.js';

const LABEL = '三单制服务';
const COLORS = {
  ordered: '#d84315',
  dispatched: '#f9a825',
  taken: '#1565c0',
  done: '#2e7d32',
  rated: '#78909c',
  cancelled: '#b0bec5',
};
const LIMIT = 1000;

let layer = null;
let features = [];

function popupHtml(p) {
  const who = p.volunteer ? p.volunteer.name : p.partner ? p.partner.name : '';
  return (
    `<div class="gm-order-popup" data-order-code="${esc(p.public_code)}"><b>${esc(GM.cfg.services[p.service_type] || p.service_type)}</b> · ${esc(p.status_name)}` +
    `<div class="gm-muted">${esc(p.public_code)} · ${esc(fmtTime(p.ordered_at))}</div>` +
    `<div>${esc([p.community && p.community.name, p.grid_name].filter(Boolean).join(' › '))}</div>` +
    (who ? `<div>承接：${esc(who)}</div>` : '') +
    `<a href="/desk" target="_top">到工作台处理</a></div>`
  );
}

function draw() {
  layer.clearLayers();
  for (const f of features) {
    const [lon, lat] = f.geometry.coordinates;
    const p = f.properties;
    L.circleMarker(toView(lon, lat), {
      radius: 7,
      color: '#fff',
      weight: 2,
      fillColor: COLORS[p.status] || '#555',
      fillOpacity: 0.95,
      // the marker pane takes clicks (the hazard panes leave them to the hit test)
      pane: 'markerPane',
      bubblingMouseEvents: false,
    })
      .bindPopup(popupHtml(p))
      .addTo(layer);
  }
  document.body.setAttribute('data-orders-drawn', String(features.length));
}

async function load() {
  try {
    const res = await api('/api/v1/orders', { limit: LIMIT }, { cache: 'no-store' });
    features = res.features;
  } catch (e) {
    features = [];
  }
  draw();
}

/** Offer the layer to staff (and take it away on logout). */
export function initOrders(refs) {
  layer = L.layerGroup();
  GM.map.on('baselayerchange', () => {
    if (features.length) draw();
  });
  GM.map.on('overlayadd', (e) => {
    if (e.layer === layer) load();
  });
  offerToStaff(refs, layer, LABEL, () => {
    features = [];
  });
}
