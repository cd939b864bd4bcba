"""Shared fixtures: one throwaway PostGIS cluster per test session, built by the same code
the service uses for its embedded default, and the databases in it (tests/support/databases).

Helpers that tests import live in tests/support/, never here."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gis_service.config import Settings
from gis_service.db.cluster import Cluster
from gis_service.db.engine import make_engine
from tests.support.databases import DEMO, Databases
from tests.support.servers import Server
from tests.support.webkit import Site, site_settings

# argon2id at its cheapest (1 pass, 1 MiB, 1 lane), as Django's test settings swap the
# password hasher: the tests check that passwords are hashed and checked with argon2id and
# re-hashed when the cost changes, not the cost itself; at the production cost each of a
# run's ~150 hashes and checks took 0.3-1 s. test_auth checks the production defaults.
os.environ.setdefault("GIS_PASSWORD_TIME_COST", "1")
os.environ.setdefault("GIS_PASSWORD_MEMORY_KIB", "1024")
os.environ.setdefault("GIS_PASSWORD_PARALLELISM", "1")

# The session's cluster lives in RAM when the machine has room there: it is thrown away at
# the end, and on this project's virtual disks each commit's fsync and the final delete of
# a few GB of test databases cost more than the tests around them.
RAM_DISK = Path("/dev/shm")
RAM_NEEDED = 6 * 1024**3


def _cluster_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in RAM if there is room, else under pytest's temporary folder."""
    roomy = RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK)
    if roomy and shutil.disk_usage(RAM_DISK).free > RAM_NEEDED:
        return RAM_DISK / f"gis-test-{uuid.uuid4().hex[:12]}"
    return tmp_path_factory.mktemp("cluster") / "pg"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, files holding a ``slow`` test first, then those of most tests.

    Each worker takes whole files in this order (--dist loadfile, --no-loadscope-reorder).
    xdist's own order, most tests first, left test_serve and test_upgrade (one long test
    each) to the end, where one worker ran them alone after the other had finished."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the files in their usual order
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def first(tests: list[pytest.Item]) -> tuple[bool, int]:
        return (not any(t.get_closest_marker("slow") for t in tests), -len(tests))

    items[:] = [item for tests in sorted(files.values(), key=first) for item in tests]


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh cluster for this session, destroyed at its end.

    fsync stays on, as in production (tests/test_cluster.py checks crash safety on clusters
    of its own, on disk)."""
    root = _cluster_root(tmp_path_factory)
    cluster = Cluster(root, db_name="gis_test")
    cluster.start()
    yield cluster
    if not os.environ.get("GIS_KEEP_TEST_CLUSTER"):
        cluster.destroy()
        (root.parent / f".{root.name}.lock").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def databases(pg_cluster: Cluster) -> Databases:
    """Fresh databases copied from templates migrated (and loaded) once per session."""
    return Databases(pg_cluster)


@pytest.fixture(scope="session")
def db_url(databases: Databases) -> str:
    """A migrated database shared by the read-mostly tests."""
    return databases.new("shared")


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the shared migrated database."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_url(databases: Databases) -> str:
    """A database with the demo district loaded (shared, read-only for tests)."""
    return databases.new("demo", DEMO)


@pytest.fixture(scope="session")
def demo_engine(demo_url: str) -> Iterator[Engine]:
    """An engine on the demo database."""
    eng = make_engine(demo_url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_client(demo_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A TestClient of the app on the demo database."""
    from fastapi.testclient import TestClient

    from gis_service.app import create_app

    settings = Settings(
        database_url=demo_url, data_dir=tmp_path_factory.mktemp("demo"), load_demo=False
    )
    with TestClient(create_app(settings)) as client:
        yield client


# ---- the browser tests (tests/support/webkit.py): one server and one Chromium per session --
@pytest.fixture(scope="session")
def site(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """uvicorn on a loopback port over a fresh copy of the demo district (the tests write)."""
    from gis_service.viewer import assets

    if assets.missing_vendor_files():
        pytest.fail("web assets missing: run `make setup-test` (npm ci in web/)")
    url = databases.new("web", DEMO)
    with Server(site_settings(url, tmp_path_factory.mktemp("web"))) as base:
        site = Site(base, make_engine(url, pool_size=2), url)
        yield site
    site.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless (Playwright never downloads a browser)."""
    from tests.support.webkit import CHROMIUM, browser_session

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (scripts/system-deps.sh test)")
    pytest.importorskip("playwright.sync_api")
    yield from browser_session()
