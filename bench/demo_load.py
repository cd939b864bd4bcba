"""The demo district's load: a first load into a migrated database (generate, delete, insert)
and the start after it, which finds the demo loaded and skips it. Speed targets of the demo
live here, not in the tests (tests/test_demo.py checks what a load does, not how long).

    .venv/bin/python bench/demo_load.py [--reps 3]

Each repetition loads into a new database cloned from one migrated template, in a cluster
of its own in a temporary folder. Prints each run and the medians (targets: first load
under 60 s, skipped load under 2 s, on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis_service.catalog import load_catalog  # noqa: E402
from gis_service.config import Settings  # noqa: E402
from gis_service.db import migrate  # noqa: E402
from gis_service.db.cluster import Cluster  # noqa: E402
from gis_service.db.engine import make_engine  # noqa: E402
from gis_service.demo.loader import load_demo  # noqa: E402

BOUNDARY = ROOT / "data" / "erqi_410103_wgs84.geojson"
SEED = Settings.model_fields["demo_seed"].default


def sql_admin(cluster: Cluster, statement: str) -> None:
    """One statement outside a transaction (CREATE DATABASE cannot run in one)."""
    conn = psycopg2.connect(cluster.dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def main() -> None:
    """Run the repetitions and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "layers")
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as tmp:
        cluster = Cluster(Path(tmp) / "pg", db_name="bench")
        cluster.start()
        try:
            template = make_engine(cluster.ensure_database("tpl"), pool_size=1)
            migrate.upgrade(template)
            template.dispose()
            first, again, steps = [], [], []
            for rep in range(args.reps):
                sql_admin(cluster, f'CREATE DATABASE "rep{rep}" TEMPLATE "tpl"')
                engine = make_engine(cluster.url(f"rep{rep}"), pool_size=1)
                t = time.perf_counter()
                report = load_demo(engine, catalog, BOUNDARY, seed=SEED)
                first.append(time.perf_counter() - t)
                t = time.perf_counter()
                skipped = load_demo(engine, catalog, BOUNDARY, seed=SEED)
                again.append(time.perf_counter() - t)
                engine.dispose()
                assert report["status"] == "loaded" and skipped["status"] == "skipped"
                steps.append(report["timings"])
                print(
                    f"rep {rep}: first load {first[-1]:.2f} s {report['timings']}, "
                    f"skipped {again[-1]:.3f} s"
                )
            print(f"median first load {statistics.median(first):.2f} s (target < 60 s)")
            for step in steps[0]:
                print(f"  median {step}: {statistics.median(s[step] for s in steps):.2f} s")
            print(f"median skipped load {statistics.median(again):.3f} s (target < 2 s)")
        finally:
            cluster.destroy()


if __name__ == "__main__":
    main()
