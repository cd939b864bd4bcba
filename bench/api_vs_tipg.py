"""Benchmark: our API against tipg on the same city-scale tables, side by side in one run.

    python bench/api_vs_tipg.py [--data-dir var-bench] [--seconds 10] [--rounds 3]
                                [--tipg-venv bench/.venv-tipg] [--only bbox,locate,...]

It starts (or reuses) the embedded PostGIS under --data-dir, builds the city dataset once
(`gis-service demo generate --scale city`: ~100k micro-grids, 1M facilities, 200k hazards),
installs tipg into its own virtualenv, starts one uvicorn worker of each server on loopback,
and measures, alternating ours and tipg's:

- bbox items (~50 features) and locate against tipg's CQL2 point filter: wrk -t1 -c4,
  requests/s, p50 and p99 (medians over the rounds);
- z14 facilities tiles: p50 of single requests over distinct tiles, cold (our tile cache
  emptied first) and again (our cache hits; tipg has no cache, so its second pass is the
  same work again), plus wrk throughput;
- batch locate of 10,000 points (ours; tipg has no batch);
- reading every micro-grid over OGC API - Features with limit=1000 by following `next`
  links (plain HTTP, as QGIS does): total time and first/last page;
- resident memory per worker after all of the above;
- bbox requests/s with 2 workers against 1 worker (wrk -c8), each with the CPU used by the
  server processes and by PostgreSQL during the run (in cores: 1.0 = one core busy).

Prints one table with every row of issue 13's targets. Needs Debian's wrk.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The city lattice of gis_service/demo/city.py: 5 × 4 streets of 3 km from this corner.
LON0, LAT0 = 113.70, 34.62
LON1, LAT1 = LON0 + 15 / 91.40, LAT0 + 12 / 110.574
# ~95 m boxes hold about 50 of the 1M facilities (≈5,500 per km²).
BOX_LON, BOX_LAT = 0.095 / 91.40, 0.095 / 110.574
CLK_TCK = os.sysconf("SC_CLK_TCK")
SECTIONS = ("bbox", "locate", "tiles", "batch", "paging", "memory", "workers")

WRK_SCRIPT = """
local urls = {}
for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
local i = math.random(#urls)
request = function()
  i = i % #urls + 1
  return wrk.format("GET", urls[i])
end
"""

med = statistics.median


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
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


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid → (ppid, cpu seconds, rss MB) for every process we can read."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ppid = int(fields[1])
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry.name)] = (ppid, cpu, rss)
    return out


def tree(root: int, table: dict[int, tuple[int, float, float]]) -> list[int]:
    """``root`` and all its descendants."""
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(pid)
            todo.extend(kids.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    table = _proc_table()
    return sum(table[p][1] for p in tree(root, table))


def worker_rss(root: int) -> list[float]:
    """Resident MB of each worker: the children of a multi-worker parent, else the process."""
    table = _proc_table()
    pids = tree(root, table)
    children = [p for p in pids if p != root and table[p][0] == root]
    # uvicorn --workers N runs the app in children; a lone worker runs it in the parent.
    workers = children if len(children) > 1 else [root]
    return [table[p][2] for p in workers]


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def prepare_database(data_dir: Path) -> tuple[str, int]:
    """Start the embedded cluster, migrate, build the city dataset once; (socket, postmaster)."""
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
    # The locate cells (migration 0018) are probed by index-only scans, which read the heap
    # until the visibility map is set; autovacuum sets it a minute or so after the
    # migration's bulk fill, a minute a run should not measure.
    with prepared.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.execute(text("SELECT to_regclass('grid_cells')")).scalar():
            conn.execute(text("VACUUM (ANALYZE) grid_cells"))
    from gis_service.db.engine import cluster_for

    prepared.engine.dispose()
    cluster = cluster_for(Settings())
    return str(cluster.socket_dir), cluster.pid()


def clear_tile_cache() -> None:
    """Empty our tile cache (if this version has one) so the first pass really misses."""
    from sqlalchemy import text

    from gis_service.config import Settings
    from gis_service.db.engine import make_engine, resolve_url

    engine = make_engine(resolve_url(Settings()), pool_size=1)
    with engine.begin() as conn:
        if conn.execute(text("SELECT to_regclass('tile_cache')")).scalar():
            conn.execute(text("TRUNCATE tile_cache"))
    engine.dispose()


def ensure_tipg(venv: Path) -> Path:
    uvicorn = venv / "bin" / "uvicorn"
    if not uvicorn.exists():
        print(f"installing tipg into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = venv / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", "tipg", "uvicorn"], check=True)
    return uvicorn


def wrk(base: str, urls: list[str], seconds: int, connections: int = 4) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "urls.lua"
        script.write_text(WRK_SCRIPT)
        url_file = Path(tmp) / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                base,
            ],
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


@dataclass
class Server:
    """One running server: its process, base URL and how to reach its pages."""

    name: str
    proc: subprocess.Popen
    base: str


def start_ours(workers: int | None, env: dict[str, str]) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "gis_service", "serve", "--port", str(port), "--no-demo"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd, env={**env, "GIS_LOG_LEVEL": "warning"}, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    server = Server("ours", proc, f"http://127.0.0.1:{port}")
    wait_http(server.base + "/health", proc)
    return server


def start_tipg(uvicorn: Path, socket_dir: str, workers: int, env: dict[str, str]) -> Server:
    port = free_port()
    cmd = [str(uvicorn), "tipg_app:app", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd,
        env={
            **env,
            "DATABASE_URL": "postgresql://postgres@localhost/gis",
            "BENCH_PG_SOCKET": socket_dir,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        },
        cwd=ROOT / "bench",
        stdout=subprocess.DEVNULL,
    )
    server = Server("tipg", proc, f"http://127.0.0.1:{port}")
    wait_http(server.base + "/collections", proc)
    return server


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()


def sequential_p50(base: str, urls: list[str]) -> float:
    """p50 in ms of one request at a time over ``urls`` (one keep-alive connection)."""
    times = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for u in urls:
            t0 = time.perf_counter()
            r = client.get(u)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code >= 400:
                raise SystemExit(f"{base}{u} answered {r.status_code}: {r.text[:200]}")
    return med(times)


def read_all_pages(base: str, first: str) -> dict[str, float]:
    """Follow rel=next from ``first``; total seconds, features, first and last page ms."""
    url, pages, n = base + first, [], 0
    t0 = time.perf_counter()
    with httpx.Client(timeout=300) as client:
        while url:
            t = time.perf_counter()
            r = client.get(url)
            r.raise_for_status()
            doc = r.json()
            pages.append((time.perf_counter() - t) * 1000)
            n += len(doc["features"])
            url = next((lk["href"] for lk in doc.get("links", []) if lk["rel"] == "next"), None)
            if not doc["features"]:
                break
    return {
        "seconds": time.perf_counter() - t0,
        "features": n,
        "pages": len(pages),
        "first_ms": pages[0],
        "last_ms": pages[-1] if len(pages) < 2 or n % 1000 == 0 else pages[-2],
    }


def with_cpu(roots: dict[str, int], fn: Callable[[], dict]) -> dict:
    """Run ``fn`` and add the CPU (in cores) each process tree used meanwhile."""
    before = {k: cpu_seconds(pid) for k, pid in roots.items()}
    t0 = time.perf_counter()
    res = fn()
    wall = time.perf_counter() - t0
    for k, pid in roots.items():
        res[f"cpu_{k}"] = (cpu_seconds(pid) - before[k]) / wall
    return res


class Rows:
    """The closing table: one row per target, ours and the anchor side by side."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, measure: str, ours: str, anchor: str, ratio: str, target: str) -> None:
        self.rows.append((measure, ours, anchor, ratio, target))
        print(f"== {measure}: ours {ours} | anchor {anchor} | {ratio} | {target}", flush=True)

    def print(self) -> None:
        print("\n| measure | ours | anchor | ratio | target |")
        print("| --- | ---: | ---: | ---: | --- |")
        for r in self.rows:
            print("| " + " | ".join(r) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var-bench")
    parser.add_argument("--tipg-venv", type=Path, default=ROOT / "bench" / ".venv-tipg")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma list of sections")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk: apt-get install wrk")
    print(f"load average before: {os.getloadavg()}", flush=True)

    socket_dir, postmaster = prepare_database(args.data_dir.resolve())
    tipg_uvicorn = ensure_tipg(args.tipg_venv.resolve())
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    multi = (
        "--workers"
        in subprocess.run(
            [sys.executable, "-m", "gis_service", "serve", "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
    )
    rows = Rows()
    ours = start_ours(1 if multi else None, env)
    tipg = start_tipg(tipg_uvicorn, socket_dir, 1, env)
    try:
        run(args, only, rows, ours, tipg)
        if "memory" in only:
            o, t = worker_rss(ours.proc.pid), worker_rss(tipg.proc.pid)
            rows.add(
                "resident memory per worker, city scale",
                f"{max(o):.0f} MB",
                f"tipg {max(t):.0f} MB",
                f"{max(o) / max(t):.1f}× tipg",
                "< 300 MB",
            )
    finally:
        stop(ours)
        stop(tipg)
    if "workers" in only:
        if multi:
            workers(args, rows, env, socket_dir, postmaster, tipg_uvicorn)
        else:
            rows.add("bbox req/s, 2 workers vs 1", "no --workers option", "-", "-", "reported")
    rows.print()
    print(f"load average after: {os.getloadavg()}")


def make_cases(rng: random.Random) -> dict[str, tuple[list[str], list[str]]]:
    boxes, points = [], []
    for _ in range(500):
        x = rng.uniform(LON0, LON1 - BOX_LON)
        y = rng.uniform(LAT0, LAT1 - BOX_LAT)
        boxes.append(f"{x:.6f},{y:.6f},{x + BOX_LON:.6f},{y + BOX_LAT:.6f}")
        points.append((rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)))
    return {
        "bbox": (
            [f"/api/v1/facilities?bbox={b}&limit=50" for b in boxes],
            [f"/collections/public.facilities/items?bbox={b}&limit=50" for b in boxes],
        ),
        "locate": (
            [f"/api/v1/locate?lon={x:.6f}&lat={y:.6f}" for x, y in points],
            [
                f"/collections/public.grids/items?filter-lang=cql2-text"
                f"&filter=S_INTERSECTS(geom,POINT({x:.6f}%20{y:.6f}))"
                for x, y in points
            ],
        ),
    }


def run(args, only: set[str], rows: Rows, ours: Server, tipg: Server) -> None:
    rng = random.Random(20261122)
    cases = make_cases(rng)
    for name, (o, t) in cases.items():
        for base, urls in ((ours.base, o), (tipg.base, t)):
            r = httpx.get(base + urls[0], timeout=30)
            if r.status_code >= 300:
                raise SystemExit(f"{name}: {base + urls[0]} answered {r.status_code}: {r.text}")

    titles = {
        "bbox": ("bbox items (~50 features), req/s", "≥ 8×"),
        "locate": ("locate vs tipg's CQL2 point filter, req/s", "≥ 10×"),
    }
    for name in [n for n in cases if n in only]:
        o, t = cases[name]
        res: dict[str, list[dict]] = {"ours": [], "tipg": []}
        for rnd in range(args.rounds):
            for server, urls in ((ours, o), (tipg, t)):
                wrk(server.base, urls, 2)  # warm-up
                r = wrk(server.base, urls, args.seconds)
                res[server.name].append(r)
                print(f"round {rnd + 1} {name:8} {server.name:5} {r}", flush=True)
        ro, rt = med(r["rps"] for r in res["ours"]), med(r["rps"] for r in res["tipg"])
        po, pt = med(r["p50"] for r in res["ours"]), med(r["p50"] for r in res["tipg"])
        errors = sum(r["errors"] for r in res["ours"] + res["tipg"])
        title, target = titles[name]
        rows.add(
            title,
            f"{ro:.0f} (p50 {po:.1f} ms)",
            f"tipg {rt:.0f} (p50 {pt:.1f} ms)" + (f", {errors} errors" if errors else ""),
            f"{ro / rt:.1f}×",
            target,
        )

    if "tiles" in only:
        tiles_section(args, rows, ours, tipg, rng)

    if "batch" in only:
        batch = [[rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)] for _ in range(10_000)]
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            r = httpx.post(ours.base + "/api/v1/locate", json={"points": batch}, timeout=120)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
        located = sum(1 for x in r.json()["results"] if x)
        rows.add(
            "batch locate, 10,000 points",
            f"{med(times):.0f} ms ({located} located)",
            "none (tipg has no batch)",
            "-",
            "< 250 ms",
        )

    if "paging" in only:
        o = read_all_pages(ours.base, "/ogc/collections/grids_micro_grid/items?limit=1000")
        print(f"paging ours {o}", flush=True)
        t = read_all_pages(tipg.base, "/collections/public.grids/items?level=micro_grid&limit=1000")
        print(f"paging tipg {t}", flush=True)
        rows.add(
            f"read all {o['features']:,} micro-grids over OGC (limit 1000)",
            f"{o['seconds']:.1f} s, last page {o['last_ms'] / o['first_ms']:.1f}× the first "
            f"({o['first_ms']:.0f} → {o['last_ms']:.0f} ms)",
            f"tipg {t['seconds']:.1f} s ({t['features']:,}), last page "
            f"{t['last_ms'] / t['first_ms']:.1f}× the first",
            f"{t['seconds'] / o['seconds']:.1f}× faster",
            "< 8 s, last ≤ 1.5× first",
        )


def tiles_section(args, rows: Rows, ours: Server, tipg: Server, rng: random.Random) -> None:
    # Every z14 tile over the city (about 9 × 8), in a random order: each is asked once cold.
    x0, y1 = tile_xy(LON0, LAT0, 14)
    x1, y0 = tile_xy(LON1, LAT1, 14)
    tiles = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    rng.shuffle(tiles)
    o_urls = [f"/tiles/facilities/14/{x}/{y}.pbf" for x, y in tiles]
    t_urls = [f"/collections/public.facilities/tiles/WebMercatorQuad/14/{x}/{y}" for x, y in tiles]
    clear_tile_cache()
    miss = sequential_p50(ours.base, o_urls)
    anchor1 = sequential_p50(tipg.base, t_urls)
    hit = sequential_p50(ours.base, o_urls)
    anchor2 = sequential_p50(tipg.base, t_urls)
    rows.add(
        "z14 facilities tile p50, cache miss / hit",
        f"{miss:.1f} / {hit:.1f} ms",
        f"tipg {anchor1:.1f} / {anchor2:.1f} ms (no cache)",
        f"{anchor1 / miss:.1f}× / {anchor2 / hit:.1f}× faster",
        "< 25 ms / < 3 ms",
    )
    res: dict[str, list[dict]] = {"ours": [], "tipg": []}
    for _ in range(args.rounds):
        for server, urls in ((ours, o_urls), (tipg, t_urls)):
            r = wrk(server.base, urls, args.seconds)
            res[server.name].append(r)
            print(f"tiles {server.name:5} {r}", flush=True)
    ro, rt = med(r["rps"] for r in res["ours"]), med(r["rps"] for r in res["tipg"])
    rows.add(
        f"z14 facilities tiles, req/s ({len(tiles)} tiles, warm)",
        f"{ro:.0f}",
        f"tipg {rt:.0f}",
        f"{ro / rt:.1f}×",
        "(informative)",
    )


def workers(args, rows: Rows, env, socket_dir: str, postmaster: int, tipg_uvicorn: Path) -> None:
    urls = make_cases(random.Random(20261122))["bbox"]
    res: dict[tuple[str, int], list[dict]] = {}
    for rnd in range(args.rounds):
        for n in (1, 2):
            for who in ("ours", "tipg"):
                server = (
                    start_ours(n, env)
                    if who == "ours"
                    else start_tipg(tipg_uvicorn, socket_dir, n, env)
                )
                try:
                    u = urls[0] if who == "ours" else urls[1]
                    wrk(server.base, u, 2, connections=8)
                    r = with_cpu(
                        {"server": server.proc.pid, "db": postmaster},
                        lambda u=u, s=server: wrk(s.base, u, args.seconds, connections=8),
                    )
                finally:
                    stop(server)
                res.setdefault((who, n), []).append(r)
                print(f"round {rnd + 1} workers={n} {who:5} {r}", flush=True)

    def fmt(who: str, n: int) -> str:
        runs = res[(who, n)]
        rps = med(r["rps"] for r in runs)
        server, db = med(r["cpu_server"] for r in runs), med(r["cpu_db"] for r in runs)
        return f"{rps:.0f} req/s (server {server:.2f} cores, db {db:.2f})"

    for who in ("ours", "tipg"):
        one = med(r["rps"] for r in res[(who, 1)])
        two = med(r["rps"] for r in res[(who, 2)])
        rows.add(
            f"bbox, 2 workers vs 1 (wrk -c8), {who}",
            f"2 workers: {fmt(who, 2)}",
            f"1 worker: {fmt(who, 1)}",
            f"{two / one:.2f}×",
            "reported",
        )


if __name__ == "__main__":
    main()
