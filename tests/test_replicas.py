"""Read replicas: a streaming replica made by `pg replica add` serves the hot reads; a client
reads its own writes while the replica lags; a lagging or dead replica is skipped without a
failed request; and the promotion runbook of docs/scale-out.md works once the primary is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.catalog import load_catalog, sync_catalog
from gis_service.config import Settings
from gis_service.db import migrate
from gis_service.db.cluster import Cluster
from gis_service.db.engine import make_engine
from gis_service.db.reads import Reads
from gis_service.db.replica import add_replica, promote, remove_replica, replica_url
from tests.support.aio import run_async

POINT = {"lon": 113.605, "lat": 34.705}
BBOX = {"bbox": "113.60,34.70,113.61,34.71", "status": "open"}
REPORT = {
    "category": "camera_fault",
    "lon": 113.605,
    "lat": 34.705,
    "description": "摄像头不亮了",
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Cluster, Path]]:
    """A primary with one street, and a streaming replica of it."""
    data = tmp_path_factory.mktemp("replicas")
    primary = Cluster(data / "pg", db_name="gis")
    primary.start()
    url = primary.ensure_database()
    engine = make_engine(url, pool_size=1)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        sync_catalog(conn, load_catalog(Settings().layers_dir))
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, geom) VALUES ('R1', '副本街道', 'street',"
                " ST_Multi(ST_MakeEnvelope(113.60, 34.70, 113.61, 34.71, 4326)))"
            )
        )
    engine.dispose()
    replica = add_replica(primary, data, "r1")
    try:
        yield primary, replica, data
    finally:
        with contextlib.suppress(Exception):
            remove_replica(primary, data, "r1")
        primary.destroy()


def _on(cluster: Cluster, sql: str):
    conn = psycopg2.connect(cluster.dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def _client(pair, tmp_path: Path, **settings) -> TestClient:
    primary, replica, _ = pair
    s = Settings(
        database_url=primary.url(),
        replica_urls=[replica_url(replica)],
        data_dir=tmp_path,
        load_demo=False,
        **settings,
    )
    return TestClient(create_app(s))


def _caught_up(primary: Cluster, replica: Cluster, timeout: float = 30) -> None:
    want = _on(primary, "SELECT pg_current_wal_lsn()")[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = _on(replica, f"SELECT pg_last_wal_replay_lsn() >= '{want}'::pg_lsn")[0][0]
        if done:
            return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


def test_the_replica_streams_and_serves_reads(pair, tmp_path: Path) -> None:
    primary, replica, _ = pair
    _caught_up(primary, replica)
    assert _on(replica, "SELECT pg_is_in_recovery()")[0][0] is True
    with _client(pair, tmp_path) as client:
        for _ in range(5):
            r = client.get("/api/v1/locate", params=POINT)
            assert r.status_code == 200 and r.json()["chain"][0]["code"] == "R1"
        readers = _on(
            replica,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gis-service reads'",
        )[0][0]
    assert readers >= 1


def test_a_client_reads_its_own_write_while_the_replica_lags(pair, tmp_path: Path) -> None:
    primary, replica, _ = pair
    _caught_up(primary, replica)
    _on(replica, "SELECT pg_wal_replay_pause()")
    try:
        # The lag bound is generous here: the paused replica still counts as healthy.
        with _client(pair, tmp_path, replica_max_lag_seconds=300) as writer:
            made = writer.post("/api/v1/hazards", json=REPORT)
            assert made.status_code == 201, made.text
            assert "gis_lsn" in writer.cookies
            mine = writer.get("/api/v1/hazards", params=BBOX).json()
            assert made.json()["id"] in [f["id"] for f in mine["features"]]
            # Someone else, without the cookie, is served by the replica, which has not
            # replayed the report yet: the cookie is what routed the writer to the primary.
            writer.cookies.clear()
            theirs = writer.get("/api/v1/hazards", params=BBOX).json()
            assert made.json()["id"] not in [f["id"] for f in theirs["features"]]
    finally:
        _on(replica, "SELECT pg_wal_replay_resume()")
    _caught_up(primary, replica)


def test_a_replica_lagging_beyond_the_bound_is_skipped(pair) -> None:
    primary, replica, _ = pair
    _caught_up(primary, replica)

    async def run() -> tuple[bool, bool, bool]:
        reads = Reads(primary.url(), [replica_url(replica)], max_lag_s=0.5, check_every_s=0.2)
        await reads.start()
        try:
            node = reads.replicas[0]
            healthy_before = node.healthy
            _on(replica, "SELECT pg_wal_replay_pause()")
            _on(
                primary,
                "CREATE TABLE IF NOT EXISTS lag_probe (x int); INSERT INTO lag_probe VALUES (1)",
            )
            await asyncio.sleep(1.5)
            skipped = not node.healthy
            routed = reads._route(0) == [reads.primary]
            return healthy_before, skipped, routed
        finally:
            _on(replica, "SELECT pg_wal_replay_resume()")
            await reads.close()

    assert run_async(run()) == (True, True, True)
    _caught_up(primary, replica)


def test_a_replica_going_down_mid_load_fails_no_request(pair, tmp_path: Path) -> None:
    primary, replica, _ = pair
    _caught_up(primary, replica)
    statuses: list[int] = []
    lock = threading.Lock()
    stopped = threading.Event()
    after_stop = 40  # requests each thread sends once the replica is down
    try:
        with _client(pair, tmp_path) as client:

            def hammer() -> None:
                # Until the replica is down and then some: a fixed count could all be
                # answered before the stop on a fast run, and prove nothing.
                left = after_stop
                while left:
                    r = client.get("/api/v1/locate", params=POINT)
                    with lock:
                        statuses.append(r.status_code)
                    if stopped.is_set():
                        left -= 1

            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(hammer) for _ in range(4)]
                time.sleep(0.5)
                replica.stop("immediate")  # mid-load, with reads in flight on it
                stopped.set()
                for f in futures:
                    f.result()
            assert client.app.state.reads.replicas[0].healthy is False
        assert len(statuses) >= 4 * after_stop and set(statuses) == {200}
    finally:  # the next test needs the replica back, whatever happened here
        replica.start()
    _caught_up(primary, replica)


def test_promotion_runbook(pair, tmp_path: Path) -> None:
    """docs/scale-out.md, "Promoting a replica": stop the primary, promote, repoint."""
    primary, replica, _ = pair
    with primary_engine(primary) as conn:
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, geom) VALUES ('R2', '晋升前',"
                " 'street', ST_Multi(ST_MakeEnvelope(113.62, 34.70, 113.63, 34.71, 4326)))"
            )
        )
    _caught_up(primary, replica)
    primary.stop()  # the primary is gone
    promote(replica)
    assert _on(replica, "SELECT pg_is_in_recovery()")[0][0] is False
    settings = Settings(
        database_url=replica_url(replica), data_dir=tmp_path / "after", load_demo=False
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/locate", params=POINT).status_code == 200
        made = client.post("/api/v1/hazards", json={**REPORT, "description": "晋升后的上报"})
        assert made.status_code == 201, made.text
    codes = {r[0] for r in _on(replica, "SELECT code FROM grids")}
    assert {"R1", "R2"} <= codes
    primary.start()  # for the fixture's clean-up (the old primary is now a stray copy)


@contextlib.contextmanager
def primary_engine(primary: Cluster):
    engine = make_engine(primary.url(), pool_size=1)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
