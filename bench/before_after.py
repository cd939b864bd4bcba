"""Before/after, side by side in one run: this tree against an older commit of the service.

    .venv/bin/python bench/before_after.py [--data-dir var-bench] [--base main]
                                           [--rounds 7] [--only batch,points,tiles]

Both versions serve the same city dataset (`bench/api_vs_tipg.py` builds it once under
--data-dir): this tree's database ``gis`` is migrated to this tree's head; a copy of it,
``gis_before``, is made once and migrated down to the head of --base, so the "before" side
runs with the older schema, functions and indexes too. The code of --base is taken with
``git archive`` into a temporary folder. One uvicorn worker each; requests alternate
before/after, and the medians and their ratio are printed:

- batch: POST /api/v1/locate with 10,000 random points over the city (plus 2% outside
  it), WGS84; every round checks that both sides gave the same answer;
- locate: GET /api/v1/locate one point at a time (300 random points over the city, the
  same for both sides, alternating), p50 per round (the SP-GiST part indexes serve it too);
- points: GET /api/v1/assessment/points for 30 days at city scale as an admin (a bench
  user ``bench-admin`` is created on each side); the before side may hit its 60 s
  statement timeout, which is printed as such;
- tiles: z14 facility tiles, each asked once with the tile cache emptied first (misses);
- paging: every micro-grid over OGC API - Features, limit 1000, following the next links
  (as QGIS reads a layer): total seconds per full read, alternating sides; every round
  checks that both sides returned the same number of features.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api_vs_tipg import (  # noqa: E402
    LAT0,
    LAT1,
    LON0,
    LON1,
    free_port,
    prepare_database,
    read_all_pages,
    tile_xy,
    wait_http,
)

SECTIONS = ("batch", "locate", "points", "tiles", "paging")
BEFORE_DB = "gis_before"
PASSWORD = "bench-admin-password-1"
med = statistics.median
SERVE = (sys.executable, "-m", "gis_service", "serve", "--no-demo", "--workers", "1")
CREATE_ADMIN = (sys.executable, "-m", "gis_service", "users", "create", "bench-admin")
CREATE_ADMIN += ("--role", "admin")


def export_tree(ref: str, into: Path) -> Path:
    """The service's code at ``ref`` (gis_service, migrations, layers, alembic.ini)."""
    out = into / "before"
    out.mkdir()
    archive = into / "before.tar"
    with archive.open("wb") as fh:
        subprocess.run(
            ["git", "archive", ref, "gis_service", "migrations", "layers", "alembic.ini", "web"],
            cwd=ROOT,
            stdout=fh,
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def head_of(tree: Path) -> str:
    """The head revision of the migrations in ``tree``."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from alembic.script import ScriptDirectory;from alembic.config import Config;"
            "c=Config('alembic.ini');c.set_main_option('script_location','migrations');"
            "print(ScriptDirectory.from_config(c).get_current_head())",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def make_before_db(cluster_url: str, base_head: str, fresh: bool) -> str:
    """``gis_before``: a copy of ``gis`` migrated down to ``base_head`` (made once)."""
    from sqlalchemy import create_engine, text

    from gis_service.db import migrate

    admin = create_engine(cluster_url.replace("/gis?", "/postgres?"), isolation_level="AUTOCOMMIT")
    before_url = cluster_url.replace("/gis?", f"/{BEFORE_DB}?")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BEFORE_DB}
        ).scalar()
        if exists and fresh:
            conn.execute(text(f"DROP DATABASE {BEFORE_DB} WITH (FORCE)"))
            exists = None
        if not exists:
            print(f"copying gis to {BEFORE_DB} ...", flush=True)
            conn.execute(text(f"CREATE DATABASE {BEFORE_DB} TEMPLATE gis"))
    admin.dispose()
    engine = create_engine(before_url)
    if migrate.current(engine) != base_head:
        print(f"migrating {BEFORE_DB} down to {base_head} ...", flush=True)
        migrate.downgrade(engine, base_head)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE grid_parts"))
    engine.dispose()
    return before_url


def start(tree: Path, url: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    """One worker of the service in ``tree`` on database ``url``."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GIS_DATA_DIR": str(data_dir),
        "GIS_LOAD_DEMO": "false",
        "GIS_LOG_LEVEL": "warning",
        "PYTHONPATH": str(tree),
    }
    proc = subprocess.Popen(
        [*SERVE, "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    return proc, base


def admin_client(tree: Path, url: str, base: str) -> httpx.Client:
    """A client logged in as the bench admin (created with the tree's own CLI if missing)."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(tree)}
    subprocess.run(
        [*CREATE_ADMIN, "--password-stdin"],
        cwd=tree,
        env=env,
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    client = httpx.Client(base_url=base, timeout=120)
    r = client.post("/api/v1/auth/tokens", json={"username": "bench-admin", "password": PASSWORD})
    r.raise_for_status()
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return client


def timed(fn) -> tuple[float, httpx.Response | None]:
    """(ms, response) of one call; a timeout or 5xx is kept as the response."""
    t0 = time.perf_counter()
    try:
        r = fn()
    except httpx.TimeoutException:
        r = None
    return (time.perf_counter() - t0) * 1000, r


def report(name: str, before: list[float], after: list[float], note: str = "") -> None:
    b, a = med(before), med(after)
    digits = 1 if a < 20 else 0
    print(
        f"== {name}: before {b:.{digits}f} ms | after {a:.{digits}f} ms | {b / a:.2f}× faster"
        f" (medians of {len(after)}; before {[round(x, digits) for x in before]},"
        f" after {[round(x, digits) for x in after]}){note}",
        flush=True,
    )


def batch_section(args, before: str, after: str) -> None:
    rng = random.Random(13)
    pts = [[rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)] for _ in range(9_800)]
    pts += [[rng.uniform(100, 110), rng.uniform(20, 30)] for _ in range(200)]
    rng.shuffle(pts)
    tb, ta = [], []
    with httpx.Client(timeout=120) as client:
        for _ in range(args.rounds):
            for base, times in ((before, tb), (after, ta)):
                ms, r = timed(
                    lambda b=base: client.post(b + "/api/v1/locate", json={"points": pts})
                )
                r.raise_for_status()
                times.append(ms)
                if base == before:
                    expected = r.json()
                elif r.json() != expected:
                    raise SystemExit("batch locate: before and after answered differently")
    located = sum(1 for x in expected["results"] if x)
    report(f"batch locate, {len(pts):,} points ({located:,} located)", tb, ta)


def locate_section(args, before: str, after: str) -> None:
    rng = random.Random(17)
    pts = [(rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)) for _ in range(300)]
    per: dict[str, list[float]] = {before: [], after: []}
    with httpx.Client(timeout=60) as client:
        for _ in range(args.rounds):
            for base in (before, after):
                times = []
                url = base + "/api/v1/locate"
                for lon, lat in pts:
                    q = {"lon": lon, "lat": lat}
                    ms, r = timed(lambda u=url, q=q: client.get(u, params=q))
                    r.raise_for_status()
                    times.append(ms)
                per[base].append(med(times))
    report("single locate p50 (300 points per round)", per[before], per[after])


def points_section(args, before_c: httpx.Client, after_c: httpx.Client) -> None:
    # 30 days at the end of the city's hazards (generated up to the day it was built).
    params = {"from": args.since, "to": args.until}
    tb, ta, statuses = [], [], set()
    for i in range(args.rounds):
        for client, times in ((before_c, tb), (after_c, ta)):
            if client is before_c and i >= args.before_rounds:
                continue
            ms, r = timed(lambda c=client: c.get("/api/v1/assessment/points", params=params))
            status = r.status_code if r is not None else "client timeout"
            statuses.add((client is before_c, status))
            times.append(ms)
            if r is not None and r.status_code == 200 and client is after_c:
                rows = len(r.json()["ranking"])
    codes = sorted(f"{'before' if b else 'after'} {s}" for b, s in statuses)
    # A side stopped by the statement timeout only gives a lower bound of its time.
    note = f"; status {codes}" + ("; a 503/504 before is the 60 s timeout" if tb else "")
    report(f"assessment points, {args.since} → {args.until}, {rows:,} people", tb, ta, note)


def tiles_section(args, before: str, after: str, urls: dict[str, str]) -> None:
    from sqlalchemy import create_engine, text

    x0, y1 = tile_xy(LON0, LAT0, 14)
    x1, y0 = tile_xy(LON1, LAT1, 14)
    tiles = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    random.Random(5).shuffle(tiles)
    per = {before: [], after: []}
    with httpx.Client(timeout=60) as client:
        for _ in range(max(1, args.rounds // 3)):
            for base in (before, after):
                engine = create_engine(urls[base])
                with engine.begin() as conn:
                    conn.execute(text("TRUNCATE tile_cache"))
                engine.dispose()
                for x, y in tiles:
                    url = f"{base}/tiles/facilities/14/{x}/{y}.pbf"
                    ms, r = timed(lambda u=url: client.get(u))
                    r.raise_for_status()
                    per[base].append(ms)
    name = f"z14 facilities tile, cache miss (p50 over {len(tiles)} tiles)"
    report(name, per[before], per[after])


def paging_section(args, before: str, after: str) -> None:
    first = "/ogc/collections/grids_micro_grid/items?limit=1000"
    per: dict[str, list[float]] = {before: [], after: []}
    pages: dict[str, list[float]] = {before: [], after: []}
    for _ in range(max(1, args.rounds // 2)):
        counts = set()
        for base in (before, after):
            r = read_all_pages(base, first)
            per[base].append(r["seconds"] * 1000)
            pages[base].append(r["last_ms"] / r["first_ms"])
            counts.add(r["features"])
        if len(counts) != 1:
            raise SystemExit(f"paging: before and after read different counts {counts}")
    note = f"; last page / first: before {med(pages[before]):.1f}×, after {med(pages[after]):.1f}×"
    report(
        f"read all {counts.pop():,} micro-grids over OGC (limit 1000)",
        per[before],
        per[after],
        note,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var-bench")
    parser.add_argument("--base", default="main", help="git ref of the 'before' side")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before-rounds", type=int, default=3, help="points: slow side")
    parser.add_argument("--since", default="2026-10-31")
    parser.add_argument("--until", default="2026-11-30")
    parser.add_argument("--fresh", action="store_true", help="copy gis_before again")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"load average before: {os.getloadavg()}", flush=True)
    data_dir = args.data_dir.resolve()
    prepare_database(data_dir)
    from gis_service.config import Settings
    from gis_service.db.engine import cluster_for

    url = cluster_for(Settings()).url()
    with tempfile.TemporaryDirectory() as tmp:
        tree = export_tree(args.base, Path(tmp))
        before_url = make_before_db(url, head_of(tree), args.fresh)
        procs = []
        try:
            p1, before = start(tree, before_url, data_dir)
            procs.append(p1)
            p2, after = start(ROOT, url, data_dir)
            procs.append(p2)
            if "batch" in only:
                batch_section(args, before, after)
            if "locate" in only:
                locate_section(args, before, after)
            if "points" in only:
                points_section(
                    args, admin_client(tree, before_url, before), admin_client(ROOT, url, after)
                )
            if "tiles" in only:
                tiles_section(args, before, after, {before: before_url, after: url})
            if "paging" in only:
                paging_section(args, before, after)
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
