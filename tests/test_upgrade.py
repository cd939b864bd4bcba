"""Upgrade from the previous release: a data folder made by it (the demo district with its
months of cases, and a photo) starts on this release; migrations run forward on that real data
after an automatic backup, and rolling back (restoring that backup, then running the previous
release) works.

The previous release is taken from git history (``git archive``) and run with this very
virtualenv, its own code first on PYTHONPATH. Without that history (a shallow clone) the test
fails, loudly: it must not silently stop guarding upgrades.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import psycopg2
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.config import PROJECT_ROOT, Settings
from gis_service.db.cluster import Cluster
from gis_service.ops.backup import list_archives, read_manifest, verify
from gis_service.ops.restore import restore

# The last commit on main before the release that added backups (and migrations 0006, 0007).
PREVIOUS_RELEASE = "8a4b2f2"
PREVIOUS_HEAD = "0005_imports"

COUNTS = """
    SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM people),
           (SELECT count(*) FROM facilities), (SELECT count(*) FROM hazards),
           (SELECT count(*) FROM hazard_events), (SELECT count(*) FROM hazard_photos),
           (SELECT max(reported_at) - min(reported_at) FROM hazards)
"""


def _git(*args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"git {' '.join(args)} failed: {proc.stderr.strip()}. The upgrade test needs the "
            f"project's git history with commit {PREVIOUS_RELEASE}; run it in a full clone "
            "(not `git clone --depth`, or run `git fetch --unshallow`)."
        )
    return proc.stdout


def previous_release(dest: Path) -> Path:
    """The previous release's tree, extracted from git history."""
    if _git("rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.fail(
            "This clone is shallow: the upgrade test needs history back to "
            f"{PREVIOUS_RELEASE}. Run `git fetch --unshallow` (CI must clone in full)."
        )
    _git("cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}")
    data = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", PREVIOUS_RELEASE],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _run(code: Path | None, data: Path, *args: str, timeout: float = 300) -> str:
    """``gis-service ARGS`` of a release (None: this one) on the data folder ``data``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_") and k != "DATABASE_URL"}
    env.update(GIS_DATA_DIR=str(data), GIS_LOG_LEVEL="warning")
    if code is not None:
        env["PYTHONPATH"] = str(code)  # before the editable install of this release
    proc = subprocess.run(
        [sys.executable, "-m", "gis_service", *args],
        env=env,
        cwd=str(code or data.parent),  # no stray .env
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"gis-service {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _query(cluster: Cluster, statement: str) -> tuple:
    conn = psycopg2.connect(cluster.dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()
    finally:
        conn.close()


@pytest.mark.slow
def test_upgrade_from_the_previous_release_and_roll_back(tmp_path: Path) -> None:
    old = previous_release(tmp_path / "old-release")
    data = tmp_path / "var"
    cluster = Cluster(data / "pg", db_name="gis")
    rolled_back = Cluster(tmp_path / "var-rollback" / "pg", db_name="gis")
    try:
        # 1. The previous release makes the data folder: cluster, schema, demo district.
        out = _run(old, data, "demo", "load")
        assert "gis_service" not in out or "Traceback" not in out
        version = _query(cluster, "SELECT version_num FROM alembic_version")[0]
        assert version == PREVIOUS_HEAD, "the previous release should stop at its own head"
        # A photo taken in the old release (row and files).
        hazard = _query(cluster, "SELECT min(id) FROM hazards WHERE status = 'closed'")[0]
        photo = "0b3c4d5e-0000-4000-8000-000000000001"
        folder = data / "photos" / str(hazard) / photo
        folder.mkdir(parents=True)
        for name in ("original.jpg", "public.jpg", "thumb.jpg"):
            (folder / name).write_bytes(b"\xff\xd8\xff\xe0old-release-photo")
        _query(
            cluster,
            "INSERT INTO hazard_photos (id, hazard_id, content_type, bytes, width, height, "
            f"sha256) VALUES ('{photo}', {hazard}, 'image/jpeg', 22, 1, 1, '{'0' * 64}') "
            "RETURNING id",
        )
        before = _query(cluster, COUNTS)
        assert before[3] > 200 and before[4] > before[3] and before[5] == 1
        assert before[6].days >= 28, "the demo should hold at least a month of cases"

        # 2. This release upgrades it: a backup first, then the migrations, on real data.
        out = _run(None, data, "db", "upgrade")
        assert "backed up before migrating" in out, out
        (archive,) = list_archives(data / "backups")
        assert "pre-upgrade" in archive.name
        manifest = read_manifest(archive)
        assert manifest["database"]["schema_revision"] == PREVIOUS_HEAD
        assert manifest["photos"]["rows"] == 1 and manifest["photos"]["missing"] == 0
        verify(archive)
        after = _query(cluster, COUNTS)
        assert after == before, "the migrations must keep every row"
        settings = Settings(data_dir=data, load_demo=False)
        with TestClient(create_app(settings)) as client:
            assert client.get("/ready").status_code == 200
            r = client.get(f"/api/v1/hazards/{hazard}/photos/{photo}", params={"variant": "thumb"})
            assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")
            grid = client.get("/api/v1/grids", params={"level": "micro_grid", "limit": 1}).json()
            assert grid["features"]
        # A second start migrates nothing and backs up nothing more.
        assert "backed up" not in _run(None, data, "db", "upgrade")
        assert len(list_archives(data / "backups")) == 1

        # 3. Rolling back, as the README says: restore the pre-upgrade backup into a fresh
        #    data folder, and the previous release runs on it.
        rollback_dir = tmp_path / "var-rollback"
        restore(Settings(data_dir=rollback_dir, load_demo=False), archive)
        status = _run(old, rollback_dir, "db", "status")
        assert PREVIOUS_HEAD in status and "up to date" in status, status
        assert _query(rolled_back, COUNTS) == before
    finally:
        cluster.destroy()
        rolled_back.destroy()
