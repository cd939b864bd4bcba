"""After PostgreSQL restarts while the service is idle, no request fails (issue 11, finding 8).

A restart ends every server process, so each pooled connection is dead. The first request on
each used to fail: 500 on routes that run server-side prepared statements (the raw cursor's
error bypassed SQLAlchemy), 503 on the others. Terminating this database's backends does to
the pool exactly what a restart does, without stopping the cluster other tests share.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.db.engine import make_engine
from gis_service.db.reads import DatabaseUnavailable, Reads
from tests.support.aio import run_async
from tests.support.authkit import Scopes, app_settings, find_scopes
from tests.support.databases import DEMO, Databases


@pytest.fixture(scope="module")
def served(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Engine, Scopes]]:
    url = databases.new("reconnect", DEMO)
    admin = make_engine(url, pool_size=1)
    settings = app_settings(url, tmp_path_factory.mktemp("reconnect-data"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, admin, find_scopes(admin)
    admin.dispose()


def _requests(scopes: Scopes) -> list[str]:
    """A route with prepared statements (locate, lists) and plain ones (one grid, stats)."""
    return [
        "/api/v1/locate?lon=113.6468&lat=34.7275",
        "/api/v1/grids?limit=5",
        f"/api/v1/grids/{scopes.grid}",
        "/api/v1/hazards?limit=5",
    ]


def _kill_backends(admin: Engine) -> int:
    """End every other server process of this database, as a restart would (waits ≤ 5 s)."""
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))"
                " FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        conn.rollback()
    admin.dispose()  # the admin's own connection is left alone, but start it afresh too
    return killed


def test_no_request_fails_after_the_database_restarts(served) -> None:
    client, admin, scopes = served
    urls = _requests(scopes)
    # Fill the pool: several connections in use at once, each preparing its statements.
    with ThreadPoolExecutor(6) as pool:
        warm = list(pool.map(lambda u: client.get(u).status_code, urls * 6))
    assert set(warm) == {200}, warm
    assert _kill_backends(admin) >= 2
    statuses = [(u, client.get(u).status_code) for _ in range(8) for u in urls]
    assert [s for s in statuses if s[1] != 200] == []
    # ... and again while requests overlap.
    assert _kill_backends(admin) >= 1
    with ThreadPoolExecutor(6) as pool:
        after = list(pool.map(lambda u: (u, client.get(u).status_code), urls * 6))
    assert [s for s in after if s[1] != 200] == []


def test_reads_on_an_unreachable_database_answer_503(served, tmp_path) -> None:
    """While PostgreSQL restarts its socket is gone, then it answers 57P03 'starting up': the
    async reads said 500 (an OSError and asyncpg's own errors fell through the error table).
    They are DatabaseUnavailable now: 503 database_unavailable, which a client may retry."""
    client, _, scopes = served
    gone = f"postgresql://postgres@/gis?host={tmp_path}&port=5432"  # no socket there
    with pytest.raises(DatabaseUnavailable):
        run_async(Reads(gone).fetchval(text("SELECT 1"), {}))
    kept = client.app.state.reads
    client.app.state.reads = Reads(gone)
    try:
        for url in _requests(scopes):
            r = client.get(url)
            if url.startswith(f"/api/v1/grids/{scopes.grid}"):
                continue  # a plain (sync) read: not on the read pools
            assert r.status_code == 503, (url, r.status_code, r.text)
            assert r.json()["code"] == "database_unavailable"
    finally:
        client.app.state.reads = kept
