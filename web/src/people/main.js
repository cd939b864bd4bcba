/* people/main.js: the 人员 screen. Pick a grid in the tree (gaps in red), on the map beside it
 * or by search; see its people by role with phones and since-when, its leader or the gap, and
 * its history; replace the leader, add a person or end a role with a form. After a change the
 * grid, the tree and the map's panel show the new state at once. */

import { api } from '../lib/api.js';
import { $, esc, loadingHtml, pageConfig, toast } from '../lib/dom.js';
import { errorText } from '../lib/i18n.js';
import { bindSearch } from '../lib/search.js';
import { mountUserBar, staffGate } from '../lib/session.js';
import { addForm, bindForms, endForm, personDialog, replaceLeaderForm } from './forms.js';
import { gridHtml } from './grid.js';
import { markSelected, mountTree, refreshTree } from './tree.js';

const cfg = pageConfig();
const levels = Object.fromEntries(cfg.levels.map((l) => [l.level, l]));
const state = { grid: null, data: null, roles: [], me: null, token: 0 };
let started = false;

function mayEdit() {
  return !!state.me && ['admin', 'street_staff', 'community_staff'].indexOf(state.me.role) >= 0;
}

/** Show a grid's people; fromMap: the map chose it (do not drive the map back). */
async function selectGrid(id, fromMap) {
  const token = ++state.token;
  state.grid = id;
  markSelected(id);
  $('pp-grid').innerHTML = loadingHtml();
  if (!fromMap) showOnMap(id);
  try {
    const data = await api(`/api/v1/grids/${id}/assignments`, null, { cache: 'no-store' });
    if (token !== state.token) return;
    render(data);
  } catch (e) {
    if (token !== state.token) return;
    $('pp-grid').innerHTML = `<div class="gm-error">${esc(errorText(e))}</div>`;
  }
}

function render(data) {
  state.data = data;
  const coverage = ['admin', 'street_staff'].indexOf(state.me.role) >= 0; // who may run the check
  $('pp-grid').innerHTML = gridHtml(data, levels, coverage);
  document.body.setAttribute('data-grid-shown', String(data.grid.id));
  if (!mayEdit()) for (const b of $('pp-grid').querySelectorAll('[data-act]')) b.hidden = true;
}

function showOnMap(id) {
  const frame = $('pp-map');
  try {
    // The map follows a changed hash (#grid=…): it opens the grid's panel afresh.
    frame.contentWindow.location.hash = `grid=${id}`;
  } catch (e) {
    frame.src = `/map?embed=1&mode=desk#grid=${id}`;
  }
}

/** After a change: the grid from the answer, the tree's leaders and gaps, the map's panel. */
function changed(res, message) {
  render(res.grid);
  toast(message, 'ok');
  refreshTree(res.grid.grid.chain.slice(0, -1).map((c) => c.id));
  showOnMap(res.grid.grid.id);
}

function bindUi() {
  bindForms();
  $('pp-grid').addEventListener('click', (e) => {
    const t = e.target.closest('[data-act],[data-person],[data-grid]');
    if (!t || !state.data) return;
    if (t.hasAttribute('data-person')) {
      personDialog(+t.getAttribute('data-person'), (message) => {
        toast(message, 'ok');
        selectGrid(state.grid);
      });
    } else if (t.hasAttribute('data-grid')) {
      selectGrid(+t.getAttribute('data-grid'));
    } else if (t.getAttribute('data-act') === 'leader') {
      replaceLeaderForm(state.data, changed);
    } else if (t.getAttribute('data-act') === 'add') {
      addForm(state.data, state.roles, changed);
    } else if (t.getAttribute('data-act') === 'end') {
      const id = +t.getAttribute('data-id');
      const a = [...state.data.current, ...state.data.future].find((x) => x.id === id);
      if (a) endForm(a, changed);
    }
  });
  // A click on the map beside us chose a grid.
  window.addEventListener('message', (e) => {
    if (e.origin !== location.origin || !e.data || e.data.type !== 'gm:grid-selected') return;
    if (e.data.id !== state.grid) selectGrid(e.data.id, true);
  });
  bindSearch($('gm-search'), $('gm-search-results'), {
    levels,
    onChoose: (item) => {
      if (item.kind === 'person') {
        personDialog(item.id, (message) => toast(message, 'ok'));
        if (item.grid_id) selectGrid(item.grid_id);
      } else if (item.kind === 'grid') selectGrid(item.id);
      else if (item.grid_id) selectGrid(item.grid_id);
    },
  });
}

async function start(me) {
  state.me = me;
  if (started) return;
  started = true;
  bindUi();
  try {
    state.roles = await api('/api/v1/assignment-roles');
  } catch (e) {
    toast(errorText(e), 'error');
  }
  await mountTree(selectGrid);
  const wanted = +new URLSearchParams(location.hash.slice(1)).get('grid');
  if (wanted) await selectGrid(wanted);
  document.body.setAttribute('data-people-ready', '1');
}

mountUserBar($('gm-user'), { current: 'people' });
staffGate($('people'), '人员', start);
