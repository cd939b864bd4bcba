"""End to end, as a user runs it: `gis-service serve` on the embedded cluster, twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg2
import pytest

from gis_service.db.cluster import Cluster

COUNTS = """
    SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM people),
           (SELECT count(*) FROM facilities), (SELECT count(*) FROM hazards),
           (SELECT count(*) FROM hazard_events)
"""
# What a start that reloaded the demo or re-ran the migrations would change: the demo's
# record of its load, the schema's revision row and tables (a table made anew gets a new
# oid), and the rows themselves (a row written again gets a new id or xmin).
WRITTEN = """
    SELECT (SELECT value || jsonb_build_object('updated_at', updated_at, 'xmin', xmin::text)
              FROM service_meta WHERE key = 'demo'),
           (SELECT version_num || '@' || xmin::text FROM alembic_version),
           (SELECT string_agg(c.relname || '=' || c.oid, ',' ORDER BY c.relname)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')),
           (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM grids),
           (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM people),
           (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM facilities),
           (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM hazards)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GIS_DATA_DIR=str(data_dir), GIS_PORT=str(port), GIS_LOG_LEVEL="warning")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gis_service", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = t0 + 300  # a guard against a hung start, not a speed check
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("serve did not answer /health in time")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.slow
def test_serve_twice_keeps_data_and_loads_the_demo_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = _free_port()
    cluster = Cluster(data_dir / "pg", db_name="gis")
    try:
        proc = _serve(data_dir, port)
        try:
            conn = psycopg2.connect(cluster.dsn())
            with conn.cursor() as cur:
                cur.execute(COUNTS)
                before = cur.fetchone()
                cur.execute(WRITTEN)
                written = cur.fetchone()
                cur.execute(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                    " FROM grids WHERE level = 'micro_grid' ORDER BY code LIMIT 1) s"
                )
                lon, lat = cur.fetchone()
            conn.close()
            assert all(n > 0 for n in before), before
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/locate", params={"lon": lon, "lat": lat})
            assert r.status_code == 200, r.text
            chain = r.json()["chain"]
            assert [g["level"] for g in chain] == ["street", "community", "grid", "micro_grid"]
            leaders = [p for p in chain[2]["people"] if p["role"] == "grid_leader"]
            assert leaders and leaders[0]["name"]
        finally:
            _stop(proc)

        proc = _serve(data_dir, port)
        try:
            conn = psycopg2.connect(cluster.dsn())
            with conn.cursor() as cur:
                cur.execute(COUNTS)
                assert cur.fetchone() == before
                # The second start reuses the cluster, finds the schema at its head and the
                # demo loaded with the same seed: it writes none of them again.
                cur.execute(WRITTEN)
                again = cur.fetchone()
            conn.close()
        finally:
            _stop(proc)
        meta, revision, tables, *rows = written
        assert all(rows), written
        assert meta["seed"] and meta["counts"] and revision and tables, written
        assert again == written
    finally:
        cluster.destroy()
