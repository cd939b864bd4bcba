"""Point-in-time recovery and readiness, on an embedded cluster of their own (both stop it).

PITR: base backup, changes, note the time (office local time), a destructive change, recover
to the noted time: the first changes are there, the destructive one is not. /ready: 200 when
the database answers at the current schema, 503 while it is stopped, 200 again after.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import cluster_for
from gis_service.ops import pitr
from gis_service.ops.pgtools import OpsError
from gis_service.runtime import prepare


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A migrated embedded cluster with WAL archiving on and one base backup."""
    # The server's user must reach the WAL archive: /var/tmp, not pytest's private folder.
    wal = Path(tempfile.mkdtemp(prefix="gis-wal-test-", dir="/var/tmp"))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pitr"),
        wal_archive_dir=wal,
        load_demo=False,
        db_name="gis",
    )
    prepared = prepare(settings, load_demo=False)
    prepared.engine.dispose()
    pitr.base_backup(settings)
    yield settings
    cluster_for(settings).destroy()
    shutil.rmtree(wal, ignore_errors=True)


def _sql(settings: Settings, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(cluster_for(settings).dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _people(settings: Settings) -> list[str]:
    rows = _sql(settings, "SELECT name FROM people WHERE name LIKE 'PITR%%' ORDER BY name")
    return [r[0] for r in rows]


def test_recover_to_the_noted_minute(archived: Settings) -> None:
    settings = archived
    status = pitr.status(settings)
    assert status["archive_mode"] == "on" and len(status["base_backups"]) == 1
    for name in ("PITR-A1", "PITR-A2"):
        _sql(settings, "INSERT INTO people (name) VALUES (%s)", (name,))
    time.sleep(1.1)
    # Noted as the office writes it: local wall-clock time in GIS_LOCAL_TIMEZONE.
    noted = datetime.now(UTC).astimezone(ZoneInfo(settings.local_timezone))
    until = noted.strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1.1)
    _sql(settings, "DELETE FROM people WHERE name LIKE 'PITR%%'")  # the mistake
    _sql(settings, "INSERT INTO people (name) VALUES ('PITR-B')")
    assert _people(settings) == ["PITR-B"]

    result = pitr.recover(settings, until)
    assert _people(settings) == ["PITR-A1", "PITR-A2"]
    assert result["time_zone"] == "Asia/Shanghai"
    assert result["recovered_to"].startswith(until.replace(" ", "T"))
    assert result["recovered_to"].endswith("+08:00")
    kept = Path(result["previous_data_kept_in"])
    assert kept.is_dir() and (kept / "PG_VERSION").exists()
    # The recovered cluster is an ordinary, writable one that archives again.
    _sql(settings, "INSERT INTO people (name) VALUES ('PITR-C')")
    assert pitr.status(settings)["archive_mode"] == "on"
    cluster = cluster_for(settings)
    assert not (cluster.pgdata / "recovery.signal").exists()
    assert "recovery_target_time" not in (cluster.pgdata / "gis-service.runtime.conf").read_text()
    shutil.rmtree(kept)


def test_recover_refuses_times_it_cannot_reach(archived: Settings) -> None:
    with pytest.raises(OpsError, match="no base backup"):
        pitr.recover(archived, "2020-01-01 09:30")
    with pytest.raises(OpsError, match="future"):
        pitr.recover(archived, "2999-01-01 09:30")
    with pytest.raises(OpsError, match="not a time"):
        pitr.recover(archived, "yesterday at nine")
    with pytest.raises(OpsError, match="embedded cluster"):
        pitr.recover(
            Settings(database_url="postgresql://x@/y", wal_archive_dir="/tmp"), "2026-01-01"
        )


def test_ready_fails_while_the_database_is_down_and_recovers(archived: Settings) -> None:
    cluster = cluster_for(archived)
    with TestClient(create_app(archived)) as client:
        r = client.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        cluster.stop()
        try:
            r = client.get("/ready")
            assert r.status_code == 503 and r.json()["code"] == "not_ready"
            assert r.headers["Retry-After"]
            health = client.get("/health")  # liveness: the process is alive
            assert health.status_code == 200 and health.json()["database"] is None
        finally:
            cluster.start()
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "/ready did not recover"
            time.sleep(0.2)
        assert client.get("/health").json()["database"]["schema_revision"]
        # Migrations pending (a newer release's head): not ready either.
        client.app.state.schema_head = "9999_future"
        r = client.get("/ready")
        assert r.status_code == 503 and r.json()["details"]["head"] == "9999_future"
