/* session.js: who am I (name · role · scope), logging in and out, and the who-am-I bar that
 * every screen shows (with links to the staff screens and 退出). */

import { api, ApiError } from './api.js';
import { $, esc, show } from './dom.js';
import { errorText, ROLE_NAMES } from './i18n.js';

const ANONYMOUS = { kind: 'anonymous', name: '', role: null, scopes: [], grid: null, anonymous: true };

let pending = null;
const listeners = new Set();
// Who was logged in last, so that a phone with no network still knows its user (the
// session cookie is still there; writes wait in the outbox until the network returns).
const LAST_ME = 'gis-last-me';

function lastIdentity() {
  try {
    return JSON.parse(localStorage.getItem(LAST_ME) || 'null');
  } catch (e) {
    return null;
  }
}

/** The caller as the service sees them, with their scope grid's name (cached). */
export function whoAmI(force) {
  if (!pending || force) {
    pending = (async () => {
      let me;
      try {
        me = await api('/api/v1/auth/me', null, { cache: 'no-store' });
      } catch (e) {
        const last = e && e.status === 0 ? lastIdentity() : null;
        return last ? { ...last, offline: true } : ANONYMOUS;
      }
      if (!me || me.kind === 'anonymous') {
        localStorage.removeItem(LAST_ME);
        return ANONYMOUS;
      }
      me.anonymous = false;
      me.roleName = ROLE_NAMES[me.role] || me.role || '';
      me.grid = null;
      if (me.grid_id) {
        try {
          const g = await api(`/api/v1/grids/${me.grid_id}`);
          me.grid = { id: me.grid_id, name: g.properties.name, level: g.properties.level, code: g.properties.code };
        } catch (e) {
          me.grid = { id: me.grid_id, name: '', level: null };
        }
      }
      localStorage.setItem(LAST_ME, JSON.stringify(me));
      return me;
    })();
  }
  return pending;
}

/** True when the caller holds the scope ('dispatch', 'write', 'read_private', …). */
export function can(me, scope) {
  return !!me && Array.isArray(me.scopes) && me.scopes.indexOf(scope) >= 0;
}

/** A staff user (any role that reads private fields): may open the workbench and ledgers. */
export function isStaff(me) {
  return !!me && me.kind === 'user' && can(me, 'read_private');
}

/** "王芳 · 社区工作人员 · 五里堡南社区" (the whole territory for an admin). */
export function userLine(me) {
  if (!me || me.anonymous) return '';
  const where = me.grid ? me.grid.name : me.role === 'admin' ? '全辖区' : '';
  return [me.name, me.roleName, where].filter(Boolean).join(' · ');
}

/** Call fn(me) now and whenever the session changes (login, logout). */
export function onSession(fn) {
  listeners.add(fn);
  whoAmI().then(fn);
  return () => listeners.delete(fn);
}

/** Ask the server again who we are (after a 401) and tell every listener. */
export function refreshSession() {
  return changed();
}

async function changed() {
  const me = await whoAmI(true);
  for (const fn of listeners) fn(me);
  return me;
}

/** Log in with the session cookie; resolves with the new identity. */
export async function login(username, password) {
  await api('/api/v1/auth/login', null, { method: 'POST', body: { username, password } });
  return changed();
}

/** End the session. */
export async function logout() {
  localStorage.removeItem(LAST_ME);
  document.dispatchEvent(new CustomEvent('gm:logout'));
  try {
    await api('/api/v1/auth/logout', null, { method: 'POST' });
  } catch (e) {
    /* already logged out */
  }
  return changed();
}

/** Wire a login form (fields username, password) and the element that shows its errors. */
export function bindLoginForm(form, errorEl, onDone) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    show(errorEl, false);
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      const me = await login(form.username.value.trim(), form.password.value);
      form.password.value = '';
      if (onDone) onDone(me);
    } catch (err) {
      errorEl.textContent = `登录失败：${errorText(err)}`;
      show(errorEl, true);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** The roles that manage accounts (the 账号 screen): admins, and street staff in scope. */
export const ACCOUNT_MANAGERS = ['admin', 'street_staff'];

const SCREENS = [
  ['map', '/map', 'fa-map-location-dot', '地图'],
  ['desk', '/desk', 'fa-inbox', '工作台'],
  ['dashboard', '/dashboard', 'fa-chart-column', '统计'],
  ['ledger', '/ledger', 'fa-table-list', '台账'],
  ['people', '/people', 'fa-people-group', '人员'],
  ['accounts', '/accounts', 'fa-user-gear', '账号', (me) => ACCOUNT_MANAGERS.indexOf(me.role) >= 0],
];

/** The links to the staff screens this user may open (the current one marked). */
export function screenLinks(current, me) {
  return SCREENS.filter(([, , , , may]) => !may || (me && may(me)))
    .map(
      ([key, href, icon, name]) =>
        `<a class="gm-nav${key === current ? ' gm-nav-on' : ''}" href="${href}" data-screen="${key}"><i class="fa-solid ${icon}"></i> ${name}</a>`
    )
    .join('');
}

let dialog = null;

/** A small login dialog (for screens without a form of their own). */
export function openLoginDialog(onDone) {
  if (!dialog) {
    dialog = document.createElement('div');
    dialog.id = 'gm-login-dialog';
    dialog.className = 'gm-dialog';
    dialog.hidden = true;
    dialog.innerHTML = `
      <form class="gm-card gm-dialog-box" id="gm-login-dialog-form">
        <div class="gm-popover-head"><strong><i class="fa-solid fa-user"></i> 登录工作账号</strong>
          <button class="gm-close" type="button" data-dialog-close aria-label="关闭">×</button></div>
        <label class="gm-field">账号 <input name="username" autocomplete="username" required></label>
        <label class="gm-field">密码 <input name="password" type="password" autocomplete="current-password" required></label>
        <div class="gm-error" id="gm-login-dialog-error" hidden></div>
        <button type="submit" class="gm-btn gm-primary gm-block">登录</button>
      </form>`;
    document.body.appendChild(dialog);
    dialog.querySelector('[data-dialog-close]').addEventListener('click', () => show(dialog, false));
    bindLoginForm($('gm-login-dialog-form'), $('gm-login-dialog-error'), (me) => {
      show(dialog, false);
      if (dialog.onDone) dialog.onDone(me);
    });
  }
  dialog.onDone = onDone;
  show('gm-login-dialog-error', false);
  show(dialog, true);
  dialog.querySelector('input[name=username]').focus();
}

/**
 * The who-am-I bar in el: name · role · scope, links to the staff screens and 退出; a 登录
 * button for anonymous visitors. opts.current names the screen it is on.
 */
export function mountUserBar(el, opts = {}) {
  const render = (me) => {
    el.classList.toggle('gm-user-anon', me.anonymous);
    if (me.anonymous) {
      el.innerHTML = `<button type="button" class="gm-btn gm-user-login" data-gm="login-open"><i class="fa-solid fa-user"></i> 登录</button>`;
      return;
    }
    const links = isStaff(me) && opts.links !== false ? `<nav class="gm-user-links">${screenLinks(opts.current, me)}</nav>` : '';
    el.innerHTML =
      `<button type="button" class="gm-user-chip" data-gm="user-menu" aria-haspopup="true" title="${esc(userLine(me))}">` +
      `<i class="fa-solid fa-circle-user"></i><span class="gm-whoami" data-gm="whoami">${esc(userLine(me))}</span></button>` +
      `<div class="gm-user-menu">${links}<button type="button" class="gm-btn gm-logout" data-gm="logout"><i class="fa-solid fa-right-from-bracket"></i> 退出</button></div>`;
  };
  el.addEventListener('click', async (e) => {
    const t = e.target.closest('[data-gm]');
    if (!t) return;
    const what = t.getAttribute('data-gm');
    if (what === 'login-open') openLoginDialog(opts.onLogin);
    else if (what === 'logout') {
      await logout();
      if (opts.onLogout) opts.onLogout();
    } else if (what === 'user-menu') el.classList.toggle('gm-user-open');
  });
  onSession(render);
}

/**
 * The login card of a staff screen: shown (and the screen hidden) while nobody is logged in.
 * onMe(me) runs once a staff user is there, again after every login; may(me), when given,
 * narrows the screen to some staff (the 账号 screen: account managers).
 */
export function staffGate(screenEl, title, onMe, may) {
  const gate = document.createElement('div');
  gate.className = 'gm-card gm-gate';
  gate.id = 'gm-gate';
  gate.hidden = true;
  gate.innerHTML = `
    <h2>${esc(title)}</h2>
    <p class="gm-muted">此页面供街道、社区和网格工作人员使用，请先登录工作账号。</p>
    <form novalidate>
      <label class="gm-field">账号 <input name="username" autocomplete="username" required></label>
      <label class="gm-field">密码 <input name="password" type="password" autocomplete="current-password" required></label>
      <div class="gm-error" hidden></div>
      <button type="submit" class="gm-btn gm-primary gm-block">登录</button>
    </form>`;
  screenEl.parentNode.insertBefore(gate, screenEl);
  bindLoginForm(gate.querySelector('form'), gate.querySelector('.gm-error'), () => {});
  onSession((me) => {
    const ok = isStaff(me) && (!may || may(me));
    show(gate, !ok);
    show(screenEl, ok);
    if (!me.anonymous && !ok) gate.querySelector('p').textContent = '您的账号无权查看此页面。';
    if (ok) onMe(me);
    document.documentElement.setAttribute('data-gm-ready', '1');
  });
}

export { ApiError };
