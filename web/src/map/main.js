/* main.js: the web map (/map). Folium writes the Leaflet map, its basemaps, one vector-tile
 * layer per grid level plus facilities and hazards, and the layer control; its script calls
 * GM.setup(map) right after the map exists (before any layer loads), GM.tileOptions(id) for
 * each vector-tile layer, and GM.init({...}) once every layer is made.
 *
 * Nothing here holds data: grids, facilities and hazards come as vector tiles (/tiles) or as
 * small JSON answers of the API fetched when needed (a click, a search, a zoomed-in view). */

import { api } from '../lib/api.js';
import { $, pageConfig, show } from '../lib/dom.js';
import { bindSearch } from '../lib/search.js';
import { mountUserBar, onSession } from '../lib/session.js';
import { wgs2gcj, gcj2wgs } from '../lib/datum.js';
import { crsParam, GM, toView } from './context.js';
import { closeSheets, clearReport, initField, picking, refreshHazards, reportHereFromMap, startPick } from './field.js';
import { initFilters, initLegend } from './filters.js';
import { afterTile, bindHazardClicks, clearLabels, initOverlays, pruneLabels, setOutline, syncLabelGroups, updateHeat } from './overlays.js';
import { initOrders } from './orders.js';
import { initVisits } from './visits.js';
import { closePanel, lastGrid, onHazardChanged, selectAt, showGrid, showHazard } from './panel.js';
import { tileOptions } from './styles.js';
import { patchVectorGrid } from './tiles.js';
import {
  adoptHash,
  applyBasemap,
  chooseBasemap,
  datumOf,
  flyToGeometry,
  hashIsForeign,
  readHash,
  setHint,
  viewFromHash,
  writeHash,
  zoomHint,
} from './view.js';

GM.wgs2gcj = wgs2gcj;
GM.gcj2wgs = gcj2wgs;
GM.tileOptions = tileOptions;

const PANES = [
  ['gm-outline', 390],
  ['gm-grids', 400],
  ['gm-facilities', 410],
  // The 七必访 tint (visits.js) above the grids: while it is on, its click opens the counts.
  ['gm-visits', 415],
  ['gm-select', 420],
  // Hazards above Leaflet's marker pane (600: facility icons, cluster bubbles), below tooltips
  // and popups (650, 700): a hazard is never hidden under a facility.
  ['gm-hazards', 640],
  ['gm-labels', 460],
];

/** Right after L.map(): panes, datum and view are set before any layer loads. */
GM.setup = (m) => {
  GM.map = m;
  GM.cfg = pageConfig();
  patchVectorGrid(afterTile);
  for (const [name, z] of PANES) {
    const pane = m.createPane(name);
    pane.style.zIndex = z;
    if (!['gm-grids', 'gm-facilities', 'gm-visits'].includes(name)) pane.style.pointerEvents = 'none';
  }
  GM.state.basemap = chooseBasemap();
  GM.datum = datumOf(GM.state.basemap);
  GM.state.embed = new URLSearchParams(location.search).get('embed') === '1';
  document.body.classList.toggle('gm-embed', GM.state.embed);
  document.body.setAttribute('data-datum', GM.datum);
  document.body.setAttribute('data-basemap', GM.state.basemap);
  // Fixed zoom range (not derived from the layers): marker clustering needs it stable.
  m.setMinZoom(3);
  m.setMaxZoom(GM.cfg.maxZoom);
  if (!viewFromHash(readHash()) && GM.cfg.bounds) {
    const b = GM.cfg.bounds;
    m.fitBounds(L.latLngBounds(toView(b[0][1], b[0][0]), toView(b[1][1], b[1][0])), { animate: false, padding: [20, 20] });
  }
};

/** Open what the hash names: a grid or a hazard (by id or public code); without a #map=
 * view the map flies to it. */
function followHash(initial) {
  const h = readHash();
  const hasView = !!h.map;
  if (!initial && hasView) viewFromHash(h);
  const fly = hasView ? false : initial ? 'instant' : true;
  if (h.grid) showGrid(+h.grid, { fly });
  else if (h.hazard) showHazard(/^\d+$/.test(h.hazard) ? +h.hazard : h.hazard, { fly });
}

function initSearch() {
  const { cfg, refs } = GM;
  const levels = {};
  for (const lv of cfg.levels) levels[lv.level] = lv;
  bindSearch($('gm-search'), $('gm-search-results'), {
    levels,
    params: crsParam,
    // The layer switcher folds away so that it never covers the results.
    onInput: () => {
      refs.control.collapse();
      show('gm-filters', false);
    },
    onChoose: (item) => {
      closeSheets();
      if (item.kind === 'hazard') showHazard(item.id, { fly: true });
      else if (item.kind === 'grid' || item.grid_id) showGrid(item.kind === 'grid' ? item.id : item.grid_id, { fly: true });
    },
  });
  L.DomEvent.disableClickPropagation($('gm-top'));
  L.DomEvent.disableScrollPropagation($('gm-top'));
}

/** After this user moved a hazard: fresh tiles, and the workbench around us is told. */
function hazardChanged(id) {
  refreshHazards();
  if (GM.state.embed && window.parent !== window) {
    window.parent.postMessage({ type: 'gm:hazard-changed', id }, location.origin);
  }
}

/** Fit the map to a grid (the user's scope) unless something was chosen meanwhile. */
async function showMyArea(gridId) {
  try {
    const f = await api(`/api/v1/grids/${gridId}`);
    // The workbench may have set #hazard= meanwhile, its hashchange not yet handled: fitting
    // now would write our view over it (writeHash) and the hazard would never open.
    if (GM.state.selected || hashIsForeign() || readHash().hazard || readHash().grid) return;
    flyToGeometry(f.geometry, false);
    document.body.setAttribute('data-my-area', String(gridId));
  } catch (e) {
    /* the whole territory stays in view */
  }
}

GM.init = (r) => {
  const map = GM.map;
  GM.refs = r;
  L.control.zoom({ position: 'bottomright', zoomInTitle: '放大', zoomOutTitle: '缩小' }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com" target="_blank" rel="noopener">Leaflet</a>');
  initOverlays();
  initOrders(r);
  initVisits(r);

  // The basemap last: everything it may redraw exists now.
  map.addLayer(r.bases[GM.state.basemap]);
  applyBasemap(GM.state.basemap);

  bindHazardClicks((p, latlng) => {
    if (p.count > 1) {
      map.setView(latlng, Math.min(map.getZoom() + 2, GM.cfg.maxZoom));
      return;
    }
    closeSheets();
    showHazard(p.id);
  });
  map.on('click', (e) => {
    if (picking) {
      reportHereFromMap(e.latlng);
      return;
    }
    selectAt(e.latlng);
  });
  map.on('baselayerchange', (e) => {
    for (const k of Object.keys(r.bases)) if (r.bases[k] === e.layer) applyBasemap(k);
  });
  map.on('overlayadd overlayremove', (e) => {
    syncLabelGroups();
    if (e.layer === r.groups.heat) {
      if (e.type === 'overlayadd' && !map.hasLayer(r.groups.hazards)) setHint('热力图基于隐患图层，请同时打开“隐患”');
      updateHeat();
    }
  });
  map.on('zoomend', () => {
    clearLabels();
    zoomHint();
  });
  map.on('moveend', () => {
    pruneLabels();
    updateHeat();
    writeHash();
  });
  map.on('popupopen', (e) => {
    const btn = e.popup.getElement().querySelector('[data-report-at]');
    if (btn) {
      btn.addEventListener('click', () => {
        map.closePopup();
        reportHereFromMap(e.popup.getLatLng());
      });
    }
  });

  // Links in the panel and the sheets: grids, hazards, actions, close buttons.
  document.addEventListener('click', (e) => {
    const a = e.target.closest('[data-grid],[data-hazard],[data-action],[data-close]');
    if (!a || a.closest('#gm-user')) return;
    if (a.hasAttribute('data-close')) {
      const id = a.getAttribute('data-close');
      if (id === 'gm-panel') closePanel();
      else show(id, false);
      if (id === 'gm-sheet-report') clearReport();
      return;
    }
    e.preventDefault();
    // A task or a list entry opens in the panel: the sheet it came from closes first.
    closeSheets();
    if (a.hasAttribute('data-grid')) showGrid(+a.getAttribute('data-grid'), { fly: true });
    else if (a.hasAttribute('data-hazard')) showHazard(+a.getAttribute('data-hazard'), { fly: true });
    else if (a.getAttribute('data-action') === 'zoom-grid' && lastGrid) flyToGeometry(lastGrid.geometry);
    else if (a.getAttribute('data-action') === 'report-here' && lastGrid) {
      if (lastGrid.point) reportHereFromMap(lastGrid.point);
      else startPick();
    }
  });
  // A link (or the workbench) changed the hash: follow it.
  window.addEventListener('hashchange', () => {
    if (!hashIsForeign()) return;
    adoptHash();
    followHash(false);
  });

  initSearch();
  initFilters();
  initLegend();
  initField();
  onHazardChanged(hazardChanged);
  mountUserBar($('gm-user'), { current: 'map' });
  // The workbench's map opens on the user's own area (their scope grid), not on the whole
  // territory, unless the link already names a view or a selection.
  const h0 = readHash();
  const toMyArea = new URLSearchParams(location.search).get('mode') === 'desk' && !h0.map && !h0.hazard && !h0.grid;
  // Logging in or out changes what the open hazard offers.
  let first = true;
  onSession((me) => {
    if (!first && GM.state.selected && GM.state.selected.kind === 'hazard') showHazard(GM.state.selected.id, { keep: true });
    if (first && toMyArea && me && me.grid && me.grid.id) showMyArea(me.grid.id);
    first = false;
  });

  api('/map/outline.geojson').then(setOutline, () => {});

  followHash(true);
  zoomHint();
  writeHash();
  document.documentElement.setAttribute('data-gm-ready', '1');
};
