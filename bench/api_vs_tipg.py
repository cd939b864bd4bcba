"""Benchmark: our API against tipg on the same city-scale tables, side by side in one run.

    python bench/api_vs_tipg.py [--data-dir var-bench] [--seconds 10] [--rounds 3]

It starts (or reuses) the embedded PostGIS under --data-dir, builds the city dataset once
(`gis-service demo generate --scale city`: ~100k micro-grids, 1M facilities, 200k hazards),
installs tipg into its own virtualenv (bench/.venv-tipg), starts one uvicorn worker of each
server on loopback, and drives them with wrk, alternating ours and tipg's for every case.
It prints requests/s, p50 and p99 (medians over the rounds), the batch-locate time for
10,000 points and each server's resident memory. Needs Debian's wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TIPG_VENV = ROOT / "bench" / ".venv-tipg"
# The city lattice of gis_service/demo/city.py: 5 × 4 streets of 3 km from this corner.
LON0, LAT0 = 113.70, 34.62
LON1, LAT1 = LON0 + 15 / 91.40, LAT0 + 12 / 110.574
# ~95 m boxes hold about 50 of the 1M facilities (≈5,500 per km²).
BOX_LON, BOX_LAT = 0.095 / 91.40, 0.095 / 110.574

WRK_SCRIPT = """
local urls = {}
for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
local i = math.random(#urls)
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"no answer from {url}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def prepare_database(data_dir: Path) -> str:
    """Start the embedded cluster, migrate, and build the city dataset once."""
    os.environ["GIS_DATA_DIR"] = str(data_dir)
    os.environ["GIS_LOAD_DEMO"] = "false"
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import text

    from gis_service.config import Settings
    from gis_service.demo.city import generate_city
    from gis_service.runtime import prepare

    prepared = prepare(Settings(), load_demo=False)
    with prepared.engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM grids WHERE attributes->>'dataset' = 'city'")
        ).scalar()
    if not n:
        print("building the city dataset (a couple of minutes) ...", flush=True)
        print(json.dumps(generate_city(prepared.engine, progress=print)))
    from gis_service.db.engine import cluster_for

    prepared.engine.dispose()
    return str(cluster_for(Settings()).socket_dir)


def ensure_tipg() -> Path:
    uvicorn = TIPG_VENV / "bin" / "uvicorn"
    if not uvicorn.exists():
        print("installing tipg into bench/.venv-tipg ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        pip = TIPG_VENV / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", "tipg", "uvicorn"], check=True)
    return uvicorn


def wrk(base: str, urls: list[str], seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "urls.lua"
        script.write_text(WRK_SCRIPT)
        url_file = Path(tmp) / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        out = subprocess.run(
            ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", "-s", str(script), base],
            env={**os.environ, "BENCH_URLS": str(url_file)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": int(bad.group(1)) if bad else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var-bench")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install wrk")

    socket_dir = prepare_database(args.data_dir.resolve())
    tipg_uvicorn = ensure_tipg()
    ours_port, tipg_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    ours = subprocess.Popen(
        [sys.executable, "-m", "gis_service", "serve", "--port", str(ours_port)],
        env={**env, "GIS_LOG_LEVEL": "warning"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    tipg = subprocess.Popen(
        [str(tipg_uvicorn), "tipg_app:app", "--port", str(tipg_port), "--log-level", "warning"],
        env={
            **env,
            "DATABASE_URL": "postgresql://postgres@localhost/gis",
            "BENCH_PG_SOCKET": socket_dir,
            "TIPG_DB_SCHEMAS": '["public"]',
        },
        cwd=ROOT / "bench",
        stdout=subprocess.DEVNULL,
    )
    try:
        ours_base, tipg_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{tipg_port}"
        wait_http(ours_base + "/health", ours)
        wait_http(tipg_base + "/collections", tipg)
        run(args, ours, tipg, ours_base, tipg_base)
    finally:
        for proc in (ours, tipg):
            proc.terminate()
            proc.wait(timeout=30)


def run(args, ours, tipg, ours_base: str, tipg_base: str) -> None:
    rng = random.Random(20261122)
    boxes, points, tiles = [], [], []
    for _ in range(500):
        x = rng.uniform(LON0, LON1 - BOX_LON)
        y = rng.uniform(LAT0, LAT1 - BOX_LAT)
        boxes.append(f"{x:.6f},{y:.6f},{x + BOX_LON:.6f},{y + BOX_LAT:.6f}")
        points.append((rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)))
        tiles.append(tile_xy(rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1), 14))
    cases = {
        "bbox items (~50)": (
            [f"/api/v1/facilities?bbox={b}&limit=50" for b in boxes],
            [f"/collections/public.facilities/items?bbox={b}&limit=50" for b in boxes],
        ),
        "locate / point filter": (
            [f"/api/v1/locate?lon={x:.6f}&lat={y:.6f}" for x, y in points],
            [
                f"/collections/public.grids/items?filter-lang=cql2-text"
                f"&filter=S_INTERSECTS(geom,POINT({x:.6f}%20{y:.6f}))"
                for x, y in points
            ],
        ),
        "z14 facilities tile": (
            [f"/tiles/facilities/14/{x}/{y}.pbf" for x, y in tiles],
            [f"/collections/public.facilities/tiles/WebMercatorQuad/14/{x}/{y}" for x, y in tiles],
        ),
    }
    # Sanity: both answer the first URL of every case with 2xx before we measure.
    for name, (o, t) in cases.items():
        for base, urls in ((ours_base, o), (tipg_base, t)):
            r = httpx.get(base + urls[0], timeout=30)
            if r.status_code >= 300:
                raise SystemExit(
                    f"{name}: {base + urls[0]} answered {r.status_code}: {r.text[:300]}"
                )

    results: dict[str, dict[str, list[dict]]] = {n: {"ours": [], "tipg": []} for n in cases}
    for rnd in range(args.rounds):
        for name, (o, t) in cases.items():
            for who, base, urls in (("ours", ours_base, o), ("tipg", tipg_base, t)):
                wrk(base, urls, 2)  # warm-up
                res = wrk(base, urls, args.seconds)
                results[name][who].append(res)
                print(f"round {rnd + 1} {name:24} {who:5} {res}", flush=True)

    batch = [[rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)] for _ in range(10_000)]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        r = httpx.post(ours_base + "/api/v1/locate", json={"points": batch}, timeout=120)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    located = sum(1 for x in r.json()["results"] if x)

    med = statistics.median
    print("\n| case | server | req/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, per in results.items():
        for who, runs in per.items():
            print(
                f"| {name} | {who} | {med(r['rps'] for r in runs):.0f} | "
                f"{med(r['p50'] for r in runs):.2f} | {med(r['p99'] for r in runs):.2f} | "
                f"{sum(r['errors'] for r in runs)} |"
            )
        ratio = med(r["rps"] for r in per["ours"]) / med(r["rps"] for r in per["tipg"])
        print(f"| {name} | ours / tipg | {ratio:.1f}x | | | |")
    print(
        f"\nbatch locate of 10,000 points: median {med(times) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)}), {located} inside a grid"
    )
    print(f"resident memory: ours {rss_mb(ours.pid):.0f} MB, tipg {rss_mb(tipg.pid):.0f} MB")


if __name__ == "__main__":
    main()
