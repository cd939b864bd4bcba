"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware

from gis_service import __version__, scratch
from gis_service.assessment.router import router as assessment_router
from gis_service.auth.deps import ANYONE, PUBLIC_READ
from gis_service.auth.router import router as auth_router
from gis_service.care.router import router as care_router
from gis_service.catalog import load_catalog
from gis_service.clock import DATABASE_CLOCK, Clock
from gis_service.config import Settings
from gis_service.db.engine import make_engine, resolve_url
from gis_service.db.reads import Reads
from gis_service.desk.router import router as desk_router
from gis_service.facilities.router import router as facilities_router
from gis_service.field.router import router as field_router
from gis_service.grids.router import router as grids_router
from gis_service.grids.service import maintain_cards
from gis_service.hazards.router import router as hazards_router
from gis_service.http.deps import install_read_your_writes
from gis_service.http.errors import install_error_handlers
from gis_service.http.fastpath import install_fast_paths
from gis_service.http.guard import InputGuardMiddleware
from gis_service.http.observability import configure_logging, install_observability
from gis_service.http.routes import document_access
from gis_service.http.security import install_security
from gis_service.interchange.router import router as interchange_router
from gis_service.ogc.router import router as ogc_router
from gis_service.open311.router import refusal as open311_refusal
from gis_service.open311.router import router as open311_router
from gis_service.ops import metrics
from gis_service.ops.router import anyone_alive
from gis_service.ops.router import router as ops_router
from gis_service.orders.router import router as orders_router
from gis_service.patrols.router import router as patrols_router
from gis_service.people.router import router as people_router
from gis_service.search.router import router as search_router
from gis_service.system.router import router as system_router
from gis_service.tiles.router import router as tiles_router
from gis_service.tiles.service import prune_cache as prune_tile_cache
from gis_service.viewer.router import install as install_viewer
from gis_service.visits.router import router as visits_router
from gis_service.whistles.router import router as whistles_router
from gis_service.worktime.router import router as calendar_router

DESCRIPTION = """
网格化基层治理地图服务 — grid-governance map service for street offices.

Find which grid (街道 › 社区 › 网格 › 微网格) covers a point and who is responsible for it,
read grids, facilities (部件) and hazards (隐患). Coordinates are WGS84 unless `crs` says
`gcj02` (AMap, WeChat) or `bd09` (Baidu). Errors are JSON `{code, message, details}`.
"""

log = logging.getLogger(__name__)

# How often each worker fills missing grid cards, rebuilds the ones the clock made stale and
# drops old tiles from the tile cache.
MAINTENANCE_S = 60.0


def _maintain(engine) -> None:
    filled, refreshed = maintain_cards(engine)
    if filled or refreshed:
        log.info("grid cards: %d built, %d refreshed", filled, refreshed)
    with engine.begin() as conn:
        pruned = prune_tile_cache(conn)
    if pruned:
        log.info("tile cache: %d old tiles dropped", pruned)


async def _maintain_forever(engine) -> None:
    """Keep the grid cards complete and fresh (locate is right without them, only slower)
    and the tile cache small."""
    while True:
        try:
            await run_in_threadpool(_maintain, engine)
        except Exception as exc:  # a database restart must not end the loop
            log.warning("maintenance failed: %s", exc)
        await asyncio.sleep(MAINTENANCE_S)


def create_worker_app() -> FastAPI:
    """The app of one worker of ``serve --workers N``: the parent's settings come through the
    environment, and each worker sets up the service's logging itself (it starts afresh)."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


def create_app(settings: Settings | None = None, clock: Clock = DATABASE_CLOCK) -> FastAPI:
    """Build the app; the database must already be migrated (``gis-service serve`` does it)."""
    settings = settings or Settings()
    # Validate layers/ at start-up: a broken file stops the service with the file and field.
    catalog = load_catalog(settings.layers_dir)
    url = resolve_url(settings)
    engine = make_engine(url)
    reads = Reads(
        url,
        settings.replica_urls,
        pool_size=settings.read_pool_size,
        max_lag_s=settings.replica_max_lag_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Upload and export folders of a killed process would stay on disk for good.
        scratch.clean(settings)
        await reads.start()
        cards = asyncio.create_task(_maintain_forever(engine))
        yield
        cards.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cards
        await reads.close()
        engine.dispose()
        metrics.worker_exit()

    app = FastAPI(
        title="gis-service 网格地图服务",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc are served by the viewer with local assets (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.reads = reads
    app.state.catalog = catalog
    from gis_service.db.migrate import head

    app.state.schema_head = head(engine)  # /ready compares the database with it
    app.state.clock = clock
    install_error_handlers(app)
    # Who may call each route is declared by a require(...) dependency (gis_service.auth);
    # these routers are read-only public map data, so they are declared as a whole.
    public = [Depends(PUBLIC_READ)]
    # /health is liveness: it must answer without the database (anonymous callers need none).
    app.include_router(system_router, dependencies=[Depends(anyone_alive)])
    # Grids mix public reads with staff-only reassignment; each route declares its own.
    app.include_router(grids_router)
    app.include_router(facilities_router, dependencies=public)
    # Hazards mix public reads with reports and staff moves: the router admits anyone and
    # each write route adds its own, stricter require(...).
    # The desk's /hazards/{id}/candidates before the hazards router's /hazards/{ref}.
    app.include_router(desk_router)
    app.include_router(hazards_router, dependencies=[Depends(ANYONE)])
    app.include_router(search_router)
    app.include_router(ogc_router, dependencies=public)
    app.include_router(tiles_router, dependencies=public)
    app.include_router(auth_router)
    app.include_router(interchange_router)  # imports and exports: declared per route
    app.include_router(people_router)  # declared per route: staff read, offices write
    app.include_router(open311_router)  # declared per route; errors in the Open311 form
    app.include_router(calendar_router)  # public: the working calendar and deadlines
    # Field work (issue 14): people under care, visits, patrols, duties; declared per route.
    app.include_router(care_router)
    app.include_router(visits_router)
    app.include_router(patrols_router)
    app.include_router(field_router)
    app.include_router(ops_router)  # /metrics, /ready, audit export: declared per route
    app.include_router(whistles_router)  # 吹哨报到: declared per route
    app.include_router(assessment_router)  # 考核评价: staff
    app.include_router(orders_router)  # 三单制: declared per route
    install_viewer(app)

    # Innermost of the edge checks: hostile input (NUL, deep JSON) meets one guard, after
    # the body cap; Open311 refusals keep Open311's error format.
    app.add_middleware(InputGuardMiddleware, renderers={"/open311/": open311_refusal})
    install_security(app, settings)
    # GeoJSON and vector tiles shrink 3-5x; clients that ask for gzip get it (level 5: most
    # of the gain for a fraction of level 9's CPU). Already-encoded responses pass as they are.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    # Outermost: the metrics and the request log see every answer, 413s and gzip included.
    install_observability(app, engine)
    document_access(app)
    if settings.fast_paths:
        # Inside the middleware and the error handlers, in front of the router.
        install_fast_paths(app)
    if settings.replica_urls:
        install_read_your_writes(app)
    return app
