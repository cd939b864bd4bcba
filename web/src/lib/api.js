/* api.js: the one client of the service's API for every screen.
 *
 * Sends the session cookie, the CSRF token on writes (double submit: the gis_csrf cookie
 * goes back as X-CSRF-Token), If-Match on hazard moves; parses JSON; turns every failure into
 * an ApiError carrying the API's code (lib/i18n.js maps it to Chinese).
 */

/** A failed request: status 0 for a network failure, else the HTTP status and JSON body. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || (status ? `HTTP ${status}` : 'network error'));
    this.status = status;
    this.body = body || {};
    this.code = this.body.code || (status ? null : 'network');
  }
}

/** ?a=1&b=2 from an object; empty, null and undefined values are left out. */
export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function cookie(name) {
  const m = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return m ? decodeURIComponent(m[1]) : null;
}

/**
 * One request. Resolves with {data, status, headers}; rejects with an ApiError.
 * init: {method, body (object → JSON, FormData as is), headers, signal, priority}.
 */
export async function request(path, params, init = {}) {
  const method = (init.method || 'GET').toUpperCase();
  const headers = { Accept: 'application/json', ...(init.headers || {}) };
  let body = init.body;
  if (body && !(body instanceof FormData) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const csrf = cookie('gis_csrf');
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  let response;
  try {
    response = await fetch(path + qs(params), {
      method,
      headers,
      body,
      credentials: 'same-origin',
      signal: init.signal,
      // A click's answer goes before the tiles still queued (Chrome's fetch priority hint).
      priority: init.priority || 'high',
      cache: init.cache,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, { code: 'network' });
  }
  const type = response.headers.get('content-type') || '';
  let data = null;
  try {
    data = type.includes('json') ? await response.json() : await response.text();
  } catch (e) {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data && typeof data === 'object' ? data : null);
  return { data, status: response.status, headers: response.headers };
}

/** GET (or send) and resolve with the parsed body. */
export async function api(path, params, init) {
  return (await request(path, params, init)).data;
}

/** One hazard by id or public code, with its ETag (for If-Match on the next move). */
export async function getHazard(ref, params) {
  const r = await request(`/api/v1/hazards/${encodeURIComponent(ref)}`, params, { cache: 'no-store' });
  return { feature: r.data, etag: r.headers.get('etag') };
}

/**
 * One move of the closed loop: fields {action, note, assignee_person_id, …}, up to 5 photo
 * Files, and the ETag the user saw. Resolves with the new {feature, etag}.
 */
export async function moveHazard(id, etag, fields, photos) {
  let body = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null && v !== '') body[k] = v;
  if (photos && photos.length) {
    const form = new FormData();
    for (const [k, v] of Object.entries(body)) form.append(k, v);
    for (const f of Array.from(photos).slice(0, 5)) form.append('photos', f, f.name);
    body = form;
  }
  const r = await request(`/api/v1/hazards/${id}/actions`, null, {
    method: 'POST',
    headers: { 'If-Match': etag },
    body,
  });
  return { feature: r.data, etag: r.headers.get('etag') };
}
