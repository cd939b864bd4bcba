/* dom.js: small DOM helpers shared by every screen (no framework). */

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for innerHTML. */
export function esc(value) {
  return String(value == null ? '' : value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** Show or hide an element (or the element with that id). */
export function show(el, on) {
  const node = typeof el === 'string' ? $(el) : el;
  if (node) node.hidden = !on;
}

/** fn, called at most once per quiet period of ms. */
export function debounce(fn, ms) {
  let t = null;
  return function debounced(...args) {
    clearTimeout(t);
    t = setTimeout(() => fn.apply(this, args), ms);
  };
}

/** A spinner with a line of text. */
export function loadingHtml(text) {
  return `<div class="gm-loading"><i class="fa-solid fa-spinner fa-spin"></i> ${esc(text || '正在查询…')}</div>`;
}

let toastTimer = null;

/** A short message at the top of the screen; kind is 'ok', 'error' or nothing. */
export function toast(message, kind, ms = 4500) {
  let el = $('gm-toast');
  if (!el) {
    el = document.createElement('div');
    el.id = 'gm-toast';
    el.setAttribute('role', 'status');
    document.body.appendChild(el);
  }
  el.textContent = message;
  el.className = kind ? `gm-toast-${kind}` : '';
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, ms);
}

/** The JSON config the server put into the page (<script id="gm-config">). */
export function pageConfig() {
  const el = $('gm-config');
  return el ? JSON.parse(el.textContent) : {};
}

/** A random UUID (Idempotency-Key of a report). */
export function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
