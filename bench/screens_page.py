"""Page weight and time to interactive of the staff screens (工作台 /desk and 统计
/dashboard), in headless Chromium; the sibling of bench/map_page.py.

Run it against a running service with a staff account, for instance the city-scale dataset:

    GIS_DATA_DIR=/tmp/citymap .venv/bin/gis-service demo generate --scale city
    GIS_DATA_DIR=/tmp/citymap GIS_PORT=8766 .venv/bin/gis-service serve --no-demo &
    echo 'bench password 123' | GIS_DATA_DIR=/tmp/citymap .venv/bin/gis-service users create \\
        bench.admin --role admin --name 测试 --password-stdin
    .venv/bin/python bench/screens_page.py --base http://127.0.0.1:8766 \\
        --user bench.admin --password 'bench password 123' --runs 5

Each run opens the screen in a fresh browser context (empty cache) already logged in, and
reports, medians over the runs:

* desk: time until the queue badges and the first table are filled (interactive) and until
  the network is idle (the map beside it loaded too), bytes transferred by kind;
* dashboard: time until every chart is drawn from the stats answer, and bytes by kind.

Uses Debian's /usr/bin/chromium; Playwright never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_page import CHROMIUM_ARGS, VIEWPORT, Recorder, median

SCREENS = {
    # (path, what "interactive" waits for)
    "desk": (
        "/desk",
        "() => document.body && document.body.dataset.deskReady"
        " && [...document.querySelectorAll('[data-count]')].every(e => e.textContent !== '…')",
    ),
    "dashboard": ("/dashboard", "() => document.body && document.body.dataset.dashLoaded === '1'"),
}


def run(browser, base: str, user: str, password: str, screen: str) -> dict:
    path, ready = SCREENS[screen]
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    r = context.request.post(
        f"{base}/api/v1/auth/login", data={"username": user, "password": password}
    )
    if r.status != 200:
        raise SystemExit(f"login failed: {r.status} {r.text()}")
    page = context.new_page()
    rec = Recorder(page, base)
    t0 = time.perf_counter()
    page.goto(base + path, wait_until="commit")
    page.wait_for_function(ready, timeout=120000, polling=50)
    interactive = time.perf_counter() - t0
    at_ready = rec.totals()
    page.wait_for_load_state("networkidle", timeout=120000)
    idle = time.perf_counter() - t0
    totals = rec.totals()
    context.close()
    return {
        "interactive_ms": interactive * 1000,
        "idle_ms": idle * 1000,
        "bytes_at_interactive": at_ready["total"],
        **{f"idle_{k}": v for k, v in totals.items()},
        "offsite": len(rec.offsite),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
        )
        report: dict = {"base": base, "runs": args.runs, "viewport": VIEWPORT}
        for screen in SCREENS:
            run(browser, base, args.user, args.password, screen)  # warm the server's caches
            rows = [run(browser, base, args.user, args.password, screen) for _ in range(args.runs)]
            report[f"{screen}_median"] = median(rows)
        browser.close()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
