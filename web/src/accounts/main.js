/* accounts/main.js: the 账号 screen for admins and street staff. Accounts of the user's scope
 * with role, scope, linked person, state and last login; create one and link it to a person
 * picked by name within its grid (never by typing an id); change role, scope, person and
 * name; disable, enable, unlock, reset the password. Roles above one's own and grids outside
 * one's subtree are not offered (and the API refuses them). API keys are in keys.js. */

import { api } from '../lib/api.js';
import { bindDialog, closeDialog, localError, mountDialog, openDialog } from '../lib/dialog.js';
import { $, debounce, esc, loadingHtml, show, toast } from '../lib/dom.js';
import { fmtTime } from '../lib/format.js';
import { ACCOUNT_STATES, errorText, ROLE_NAMES } from '../lib/i18n.js';
import { gridPicker, personPicker } from '../lib/pickers.js';
import { ACCOUNT_MANAGERS, mountUserBar, staffGate } from '../lib/session.js';
import { mountKeys } from './keys.js';

const ROLES = Object.keys(ROLE_NAMES); // most powerful first, as the service orders them
const LABELS = {
  username: '账号',
  display_name: '显示名称',
  password: '密码',
  role: '角色',
  grid: '管辖网格',
  person_id: '关联人员',
  reason: '原因',
};
const state = { me: null, users: [], selected: null };
let started = false;

/** The roles this user may give: their own and those below it. */
function grantable() {
  const mine = ROLES.indexOf(state.me.role);
  return ROLES.filter((r, i) => state.me.role === 'admin' || i >= mine);
}

function accountState(u) {
  if (!u.active) return 'disabled';
  if (u.locked_until && new Date(u.locked_until) > new Date()) return 'locked';
  return 'active';
}

function stateTag(u) {
  const s = accountState(u);
  const cls = s === 'active' ? 'gm-tag-green' : 'gm-tag-red';
  return `<span class="gm-tag ${cls}" data-gm="state">${ACCOUNT_STATES[s]}</span>`;
}

function scopeText(u) {
  return u.grid_id ? `${u.grid_name || ''}` : '全辖区';
}

function rowHtml(u) {
  return (
    `<tr data-user="${u.id}"${u.id === state.selected ? ' class="ac-on"' : ''}>` +
    `<td class="gm-code">${esc(u.username)}</td><td>${esc(u.display_name)}</td>` +
    `<td>${esc(ROLE_NAMES[u.role] || u.role)}</td><td>${esc(scopeText(u))}</td>` +
    `<td>${u.person_name ? esc(u.person_name) : '<span class="gm-muted">—</span>'}</td>` +
    `<td>${stateTag(u)}</td><td>${u.last_login_at ? esc(fmtTime(u.last_login_at)) : '<span class="gm-muted">从未登录</span>'}</td></tr>`
  );
}

async function loadUsers() {
  const f = $('ac-filters');
  try {
    const res = await api(
      '/api/v1/users',
      { q: f.q.value.trim(), role: f.role.value, active: f.active.value, limit: 500 },
      { cache: 'no-store' }
    );
    state.users = res.users;
    $('ac-rows').innerHTML = res.users.length
      ? res.users.map(rowHtml).join('')
      : '<tr><td colspan="7" class="gm-empty">没有符合条件的账号</td></tr>';
  } catch (e) {
    $('ac-rows').innerHTML = `<tr><td colspan="7" class="gm-error">${esc(errorText(e))}</td></tr>`;
  }
}

function detailHtml(u) {
  const locked = accountState(u) === 'locked';
  const self = u.id === state.me.id;
  return (
    `<h2 data-gm="account-title">${esc(u.display_name)} <span class="gm-code">${esc(u.username)}</span></h2>` +
    `<table class="pp-table"><tbody>` +
    `<tr><th>角色</th><td>${esc(ROLE_NAMES[u.role] || u.role)}</td></tr>` +
    `<tr><th>管辖范围</th><td>${esc(scopeText(u))} <span class="gm-code">${esc(u.grid_code || '')}</span></td></tr>` +
    `<tr><th>关联人员</th><td data-gm="linked-person">${u.person_name ? esc(u.person_name) : '<span class="gm-muted">未关联</span>'}</td></tr>` +
    `<tr><th>状态</th><td>${stateTag(u)}${u.failed_logins ? ` <span class="gm-muted">连续登录失败 ${u.failed_logins} 次</span>` : ''}</td></tr>` +
    `<tr><th>最后登录</th><td>${u.last_login_at ? esc(fmtTime(u.last_login_at)) : '从未登录'}</td></tr>` +
    `<tr><th>创建时间</th><td>${esc(fmtTime(u.created_at))}</td></tr></tbody></table>` +
    '<div class="gm-row">' +
    '<button type="button" class="gm-btn gm-go" data-do="edit"><i class="fa-solid fa-pen"></i> 修改</button>' +
    (self ? '' : u.active
      ? '<button type="button" class="gm-btn" data-do="disable"><i class="fa-solid fa-ban"></i> 停用</button>'
      : '<button type="button" class="gm-btn" data-do="enable"><i class="fa-solid fa-circle-check"></i> 启用</button>') +
    (locked || u.failed_logins ? '<button type="button" class="gm-btn" data-do="unlock"><i class="fa-solid fa-lock-open"></i> 解锁</button>' : '') +
    '<button type="button" class="gm-btn" data-do="password"><i class="fa-solid fa-key"></i> 重置密码</button>' +
    '</div><div id="ac-secret"></div>'
  );
}

async function select(id) {
  state.selected = id;
  for (const tr of document.querySelectorAll('#ac-rows tr[data-user]')) tr.classList.toggle('ac-on', +tr.getAttribute('data-user') === id);
  $('ac-detail').innerHTML = loadingHtml();
  try {
    const u = await api(`/api/v1/users/${id}`, null, { cache: 'no-store' });
    state.user = u;
    $('ac-detail').innerHTML = detailHtml(u);
  } catch (e) {
    $('ac-detail').innerHTML = `<div class="gm-error">${esc(errorText(e))}</div>`;
  }
}

function roleOptions(current) {
  return grantable()
    .map((r) => `<option value="${r}"${r === current ? ' selected' : ''}>${esc(ROLE_NAMES[r])}</option>`)
    .join('');
}

/** The person picker of a form, limited to the people of the chosen grid's subtree. */
function accountPickers(form, grid) {
  let chosenGrid = grid;
  const person = personPicker(form.querySelector('#ac-person'), { grid: () => chosenGrid && chosenGrid.id });
  const grids = gridPicker(form.querySelector('#ac-grid'), {
    onChoose: (g) => {
      chosenGrid = g;
      person.clear();
    },
  });
  return { person, grids, grid: () => chosenGrid };
}

function newAccount() {
  let pick = null;
  const form = openDialog(
    '新建账号',
    '<label class="gm-field">账号 <em>*</em><input name="username" maxlength="64" placeholder="小写字母、数字，如 li.qiang" data-gm="username"></label>' +
      '<label class="gm-field">显示名称 <em>*</em><input name="display_name" maxlength="100" data-gm="display-name"></label>' +
      `<label class="gm-field">角色 <em>*</em><select name="role" data-gm="role">${roleOptions('field_staff')}</select></label>` +
      '<div class="gm-field">管辖网格 <em>*</em><div id="ac-grid" data-gm="grid-picker"></div></div>' +
      '<div class="gm-field">关联人员<span class="gm-muted">在所选网格范围内按姓名查找；每人只能关联一个账号</span><div id="ac-person" data-gm="person-picker"></div></div>' +
      '<label class="gm-field">初始密码 <em>*</em><input name="password" type="password" autocomplete="new-password" minlength="10" data-gm="password"><span class="gm-muted">至少 10 位</span></label>' +
      '<label class="gm-field">原因<input name="reason" maxlength="500" placeholder="如：新入职网格员"></label>',
    async (f) => {
      const grid = pick.grid();
      if (!f.username.value.trim() || !f.display_name.value.trim()) throw localError('请填写账号和显示名称。');
      if (!grid && f.role.value !== 'admin') throw localError('请选择管辖网格（该账号只能管理此网格及其下级）。');
      if (f.password.value.length < 10) throw localError('初始密码至少 10 位。');
      const body = {
        username: f.username.value.trim().toLowerCase(),
        display_name: f.display_name.value.trim(),
        role: f.role.value,
        password: f.password.value,
      };
      if (grid) body.grid = grid.id;
      if (pick.person.value) body.person_id = pick.person.value.id;
      if (f.reason.value.trim()) body.reason = f.reason.value.trim();
      const u = await api('/api/v1/users', null, { method: 'POST', body });
      closeDialog();
      toast(`已创建账号 ${u.username}`, 'ok');
      await loadUsers();
      select(u.id);
    },
    '创建',
    LABELS
  );
  pick = accountPickers(form, null);
}

function editAccount(u) {
  const self = u.id === state.me.id;
  let pick = null;
  const form = openDialog(
    `修改账号 · ${u.username}`,
    `<label class="gm-field">显示名称<input name="display_name" maxlength="100" value="${esc(u.display_name)}"></label>` +
      (self ? '' : `<label class="gm-field">角色<select name="role">${roleOptions(u.role)}</select></label>`) +
      (self ? '' : `<div class="gm-field">管辖网格<span class="gm-muted">现为：${esc(scopeText(u))}；不改则留空</span><div id="ac-grid"></div></div>`) +
      `<div class="gm-field">关联人员<span class="gm-muted">现为：${esc(u.person_name || '未关联')}</span><div id="ac-person"></div>` +
      (u.person_id ? '<label class="gm-check"><input type="checkbox" name="unlink"> 解除关联</label>' : '') +
      '</div><label class="gm-field">原因<input name="reason" maxlength="500"></label>',
    async (f) => {
      const body = {};
      if (f.display_name.value.trim() !== u.display_name) body.display_name = f.display_name.value.trim();
      if (f.role && f.role.value !== u.role) body.role = f.role.value;
      const grid = pick.grid();
      if (grid && grid.id !== u.grid_id) body.grid = grid.id;
      if (pick.person.value) body.person_id = pick.person.value.id;
      else if (f.unlink && f.unlink.checked) body.person_id = null;
      if (!Object.keys(body).length) throw localError('没有需要保存的修改。');
      if (f.reason.value.trim()) body.reason = f.reason.value.trim();
      await api(`/api/v1/users/${u.id}`, null, { method: 'PATCH', body });
      closeDialog();
      toast('账号已保存', 'ok');
      await loadUsers();
      select(u.id);
    },
    '保存',
    LABELS
  );
  if (self) {
    // One's own role and scope stay; the person may change within the scope.
    const person = personPicker(form.querySelector('#ac-person'), { grid: () => u.grid_id });
    pick = { person, grid: () => null };
  } else {
    pick = accountPickers(form, u.grid_id ? { id: u.grid_id } : null);
  }
}

async function act(what) {
  const u = state.user;
  if (!u) return;
  if (what === 'edit') {
    editAccount(u);
    return;
  }
  const paths = { disable: 'disable', enable: 'enable', unlock: 'unlock', password: 'password' };
  try {
    const res = await api(`/api/v1/users/${u.id}/${paths[what]}`, null, { method: 'POST', body: {} });
    const done = { disable: '账号已停用，其登录已全部退出', enable: '账号已启用', unlock: '账号已解锁', password: '密码已重置' };
    toast(done[what], 'ok');
    await loadUsers();
    await select(u.id);
    if (what === 'password' && res.password) {
      $('ac-secret').innerHTML =
        '<p class="gm-label">新的临时密码（只显示这一次，请当面或电话告知本人）：</p>' +
        `<div class="ac-secret" data-gm="temp-password">${esc(res.password)}</div>`;
    }
  } catch (e) {
    toast(errorText(e), 'error');
  }
}

function bindUi() {
  mountDialog();
  bindDialog();
  const f = $('ac-filters');
  f.role.innerHTML += ROLES.map((r) => `<option value="${r}">${esc(ROLE_NAMES[r])}</option>`).join('');
  f.addEventListener('input', debounce(loadUsers, 250));
  f.addEventListener('change', loadUsers);
  f.addEventListener('submit', (e) => e.preventDefault());
  document.querySelector('[data-gm=new-account]').addEventListener('click', newAccount);
  $('ac-rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-user]');
    if (tr) select(+tr.getAttribute('data-user'));
  });
  $('ac-detail').addEventListener('click', (e) => {
    const b = e.target.closest('[data-do]');
    if (b) act(b.getAttribute('data-do'));
  });
  for (const tab of document.querySelectorAll('[data-tab]')) {
    tab.addEventListener('click', () => {
      const which = tab.getAttribute('data-tab');
      for (const t of document.querySelectorAll('[data-tab]')) t.classList.toggle('desk-tab-on', t === tab);
      show('ac-users', which === 'users');
      show('ac-keys', which === 'keys');
    });
  }
}

async function start(me) {
  state.me = me;
  if (started) return;
  started = true;
  bindUi();
  mountKeys(me);
  await loadUsers();
  document.body.setAttribute('data-accounts-ready', '1');
}

mountUserBar($('gm-user'), { current: 'accounts' });
staffGate($('accounts'), '账号', start, (me) => ACCOUNT_MANAGERS.indexOf(me.role) >= 0);
