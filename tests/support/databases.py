"""The one way tests get a database: a copy of a template built once per session.

Migrating a database, syncing the layer catalog or loading the demo district takes from a
fraction of a second to ten; ``CREATE DATABASE … TEMPLATE`` copies the result in a tenth of
one. A template is built the first time a test asks for it (so one module run alone builds
only what it needs), from its parent template, and is then closed to connections, which
copying requires.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import Engine, make_url

from gis_service.config import PROJECT_ROOT, Settings
from gis_service.db import migrate
from gis_service.db.cluster import Cluster
from gis_service.db.engine import make_engine

DEMO_BOUNDARY = PROJECT_ROOT / "data" / "erqi_410103_wgs84.geojson"
DEMO_SEED = Settings.model_fields["demo_seed"].default


@dataclass(frozen=True)
class Template:
    """A database state to copy: its parent's, plus what ``build`` does to it.

    ``build`` gets an engine on the new template and returns anything tests want to know
    about it afterwards (``Databases.built``); a template without a parent is PostGIS alone.
    """

    name: str
    parent: Template | None
    build: Callable[[Engine], Any]


def _migrate(engine: Engine) -> None:
    migrate.upgrade(engine)


def _sync_catalog(engine: Engine) -> None:
    from gis_service.catalog import load_catalog, sync_catalog

    with engine.begin() as conn:
        sync_catalog(conn, load_catalog(PROJECT_ROOT / "layers"))


def _load_demo(engine: Engine) -> dict[str, Any]:
    from gis_service.catalog import load_catalog
    from gis_service.demo.loader import load_demo

    return load_demo(engine, load_catalog(PROJECT_ROOT / "layers"), DEMO_BOUNDARY, seed=DEMO_SEED)


POSTGIS = Template("postgis", None, lambda engine: None)
"""An empty database with the PostGIS extension (for tests of the migrations themselves)."""
SCHEMA = Template("schema", POSTGIS, _migrate)
"""Migrated to the newest revision, no rows."""
CATALOG = Template("catalog", SCHEMA, _sync_catalog)
"""Migrated, with the layer catalog (facility types, hazard categories, departments)."""
DEMO = Template("demo", SCHEMA, _load_demo)
"""Migrated, with the demo district loaded; ``built(DEMO)`` is load_demo's report."""


class Databases:
    """Test databases of one cluster: ``new`` copies a template, ``drop`` throws it away."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._built: dict[str, Any] = {}

    def new(self, prefix: str, template: Template = SCHEMA) -> str:
        """A fresh database copied from ``template``; its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._copy(self._ready(template), name)
        return self.cluster.url(name)

    def engine(self, prefix: str, template: Template = SCHEMA, pool_size: int = 2) -> Engine:
        """An engine on a fresh copy of ``template``."""
        return make_engine(self.new(prefix, template), pool_size=pool_size)

    def built(self, template: Template) -> Any:
        """What the template's ``build`` returned (building it first if need be)."""
        self._ready(template)
        return self._built[template.name]

    def drop(self, url: str) -> None:
        """Drop a database made by ``new`` (disconnecting whoever is still on it)."""
        name = make_url(url).database
        assert name, url
        self.cluster.drop_database(name)

    # -- templates ------------------------------------------------------------------------
    def _ready(self, template: Template) -> str:
        """The name of the template's database, built on first use."""
        name = f"tpl_{template.name}"
        if template.name in self._built:
            return name
        if template.parent is None:
            url = self.cluster.ensure_database(name)
        else:
            self._copy(self._ready(template.parent), name)
            url = self.cluster.url(name)
        engine = make_engine(url, pool_size=1)
        try:
            result = template.build(engine)
        finally:
            engine.dispose()
        # A template nobody can connect to can always be copied (copying needs it idle).
        self._execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
        self._built[template.name] = result
        return name

    def _copy(self, source: str, name: str) -> None:
        self._execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )

    def _execute(self, statement: sql.Composable) -> None:
        conn = psycopg2.connect(self.cluster.dsn("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()
