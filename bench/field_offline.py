"""What the field app downloads to work offline for one grid, and how long a queue of offline
work takes to reach the server when the network returns; on a phone screen (390 × 844) in
headless Chromium. The figures of issue 14's closing note.

Run it against a running service with a grid leader's account, for instance the demo:

    GIS_DATA_DIR=/tmp/fieldbench GIS_PORT=8767 .venv/bin/gis-service serve &
    echo 'bench password 123' | GIS_DATA_DIR=/tmp/fieldbench .venv/bin/gis-service users \\
        create bench.leader --role grid_leader --grid <grid id> --password-stdin
    .venv/bin/python bench/field_offline.py --base http://127.0.0.1:8767 \\
        --user bench.leader --password 'bench password 123' --runs 3 --items 50

Each run opens /map?mode=field in a fresh browser context (empty cache) logged in, waits
until the service worker holds the app shell and 今日 has stored the grid's offline pack, and
reports:

* go offline: bytes the page transferred (compressed, headers included) by kind, the size of
  the offline pack (/api/v1/me/offline, as stored), and what the Cache Storage holds;
* sync: with the context offline, ``--items`` writes are queued in the app's outbox (visits
  to the grid's people under care, every fifth with a photo, alternating with hazard
  reports), the context goes online and the outbox is flushed: the time from the flush until
  the box is empty, and how many rows reached the server (each exactly once).

Medians over the runs. Uses Debian's /usr/bin/chromium; Playwright never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_page import CHROMIUM_ARGS, Recorder, median

PHONE = {"width": 390, "height": 844}

# Sizes of what the phone keeps: the Cache Storage entries and the stored offline pack.
_STORED = """async () => {
  let cache = 0, entries = 0;
  for (const name of await caches.keys()) {
    const c = await caches.open(name);
    for (const req of await c.keys()) {
      const r = await c.match(req);
      cache += (await r.clone().arrayBuffer()).byteLength;
      entries += 1;
    }
  }
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open('gis-field');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  const pack = await new Promise((ok) => {
    const r = db.transaction('kv').objectStore('kv').get('pack');
    r.onsuccess = () => ok(r.result);
  });
  const data = pack ? pack.data : null;
  return {
    cache_bytes: cache, cache_entries: entries,
    pack_bytes: data ? new Blob([JSON.stringify(data)]).size : 0,
    pack_people: data ? data.people.length : 0,
    pack_tasks: data ? data.tasks.length : 0,
    pack_micro_grids: data ? data.micro_grids.features.length : 0,
  };
}"""

# Queue n writes through the app's own outbox module (the same instance the page uses).
_QUEUE = """async ([n, tag]) => {
  const url = performance.getEntriesByType('resource').map((e) => e.name)
    .find((u) => new URL(u).pathname.endsWith('/lib/outbox.js'));
  const outbox = await import(url);
  const db = await new Promise((ok) => {
    const r = indexedDB.open('gis-field');
    r.onsuccess = () => ok(r.result);
  });
  const pack = await new Promise((ok) => {
    const r = db.transaction('kv').objectStore('kv').get('pack');
    r.onsuccess = () => ok(r.result.data);
  });
  const people = pack.people.filter((p) => p.location);
  const canvas = new OffscreenCanvas(640, 480);
  const g = canvas.getContext('2d');
  g.fillStyle = '#4a7'; g.fillRect(0, 0, 640, 480);
  const jpeg = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 });
  for (let i = 0; i < n; i += 1) {
    const p = people[i % people.length];
    const at = new Date(Date.now() - (n - i) * 1000).toISOString();
    if (i % 2 === 0) {
      const photos = i % 5 === 0 ? [new File([jpeg], `v${i}.jpg`, { type: 'image/jpeg' })] : [];
      await outbox.enqueue({ kind: 'visit', label: `bench ${i}`, url: '/api/v1/visits', photos,
        fields: { person_id: p.id, visited_at: at, findings: `${tag} 走访 ${i}`, needs: [] } });
    } else {
      await outbox.enqueue({ kind: 'report', label: `bench ${i}`, url: '/api/v1/hazards',
        fields: { category: 'corridor_clutter', lon: p.location[0] + 0.00001 * i,
                  lat: p.location[1], description: `${tag} 上报 ${i}`, observed_at: at } });
    }
  }
  return (await outbox.status()).total;
}"""

_FLUSH = """async () => {
  const url = performance.getEntriesByType('resource').map((e) => e.name)
    .find((u) => new URL(u).pathname.endsWith('/lib/outbox.js'));
  const outbox = await import(url);
  const t0 = performance.now();
  let s;
  do {
    await outbox.flush();
    s = await outbox.status();
  } while (s.pending > 0 && !s.blocked);
  return { ms: performance.now() - t0, left: s.total, blocked: s.blocked };
}"""


def run(browser, base: str, user: str, password: str, items: int, tag: str) -> dict:
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    )
    r = context.request.post(
        f"{base}/api/v1/auth/login", data={"username": user, "password": password}
    )
    if r.status != 200:
        raise SystemExit(f"login failed: {r.status} {r.text()}")
    page = context.new_page()
    rec = Recorder(page, base)
    t0 = time.perf_counter()
    page.goto(f"{base}/map?mode=field", wait_until="commit")
    page.wait_for_selector("html[data-gm-offline-ready]", timeout=120000)
    page.click("#gm-duties")
    page.wait_for_function(
        "() => !document.querySelector('#gm-duties-body .gm-loading')"
        " && document.querySelector('#gm-duties-body h3')",
        timeout=120000,
    )
    page.wait_for_load_state("networkidle", timeout=120000)
    ready = time.perf_counter() - t0
    totals = rec.totals()
    stored = page.evaluate(_STORED)
    context.set_offline(True)
    queued = page.evaluate(_QUEUE, [items, tag])
    context.set_offline(False)
    synced = page.evaluate(_FLUSH)
    context.close()
    return {
        "offline_ready_ms": ready * 1000,
        **{f"download_{k}": v for k, v in totals.items()},
        **stored,
        "queued": queued,
        "sync_ms": synced["ms"],
        "sync_left": synced["left"],
        "offsite": len(rec.offsite),
    }


def arrived(base: str, user: str, password: str, tag: str, since: str) -> dict[str, int]:
    """How many of a run's visits and reports the server holds (reads as the same user)."""
    import httpx

    with httpx.Client(base_url=base, timeout=60) as c:
        c.post("/api/v1/auth/login", json={"username": user, "password": password})
        params = {"since": since, "limit": 1000}
        visits = c.get("/api/v1/visits", params=params).json()
        hazards = c.get("/api/v1/hazards", params=params).json()
    return {
        "visits": sum(1 for v in visits.get("items", []) if tag in (v.get("findings") or "")),
        "reports": sum(
            1
            for f in hazards.get("features", [])
            if tag in (f["properties"].get("description") or "")
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
        )
        for i in range(args.runs):
            tag = f"bench-{int(time.time())}-{i}"
            since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
            row = run(browser, base, args.user, args.password, args.items, tag)
            got = arrived(base, args.user, args.password, tag, since.isoformat())
            row.update({f"arrived_{k}": v for k, v in got.items()})
            rows.append(row)
        browser.close()
    report = {"base": base, "runs": args.runs, "items": args.items, "viewport": PHONE}
    report["median"] = median(rows)
    report["runs_detail"] = rows
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
