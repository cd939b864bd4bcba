"""Page weight and time to first interaction of the web map (/map), in headless Chromium.

Run it against a running service, for instance the city-scale dataset:

    GIS_DATA_DIR=/tmp/citymap .venv/bin/gis-service demo generate --scale city
    GIS_DATA_DIR=/tmp/citymap GIS_PORT=8766 .venv/bin/gis-service serve --no-demo &
    .venv/bin/python bench/map_page.py --base http://127.0.0.1:8766 --runs 5

Two scenarios, each in a fresh browser context (empty cache) per run, medians reported:

* overview: open /map (the whole territory); time until the script is ready, until the
  network is idle, and the bytes transferred (compressed, headers included) by kind;
* click: open /map zoomed to 17 on a micro-grid near the middle of the territory, click it as
  soon as the map is ready, and wait until the panel shows that grid's leader: the time from
  navigation to that answer, the click-to-panel latency, and the bytes by then.

Uses Debian's /usr/bin/chromium; Playwright never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict

import httpx
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}


def kind_of(url: str, base: str) -> str:
    path = url[len(base) :] if url.startswith(base) else url
    if path.startswith("/map") and not path.startswith("/map/"):
        return "html"
    if path.startswith("/static/"):
        return "assets"
    if path.startswith("/tiles/"):
        return "tiles"
    if path.startswith(("/api/", "/map/")):
        return "json"
    return "other"


class Recorder:
    """Bytes per kind of every finished request of a page."""

    def __init__(self, page, base: str) -> None:
        self.base = base
        self.finished: list = []
        self.offsite: list[str] = []
        page.on("requestfinished", lambda request: self.finished.append(request))
        page.on("request", self._check)

    def _check(self, request) -> None:
        if not request.url.startswith((self.base, "data:", "blob:")):
            self.offsite.append(request.url)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for req in list(self.finished):
            s = req.sizes()
            out[kind_of(req.url, self.base)] += s["responseBodySize"] + s["responseHeadersSize"]
            out["requests"] += 1
        out["total"] = sum(v for k, v in out.items() if k != "requests")
        return dict(out)


def pick_target(base: str, zoom: int) -> tuple[int, float, float, str]:
    """A micro-grid near the middle of the territory and a point in it where no hazard (and,
    from zoom 17 where facilities are icons, no facility) is drawn, so that the click lands on
    the grid: (id, lon, lat, leader)."""
    client = httpx.Client(base_url=base, timeout=60)
    # ~10 pixels at this zoom, in degrees (1 px ≈ 1 m at z17 in Zhengzhou, halving per zoom).
    pad = 10 * 2 ** (17 - zoom) / 111_000
    open_statuses = "reported,accepted,dispatched,in_progress,resolved,verified"
    checks = [("/api/v1/hazards", {"status": open_statuses})]
    if zoom >= 17:
        checks.append(("/api/v1/facilities", {}))
    first = client.get("/api/v1/grids", params={"level": "micro_grid", "limit": 1}).json()
    total = first["numberMatched"]
    for offset in (total // 2 + k * 997 for k in range(40)):
        fc = client.get(
            "/api/v1/grids", params={"level": "micro_grid", "limit": 1, "offset": offset}
        ).json()
        feature = fc["features"][0]
        ring = feature["geometry"]["coordinates"][0][0]
        xs = [p[0] for p in ring]
        ys = [p[1] for p in ring]
        for i in range(1, 8):
            for j in range(1, 8):
                lon = min(xs) + (max(xs) - min(xs)) * i / 8
                lat = min(ys) + (max(ys) - min(ys)) * j / 8
                found = client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
                if found.status_code != 200:
                    continue
                finest = found.json()["chain"][-1]
                if finest["id"] != feature["id"]:
                    continue
                bbox = f"{lon - pad},{lat - pad},{lon + pad},{lat + pad}"
                near = [
                    client.get(path, params={"bbox": bbox, "limit": 1, **extra}).json()[
                        "numberMatched"
                    ]
                    for path, extra in checks
                ]
                if any(near):
                    continue
                leader = next((p["name"] for p in finest["people"] if p["is_primary"]), "")
                return finest["id"], lon, lat, leader
    raise SystemExit("found no clear spot inside a micro-grid")


def run_overview(browser, base: str) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    rec = Recorder(page, base)
    t0 = time.perf_counter()
    page.goto(base + "/map", wait_until="commit")
    page.wait_for_selector("html[data-gm-ready]", timeout=60000)
    ready = time.perf_counter() - t0
    page.wait_for_load_state("networkidle", timeout=120000)
    idle = time.perf_counter() - t0
    result = {"ready_ms": ready * 1000, "idle_ms": idle * 1000, **rec.totals()}
    result["offsite"] = len(rec.offsite)
    context.close()
    return result


def run_click(browser, base: str, target: tuple[int, float, float, str], zoom: int) -> dict:
    grid_id, lon, lat, leader = target
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    rec = Recorder(page, base)
    t0 = time.perf_counter()
    page.goto(f"{base}/map#map={zoom}/{lat:.7f}/{lon:.7f}", wait_until="commit")
    page.wait_for_selector("html[data-gm-ready]", timeout=60000)
    ready = time.perf_counter() - t0
    # The map centre is a spot of the micro-grid with no icon on it (see pick_target).
    t_click = time.perf_counter()
    page.mouse.click(VIEWPORT["width"] / 2, VIEWPORT["height"] / 2)
    page.wait_for_selector(
        f'header[data-grid-id="{grid_id}"] ~ section [data-gm="leader-name"]', timeout=60000
    )
    answered = time.perf_counter()
    shown = page.locator('[data-gm="leader-name"]').inner_text()
    bytes_then = rec.totals()
    page.wait_for_load_state("networkidle", timeout=120000)
    idle = time.perf_counter() - t0
    result = {
        "ready_ms": ready * 1000,
        "interactive_ms": (answered - t0) * 1000,
        "click_to_panel_ms": (answered - t_click) * 1000,
        "idle_ms": idle * 1000,
        "bytes_at_answer": bytes_then["total"],
        "leader_ok": shown == leader,
        **{f"idle_{k}": v for k, v in rec.totals().items()},
    }
    result["offsite"] = len(rec.offsite)
    context.close()
    return result


def median(rows: list[dict]) -> dict:
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif all(isinstance(v, int | float) for v in values):
            out[key] = round(statistics.median(values), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--zoom",
        type=int,
        action="append",
        help="zoom of the click scenario (repeatable; default 16 and 19)",
    )
    args = parser.parse_args()
    base = args.base.rstrip("/")
    zooms = args.zoom or [16, 19]
    targets = {z: pick_target(base, z) for z in zooms}
    for z, t in targets.items():
        print(f"z{z}: micro-grid {t[0]} at {t[1]:.6f},{t[2]:.6f}", file=sys.stderr)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
        )
        # One warm-up of each so that the server's caches and the database are warm too.
        run_overview(browser, base)
        for z, t in targets.items():
            run_click(browser, base, t, z)
        overview = [run_overview(browser, base) for _ in range(args.runs)]
        clicks = {
            z: [run_click(browser, base, t, z) for _ in range(args.runs)]
            for z, t in targets.items()
        }
        browser.close()
    report = {
        "base": base,
        "runs": args.runs,
        "viewport": VIEWPORT,
        "overview_median": median(overview),
        **{f"click_z{z}_median": median(rows) for z, rows in clicks.items()},
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
