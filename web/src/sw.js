/* sw.js: the field app's service worker (served at /sw.js, scope /). It makes the map open
 * with no network: the page itself (network first, the last copy when offline), every
 * script, style, font and icon it used (cache first: their URLs carry their content hash),
 * and the territory's outline and the vector tiles already seen (network first).
 *
 * It never caches the API: private data (people under care, tasks) stays in the app's own
 * IndexedDB store, which the app clears at logout; writes go through the app's outbox.
 * A service worker needs a secure context: HTTPS, or http://127.0.0.1 / localhost.
 */

const VERSION = '__ASSET_VERSION__'; // replaced by the server with the assets' content hash
const SHELL = `gm-shell-${VERSION}`;
const DATA = 'gm-data-v1';
const MAX_DATA_ENTRIES = 3000; // tiles of a few districts' worth of panning

self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith('gm-shell-') && key !== SHELL) await caches.delete(key);
      }
      await self.clients.claim();
    })()
  );
});

/** The page lists what it loaded (it loaded before this worker controlled it). */
self.addEventListener('message', (event) => {
  const msg = event.data || {};
  if (msg.type === 'cache-shell' && Array.isArray(msg.urls)) {
    event.waitUntil(
      cacheShell(msg.urls).then((n) => {
        if (event.source) event.source.postMessage({ type: 'shell-cached', count: n, version: VERSION });
      })
    );
  }
});

async function cacheShell(urls) {
  const cache = await caches.open(SHELL);
  let n = 0;
  await Promise.all(
    urls.map(async (u) => {
      const url = new URL(u, self.location.origin);
      if (url.origin !== self.location.origin) return;
      const key = isPage(url) ? url.pathname : url.href;
      if (await cache.match(key)) {
        n += 1;
        return;
      }
      try {
        const r = await fetch(url.href, { credentials: 'same-origin' });
        if (r.ok) {
          await cache.put(key, r);
          n += 1;
        }
      } catch (e) {
        /* offline already: next time */
      }
    })
  );
  return n;
}

function isPage(url) {
  return url.pathname === '/map' || url.pathname === '/' || url.pathname === '/desk';
}

async function pageNetworkFirst(request) {
  const url = new URL(request.url);
  const cache = await caches.open(SHELL);
  try {
    const response = await fetch(request);
    if (response.ok && isPage(url)) await cache.put(url.pathname, response.clone());
    return response;
  } catch (e) {
    const cached = (await cache.match(url.pathname)) || (await cache.match('/map'));
    if (cached) return cached;
    throw e;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function trim(cache) {
  const keys = await cache.keys();
  for (const key of keys.slice(0, Math.max(0, keys.length - MAX_DATA_ENTRIES))) await cache.delete(key);
}

async function dataNetworkFirst(request) {
  const cache = await caches.open(DATA);
  try {
    const response = await fetch(request);
    if (response.ok) {
      await cache.put(request, response.clone());
      if (Math.random() < 0.02) trim(cache);
    }
    return response;
  } catch (e) {
    const hit = await cache.match(request);
    if (hit) return hit;
    throw e;
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    if (isPage(url)) event.respondWith(pageNetworkFirst(request));
    return;
  }
  if (url.pathname.startsWith('/static/')) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname.startsWith('/tiles/') || url.pathname === '/map/outline.geojson') {
    event.respondWith(dataNetworkFirst(request));
  }
});
