"""Import 100,000 micro-grid squares: ``ogr2ogr -f PostgreSQL`` (a plain load into a scratch
table, no validation) against ``gis-service import grids`` (validation, staging, versions,
paths and grid_parts), side by side, on the same GeoPackage and the same fresh database.

    .venv/bin/python bench/import_vs_ogr2ogr.py [--n 100000] [--reps 3] [--cli]

Each repetition gets a new database cloned from one template (schema migrated, the street,
communities and grids that parent the micro-grids already loaded), so both tools start from
the same state. Prints each run and the medians. Needs gdal-bin (ogr2ogr) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg2
import shapely
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis_service.db import migrate  # noqa: E402
from gis_service.db.cluster import Cluster  # noqa: E402
from gis_service.db.engine import make_engine  # noqa: E402
from gis_service.interchange.load import ImportOptions, run_import  # noqa: E402

LON0, LAT0, STEP = 113.70, 34.62, 0.0005  # ~45 m × 55 m squares east of 二七区


def lattice(n: int) -> tuple[int, int]:
    """Columns and rows of a near-square lattice of at least n cells, in blocks of 10 × 10."""
    cols = int(np.ceil(np.sqrt(n) / 10) * 10)
    rows = int(np.ceil(n / cols / 10) * 10)
    return cols, rows


def make_files(folder: Path, n: int) -> tuple[Path, Path]:
    """parents.gpkg (1 street, 10 communities, 100 grids) and micro.gpkg (n squares)."""
    cols, rows = lattice(n)
    i = np.arange(n)
    ix, iy = i % cols, i // cols
    squares = shapely.box(
        LON0 + ix * STEP, LAT0 + iy * STEP, LON0 + (ix + 1) * STEP, LAT0 + (iy + 1) * STEP
    )
    gx, gy = ix * 10 // cols, iy * 10 // rows  # 10 × 10 grids
    grid_codes = np.char.add("G", np.char.zfill((gy * 10 + gx).astype(str), 3))
    micro = gpd.GeoDataFrame(
        {
            "code": np.char.add("M", np.char.zfill(i.astype(str), 6)),
            "name": np.char.add("微网格", i.astype(str)),
            "level": "micro_grid",
            "parent": grid_codes,
        },
        geometry=squares,
        crs="EPSG:4490",
    )
    w, h = cols * STEP / 10, rows * STEP / 10
    recs = [
        ("S001", "压测街道", "street", None, shapely.box(LON0, LAT0, LON0 + 10 * w, LAT0 + 10 * h))
    ]
    for c in range(10):  # communities: 5 × 2 blocks of 2 × 5 grids
        cx, cy = c % 5, c // 5
        recs.append(
            (
                f"C{c:02d}",
                f"压测社区{c}",
                "community",
                "S001",
                shapely.box(
                    LON0 + cx * 2 * w,
                    LAT0 + cy * 5 * h,
                    LON0 + (cx + 1) * 2 * w,
                    LAT0 + (cy + 1) * 5 * h,
                ),
            )
        )
    for g in range(100):
        gx_, gy_ = g % 10, g // 10
        comm = (gy_ // 5) * 5 + gx_ // 2
        recs.append(
            (
                f"G{g:03d}",
                f"压测网格{g}",
                "grid",
                f"C{comm:02d}",
                shapely.box(
                    LON0 + gx_ * w, LAT0 + gy_ * h, LON0 + (gx_ + 1) * w, LAT0 + (gy_ + 1) * h
                ),
            )
        )
    parents = gpd.GeoDataFrame(
        {
            "code": [r[0] for r in recs],
            "name": [r[1] for r in recs],
            "level": [r[2] for r in recs],
            "parent": [r[3] for r in recs],
            "leader_name": [f"负责人{k}" for k in range(len(recs))],
        },
        geometry=[r[4] for r in recs],
        crs="EPSG:4490",
    )
    parents_path, micro_path = folder / "parents.gpkg", folder / "micro_grids.gpkg"
    parents.to_file(parents_path, layer="parents", driver="GPKG")
    micro.to_file(micro_path, layer="micro_grids", driver="GPKG")
    return parents_path, micro_path


def sql_admin(cluster: Cluster, *statements: str, db: str = "postgres") -> None:
    """Run statements outside a transaction (CREATE DATABASE cannot run in one)."""
    conn = psycopg2.connect(cluster.dsn(db))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def fresh_db(cluster: Cluster, name: str, template: str) -> str:
    sql_admin(
        cluster,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
    )
    sql_admin(cluster, "CHECKPOINT", db=name)  # both tools start with no dirty pages
    return cluster.url(name)


def time_ogr2ogr(cluster: Cluster, db: str, path: Path) -> float:
    dsn = cluster.dsn(db)
    t0 = time.perf_counter()
    subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            f"PG:{dsn}",
            str(path),
            "-nln",
            "scratch_micro_grids",
            "-lco",
            "GEOMETRY_NAME=geom",
        ],
        check=True,
    )
    return time.perf_counter() - t0


def time_import(url: str, path: Path) -> tuple[float, dict]:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as c:
        c.execute(text("SELECT 1"))  # connect outside the timing, as ogr2ogr's is tiny too
    t0 = time.perf_counter()
    report = run_import(engine, path, ImportOptions(layer="grids"))
    seconds = time.perf_counter() - t0
    if report.status != "imported":
        raise SystemExit(report.text())
    with engine.connect() as c:
        got = c.execute(
            text(
                "SELECT (SELECT count(*) FROM grids WHERE level = 'micro_grid'),"
                " (SELECT count(*) FROM grid_parts WHERE rank = 4),"
                " (SELECT code FROM grids WHERE id = gis_finest_grid("
                "  ST_SetSRID(ST_MakePoint(:x, :y), 4326)))"
            ),
            {"x": LON0 + STEP * 0.5, "y": LAT0 + STEP * 0.5},
        ).one()
    engine.dispose()
    assert got[0] == got[1] and got[2] == "M000000", got
    return seconds, report.timings


def time_cli(url: str, path: Path) -> float:
    env = {**os.environ, "DATABASE_URL": url}
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "gis-service"),
            "import",
            "grids",
            str(path),
            "--no-progress",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="micro-grid squares")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each tool")
    ap.add_argument("--cli", action="store_true", help="also time the CLI end to end")
    args = ap.parse_args()
    if not shutil.which("ogr2ogr"):
        raise SystemExit("needs ogr2ogr: apt-get install gdal-bin")
    work = Path(tempfile.mkdtemp(prefix="gis-bench-"))
    cluster = Cluster(work / "pg", db_name="bench_tpl")
    try:
        cluster.start()
        t = time.perf_counter()
        parents, micro = make_files(work, args.n)
        print(
            f"generated {args.n:,} squares in {micro.name} ({micro.stat().st_size / 1e6:.1f} MB)"
            f" in {time.perf_counter() - t:.1f}s"
        )
        tpl_url = cluster.ensure_database("bench_tpl")
        eng = make_engine(tpl_url, pool_size=1)
        migrate.upgrade(eng)
        rep = run_import(eng, parents, ImportOptions(layer="grids"))
        assert rep.status == "imported", rep.text()
        eng.dispose()
        sql_admin(  # a template must have no open connections
            cluster,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'bench_tpl'",
        )
        ogr, ours, cli = [], [], []
        for r in range(args.reps):
            fresh_db(cluster, f"ogr_{r}", "bench_tpl")
            ogr.append(time_ogr2ogr(cluster, f"ogr_{r}", micro))
            url = fresh_db(cluster, f"imp_{r}", "bench_tpl")
            secs, timings = time_import(url, micro)
            ours.append(secs)
            steps = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
            print(f"run {r + 1}: ogr2ogr {ogr[-1]:.2f}s   gis-service import {secs:.2f}s ({steps})")
            if args.cli:
                url = fresh_db(cluster, f"cli_{r}", "bench_tpl")
                cli.append(time_cli(url, micro))
                print(
                    f"        gis-service import grids (CLI, process start included) {cli[-1]:.2f}s"
                )
        m_ogr, m_ours = statistics.median(ogr), statistics.median(ours)
        print(
            f"median of {args.reps}: ogr2ogr {m_ogr:.2f}s, gis-service import {m_ours:.2f}s "
            f"→ ratio {m_ours / m_ogr:.2f}× (target ≤ 1.5×)"
        )
        if cli:
            print(
                f"median CLI end to end: {statistics.median(cli):.2f}s "
                f"({statistics.median(cli) / m_ogr:.2f}× ogr2ogr)"
            )
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
