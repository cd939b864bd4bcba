/* idb.js: the phone's own store (IndexedDB), which survives a closed page, a reload and the
 * screen going dark. Four object stores:
 *   outbox  — writes waiting to be sent, in order (key: an increasing seq);
 *   points  — GPS points of the running patrol, as they come (key: [ref, seq]);
 *   kv      — small values: the running patrol, the offline pack, the last identity;
 *   (nothing else: the service worker keeps the app shell in the Cache API).
 */

const DB_NAME = 'gis-field';
const DB_VERSION = 1;
let opening = null;

/** The database, opened (and created) once per page. */
export function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains('outbox')) d.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
        if (!d.objectStoreNames.contains('points')) d.createObjectStore('points', { keyPath: ['ref', 'seq'] });
        if (!d.objectStoreNames.contains('kv')) d.createObjectStore('kv');
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('IndexedDB blocked'));
    });
  }
  return opening;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Run fn(store) in one transaction of the store; resolves with fn's request result. */
export async function withStore(name, mode, fn) {
  const d = await db();
  const tx = d.transaction(name, mode);
  const req = fn(tx.objectStore(name));
  const value = req && typeof req.onsuccess !== 'undefined' ? await result(req) : req;
  await done(tx);
  return value;
}

export const put = (name, value, key) => withStore(name, 'readwrite', (s) => (key === undefined ? s.put(value) : s.put(value, key)));
export const get = (name, key) => withStore(name, 'readonly', (s) => s.get(key));
export const del = (name, key) => withStore(name, 'readwrite', (s) => s.delete(key));
export const all = (name, range) => withStore(name, 'readonly', (s) => s.getAll(range));
export const count = (name, range) => withStore(name, 'readonly', (s) => s.count(range));

/** Delete every entry of a key range (e.g. the points of one patrol). */
export const delRange = (name, range) => withStore(name, 'readwrite', (s) => s.delete(range));
