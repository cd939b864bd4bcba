"""The embedded cluster: first start, reuse, clean stop, crash safety, and clear errors."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg2
import pytest

from gis_service.db.cluster import Cluster, ClusterError, find_pg_bin


@pytest.fixture()
def cluster(tmp_path: Path):
    c = Cluster(tmp_path / "pg", db_name="lifecycle")
    yield c
    c.destroy()


def _wait_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


def test_lifecycle_reuse_stop_and_crash_safety(cluster: Cluster) -> None:
    assert cluster.status() == "absent"
    assert cluster.start() is True
    assert cluster.status() == "running"
    # A second start reuses the running server instead of failing or starting another.
    assert cluster.start() is False
    url = cluster.ensure_database()
    assert url.startswith("postgresql+psycopg2://postgres@/lifecycle?host=")

    conn = psycopg2.connect(cluster.dsn())
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (v int)")
        cur.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        cur.execute("SELECT postgis_lib_version()")
        assert cur.fetchone()[0].startswith("3.")
    conn.close()

    # kill -9 of the postmaster must lose nothing committed (fsync and WAL stay on).
    pid = cluster.pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert cluster.start() is True  # recovers from the stale postmaster.pid
    conn = psycopg2.connect(cluster.dsn())
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone()[0] == 1000
    conn.close()

    assert cluster.stop() is True
    assert cluster.status() == "stopped"
    assert cluster.stop() is False


def test_listens_on_a_private_unix_socket_only(pg_cluster: Cluster) -> None:
    # The session's cluster (tests/conftest.py) is made and started by the same Cluster code
    # as any other: checking it spares an initdb of its own.
    assert pg_cluster.start() is False  # already running: reused
    conn = psycopg2.connect(pg_cluster.dsn("postgres"))
    with conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == ""
        cur.execute("SHOW fsync")
        assert cur.fetchone()[0] == "on"
    conn.close()
    assert (pg_cluster.socket_dir.stat().st_mode & 0o777) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_root_runs_server_as_postgres_outside_private_home(tmp_path: Path) -> None:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    c = Cluster(private / "var" / "pg")
    try:
        c.start()
        # The postgres user cannot enter a 0700 home, so the cluster lives elsewhere,
        # reachable, with a symlink where the user expects it.
        assert c.root.is_symlink()
        import pwd

        owner = pwd.getpwuid(c.pgdata.stat().st_uid).pw_name
        assert owner == "postgres"
        assert c.status() == "running"
    finally:
        c.destroy()
    assert not c.root.exists()


def test_missing_postgis_names_the_package(tmp_path: Path) -> None:
    real = find_pg_bin()
    fake = tmp_path / "99" / "bin"
    fake.mkdir(parents=True)
    for prog in ("initdb", "pg_ctl", "postgres"):
        (fake / prog).symlink_to(real / prog)
    c = Cluster(tmp_path / "pg", pg_bin=fake)
    with pytest.raises(ClusterError) as err:
        c.start()
    assert "apt-get install postgresql-99-postgis-3" in str(err.value)


def test_bad_pg_bin_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="GIS_PG_BIN"):
        find_pg_bin(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback folder is used only by root")
def test_deleting_the_data_folder_starts_afresh(tmp_path: Path) -> None:
    import shutil

    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    c = Cluster(private / "var" / "pg")
    kept: list[Path] = []
    try:
        c.start()
        conn = psycopg2.connect(c.dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE leftover")
        conn.close()
        old_home = c.home
        c.root.unlink()  # what `rm -rf var` does to the symlink, with the server still up
        c.start()
        conn = psycopg2.connect(c.dsn("postgres"))
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = 'leftover'")
            assert cur.fetchone()[0] == 0
        conn.close()
        kept = list(old_home.parent.glob(f"{old_home.name}.orphaned-*"))
        assert kept, "the old cluster is kept aside, not destroyed"
        assert not (kept[0] / "data" / "postmaster.pid").exists(), "the old server was stopped"
    finally:
        c.destroy()
        for old in kept:
            shutil.rmtree(old, ignore_errors=True)


def test_database_url_never_starts_a_cluster(tmp_path: Path) -> None:
    from gis_service.config import Settings
    from gis_service.db.engine import resolve_url

    settings = Settings(database_url="postgres://gis:pw@db.example/gis", data_dir=tmp_path)
    assert resolve_url(settings, start=True) == "postgresql+psycopg2://gis:pw@db.example/gis"
    assert not (tmp_path / "pg").exists()
