"""Territory-wide facility exports (the demo district: ~40,800 facilities) over HTTP, in
XLSX, GeoJSON, CSV and GPKG, against ogr2ogr writing the same rows from PostgreSQL to the
same format, side by side in one run.

    .venv/bin/python bench/export_vs_ogr2ogr.py [--data-dir var-bench-demo] [--rounds 3]
                                                [--base main] [--formats xlsx,csv]

For each format it prints the median time of GET /api/v1/exports/facilities, the server's
peak resident memory above its idle level during the export, and the p95 of locate
requests sent one after another to the same server while the export runs; and ogr2ogr's
median time. With --base, the service at that git ref (taken with ``git archive``) serves
the same database too, and each round exports from it and from this tree in turn (before /
after side by side; the schema must be the same). Needs gdal-bin (ogr2ogr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("xlsx", "geojson", "csv", "gpkg")
OGR = {"xlsx": "XLSX", "geojson": "GeoJSON", "csv": "CSV", "gpkg": "GPKG"}
# The demo district's extent, roughly: locate points are drawn inside it.
LON0, LAT0, LON1, LAT1 = 113.57, 34.66, 113.68, 34.76
SERVE = (sys.executable, "-m", "gis_service", "serve")
USER, PASSWORD = "bench-exporter", "bench-exporter-password"
EXPORT_SQL = (
    "SELECT f.code, f.type_code, t.name_zh AS type_name, f.name, f.status, f.geom"
    " FROM facilities f JOIN facility_types t ON t.code = f.type_code ORDER BY f.code"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gis_service", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var-bench-demo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", default=None, help="git ref of a 'before' side on the same data")
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args()
    if not shutil.which("ogr2ogr"):
        raise SystemExit("needs ogr2ogr: apt-get install gdal-bin")
    print(f"load average before: {os.getloadavg()}", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GIS_DATA_DIR=str(args.data_dir.resolve()), GIS_LOG_LEVEL="warning")
    cli(env, "demo", "load")
    with contextlib.suppress(subprocess.CalledProcessError):  # made by an earlier run
        cli(env, "users", "create", USER, "--role", "admin", "--password-stdin", stdin=PASSWORD)
    sys.path.insert(0, str(ROOT))
    os.environ.update(GIS_DATA_DIR=env["GIS_DATA_DIR"])
    from gis_service.config import Settings
    from gis_service.db.engine import cluster_for

    cluster = cluster_for(Settings())
    pg = f"PG:{cluster.dsn()}"

    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("after" if args.base else "ours", ROOT)]
        if args.base:
            sys.path.insert(0, str(ROOT / "bench"))
            from before_after import export_tree

            trees.insert(0, ("before", export_tree(args.base, Path(tmp))))
        try:
            for name, tree in trees:
                sides[name] = start_server(tree, env)
            run(args, sides, pg)
        finally:
            for server, *_ in sides.values():
                server.terminate()
                server.wait(timeout=30)


def start_server(tree: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, dict]:
    """One worker of the service in ``tree``: (process, base URL, auth headers)."""
    port = free_port()
    server = subprocess.Popen(
        # One worker: its memory is the server's (with several, the parent only supervises).
        [*SERVE, "--port", str(port), "--no-demo", "--workers", "1"],
        env={**env, "PYTHONPATH": str(tree)},
        cwd=tree,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.3)
    token = httpx.post(
        base + "/api/v1/auth/tokens",
        json={"username": USER, "password": PASSWORD, "name": "bench", "ttl_days": 1},
    ).json()["token"]
    return server, base, {"Authorization": f"Bearer {token}"}


def locate_loop(base: str, stop: threading.Event, out: list[float]) -> None:
    """Locate requests one after another until ``stop``; latencies in ms into ``out``."""
    rng = random.Random(7)
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            params = {"lon": rng.uniform(LON0, LON1), "lat": rng.uniform(LAT0, LAT1)}
            t0 = time.perf_counter()
            client.get("/api/v1/locate", params=params)
            out.append((time.perf_counter() - t0) * 1000)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else float("nan")


def export_once(base: str, headers: dict[str, str], pid: int, fmt: str) -> dict:
    """One export with a locate loop beside it: seconds, MB above idle, locate p95, rows."""
    idle = rss_mb(pid)
    peak = [idle]
    stop, lat = threading.Event(), []

    def sample() -> None:
        while not stop.is_set():
            peak.append(rss_mb(pid))
            time.sleep(0.02)

    threads = [
        threading.Thread(target=sample),
        threading.Thread(target=locate_loop, args=(base, stop, lat)),
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # locate's latency before the export starts counts too
    t0 = time.perf_counter()
    r = httpx.get(
        f"{base}/api/v1/exports/facilities",
        params={"format": fmt},
        headers=headers,
        timeout=600,
    )
    seconds = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    r.raise_for_status()
    return {
        "s": seconds,
        "mb": max(peak) - idle,
        "p95": p95(lat),
        "rows": r.headers.get("X-Feature-Count"),
        "size": len(r.content) / 1e6,
    }


def ogr2ogr_once(pg: str, fmt: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"out.{fmt}"
        t0 = time.perf_counter()
        subprocess.run(
            ["ogr2ogr", "-f", OGR[fmt], str(target), pg, "-sql", EXPORT_SQL],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - t0


def run(args, sides: dict[str, tuple], pg: str) -> None:
    med = statistics.median
    rows = []
    for fmt in args.formats.split(","):
        got: dict[str, list[dict]] = {name: [] for name in sides}
        anchor = []
        for _ in range(args.rounds):
            for name, (server, base, headers) in sides.items():
                m = export_once(base, headers, server.pid, fmt)
                got[name].append(m)
                print(
                    f"{fmt} {name}: {m['s']:.2f}s (+{m['mb']:.0f} MB, locate p95 {m['p95']:.1f}"
                    f" ms, {m['rows']} rows, {m['size']:.1f} MB)",
                    flush=True,
                )
            anchor.append(ogr2ogr_once(pg, fmt))
            print(f"{fmt} ogr2ogr: {anchor[-1]:.2f}s", flush=True)
        a = med(anchor)
        for name, ms in got.items():
            s = med(m["s"] for m in ms)
            rows.append(
                (
                    f"territory {fmt.upper()} export ({ms[0]['rows']} facilities), {name}",
                    f"{s:.2f} s, +{med(m['mb'] for m in ms):.0f} MB,"
                    f" locate p95 {med(m['p95'] for m in ms):.1f} ms",
                    f"ogr2ogr {a:.2f} s",
                    f"{s / a:.1f}× ogr2ogr",
                    "< 5 s, < 100 MB, p95 < 20 ms",
                )
            )
        if len(got) == 2:
            b, n = (med(m["s"] for m in ms) for ms in got.values())
            print(f"== {fmt}: before {b:.2f} s | after {n:.2f} s | {b / n:.2f}× faster", flush=True)
    print("\n| measure | ours | anchor | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
