"""Shared fixtures: one throwaway PostGIS cluster per test session, built by the same code
the service uses for its embedded default, and a migrated database in it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gis_service.config import Settings
from gis_service.db import migrate
from gis_service.db.cluster import Cluster
from gis_service.db.engine import make_engine


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh cluster under pytest's temp folder, destroyed at the end of the session."""
    root = tmp_path_factory.mktemp("cluster") / "pg"
    # fsync stays on: a test kills the server with -9 and expects committed rows to survive.
    cluster = Cluster(root, db_name="gis_test")
    cluster.start()
    yield cluster
    if not os.environ.get("GIS_KEEP_TEST_CLUSTER"):
        cluster.destroy()


def new_database(cluster: Cluster, prefix: str = "t") -> str:
    """Create an empty PostGIS database in the cluster and return its URL."""
    return cluster.ensure_database(f"{prefix}_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="session")
def db_url(pg_cluster: Cluster) -> str:
    """A migrated database shared by the read-mostly tests."""
    url = pg_cluster.ensure_database("gis_test")
    engine = make_engine(url, pool_size=2)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the shared migrated database."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the shared database (so no embedded cluster is started)."""
    data_dir: Path = tmp_path_factory.mktemp("data")
    return Settings(database_url=db_url, data_dir=data_dir, load_demo=False)


@pytest.fixture(scope="session")
def demo_url(pg_cluster: Cluster) -> str:
    """A migrated database with the demo district loaded (shared, read-only for tests)."""
    from gis_service.catalog import load_catalog
    from gis_service.config import PROJECT_ROOT
    from gis_service.demo.loader import load_demo

    url = pg_cluster.ensure_database("gis_demo")
    eng = make_engine(url, pool_size=1)
    migrate.upgrade(eng)
    load_demo(
        eng,
        load_catalog(PROJECT_ROOT / "layers"),
        PROJECT_ROOT / "data" / "erqi_410103_wgs84.geojson",
        seed=Settings().demo_seed,
    )
    eng.dispose()
    return url


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


# ---- the browser tests (tests/webkit.py): one server and one Chromium for the whole session --
@pytest.fixture(scope="session")
def site(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):
    """uvicorn on a loopback port over a fresh copy of the demo district (the tests write)."""
    from gis_service.viewer import assets
    from tests.authkit import demo_database
    from tests.webkit import start_site

    if assets.missing_vendor_files():
        pytest.fail("web assets missing: run `make setup-test` (npm ci in web/)")
    url = demo_database(pg_cluster, "web")
    site, server, thread = start_site(url, tmp_path_factory.mktemp("web"))
    yield site
    server.should_exit = True
    thread.join(timeout=15)
    site.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless (Playwright never downloads a browser)."""
    from tests.webkit import CHROMIUM, browser_session

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (scripts/system-deps.sh test)")
    pytest.importorskip("playwright.sync_api")
    yield from browser_session()
