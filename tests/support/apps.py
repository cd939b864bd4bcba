"""The app over a test's own database, driven in process by FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gis_service.app import create_app
from gis_service.config import Settings


@contextmanager
def app_client(engine: Engine, data_dir: Path) -> Iterator[TestClient]:
    """A started app (lifespan run) on ``engine``'s database, without the demo district."""
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=data_dir, load_demo=False)
    with TestClient(create_app(settings)) as client:
        yield client
