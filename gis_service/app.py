"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from gis_service import __version__
from gis_service.config import Settings
from gis_service.db.engine import make_engine, resolve_url
from gis_service.errors import install_error_handlers
from gis_service.facilities.router import router as facilities_router
from gis_service.grids.router import router as grids_router
from gis_service.hazards.router import router as hazards_router
from gis_service.layers.service import load_catalog
from gis_service.ogc.router import router as ogc_router
from gis_service.system.router import router as system_router

DESCRIPTION = """
网格化基层治理地图服务 — grid-governance map service for street offices.

Find which grid (街道 › 社区 › 网格 › 微网格) covers a point and who is responsible for it,
read grids, facilities (部件) and hazards (隐患). Coordinates are WGS84 unless `crs` says
`gcj02` (AMap, WeChat) or `bd09` (Baidu). Errors are JSON `{code, message, details}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database must already be migrated (``gis-service serve`` does it)."""
    settings = settings or Settings()
    # Validate layers/ at start-up: a broken file stops the service with the file and field.
    catalog = load_catalog(settings.layers_dir)
    engine = make_engine(resolve_url(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="gis-service 网格地图服务",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.catalog = catalog
    install_error_handlers(app)
    app.include_router(system_router)
    app.include_router(grids_router)
    app.include_router(facilities_router)
    app.include_router(hazards_router)
    app.include_router(ogc_router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
