"""Start-up steps shared by the CLI and the tests: database, migrations, layers, demo."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gis_service.catalog import load_catalog, sync_catalog
from gis_service.catalog.schemas import Catalog
from gis_service.config import Settings
from gis_service.db import migrate
from gis_service.db.engine import make_engine, resolve_url
from gis_service.tiles.service import sync_layers as sync_tile_layers

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What preparing the database did, with timings in seconds."""

    url: str
    engine: Engine
    catalog: Catalog
    timings: dict[str, float] = field(default_factory=dict)
    demo: dict | None = None
    backup: dict | None = None


def prepare(settings: Settings, load_demo: bool | None = None) -> Prepared:
    """Start the embedded cluster if needed, migrate, sync layers/ and load the demo once."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    catalog = load_catalog(settings.layers_dir)
    url = resolve_url(settings, start=True)
    timings["database"] = time.perf_counter() - t0
    engine = make_engine(url)
    t1 = time.perf_counter()
    from gis_service.ops.upgrade import backup_before_upgrade

    pre_upgrade = backup_before_upgrade(engine, settings)
    if pre_upgrade:
        timings["backup"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    migrate.upgrade(engine)
    timings["migrations"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    with engine.begin() as conn:
        sync_catalog(conn, catalog, settings.local_timezone)
        sync_tile_layers(conn)
    timings["layers"] = time.perf_counter() - t2
    demo = None
    if settings.load_demo if load_demo is None else load_demo:
        from gis_service.demo.loader import load_demo as run_demo

        t3 = time.perf_counter()
        demo = run_demo(
            engine,
            catalog,
            settings.demo_data_dir / "erqi_410103_wgs84.geojson",
            seed=settings.demo_seed,
        )
        timings["demo"] = time.perf_counter() - t3
    log.info("prepared database in %s", json.dumps({k: round(v, 2) for k, v in timings.items()}))
    return Prepared(
        url=url, engine=engine, catalog=catalog, timings=timings, demo=demo, backup=pre_upgrade
    )
