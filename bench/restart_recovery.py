"""How long the service takes to answer again after PostgreSQL restarts under load (issue 11,
finding 8: stale pooled connections), and what the callers see meanwhile.

    .venv/bin/python bench/restart_recovery.py --data-dir DIR [--workers 1] [--reps 3]

Starts `gis-service serve` on DIR (the embedded cluster and the demo district; the first
start loads the demo), keeps four clients asking for a locate, a grid list and a hazard
list in a loop, restarts the embedded PostgreSQL (`pg_ctl stop -m fast` + start) and
prints, per repetition: how long PostgreSQL was down, how many requests failed and with
which statuses, and the recovery time: from PostgreSQL accepting connections again to the
last failed answer (0 when no request failed after it came back). Medians at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis_service.config import Settings  # noqa: E402
from gis_service.db.engine import cluster_for  # noqa: E402

URLS = (
    "/api/v1/locate?lon=113.6468&lat=34.7275",
    "/api/v1/grids?limit=5",
    "/api/v1/hazards?limit=5",
)


def wait_ready(base: str, timeout: float = 600) -> None:
    """Until the service answers its readiness probe (the demo loads on a first start)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{base} did not become ready in {timeout:.0f} s")


def hammer(base: str, stop: threading.Event, log: list) -> None:
    """Ask in a loop, recording (monotonic time, status; 0 for no answer)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        i = 0
        while not stop.is_set():
            url = URLS[i % len(URLS)]
            i += 1
            try:
                status = client.get(url).status_code
            except httpx.HTTPError:
                status = 0
            log.append((time.monotonic(), status, url.split("?")[0]))


def one_restart(base: str, settings: Settings) -> dict:
    """Restart PostgreSQL once under load; what the clients saw."""
    cluster = cluster_for(settings)
    log: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=hammer, args=(base, stop, log)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    t_down = time.monotonic()
    cluster.stop("fast")
    cluster.start()
    t_up = time.monotonic()
    time.sleep(8)
    stop.set()
    for t in threads:
        t.join()
    failed = [(t, s, u) for t, s, u in log if s != 200]
    after = [t for t, _, _ in failed if t > t_up]
    return {
        "requests": len(log),
        "down_s": t_up - t_down,
        "failed": len(failed),
        "statuses": dict(Counter(f"{u} {s}" for _, s, u in failed)),
        "failed_after_up": len(after),
        "recovery_s": (max(after) - t_up) if after else 0.0,
        "before_ok": all(s == 200 for t, s, _ in log if t < t_down),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=18977)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--server-log", type=Path, help="Where the server's stderr goes.")
    args = ap.parse_args()
    env = {**os.environ, "GIS_DATA_DIR": str(args.data_dir), "GIS_PORT": str(args.port)}
    settings = Settings(data_dir=args.data_dir)
    base = f"http://127.0.0.1:{args.port}"
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(open(args.server_log, "wb")) if args.server_log else None
        server = subprocess.Popen(
            [sys.executable, "-m", "gis_service", "serve", "--workers", str(args.workers)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err or subprocess.DEVNULL,
        )
        stack.callback(server.wait, 30)
        stack.callback(server.terminate)
        wait_ready(base)
        runs = []
        for rep in range(args.reps):
            r = one_restart(base, settings)
            runs.append(r)
            print(
                f"run {rep + 1}: {r['requests']} requests, PostgreSQL down {r['down_s']:.2f} s,"
                f" failed {r['failed']} {r['statuses']}, failed after it was up"
                f" {r['failed_after_up']}, recovery {r['recovery_s']:.2f} s,"
                f" all 200 before: {r['before_ok']}",
                flush=True,
            )
        print(
            f"median (workers={args.workers}, {args.reps} runs): PostgreSQL down"
            f" {statistics.median(r['down_s'] for r in runs):.2f} s, failed requests"
            f" {statistics.median(r['failed'] for r in runs):.0f}, failed after it was up"
            f" {statistics.median(r['failed_after_up'] for r in runs):.0f}, recovery"
            f" {statistics.median(r['recovery_s'] for r in runs):.2f} s"
        )


if __name__ == "__main__":
    main()
