"""GET /health: is the database up, and which PostgreSQL and PostGIS versions serve it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis_service import __version__

router = APIRouter(tags=["system"])

HEALTH = text(
    """
    SELECT current_setting('server_version') AS postgresql,
           postgis_lib_version() AS postgis,
           postgis_full_version() AS postgis_full,
           (SELECT version_num FROM alembic_version LIMIT 1) AS schema_revision
    """
)


@router.get("/health", summary="Liveness, with database and PostGIS versions")
def health(request: Request) -> dict:
    """Liveness: 200 while the process answers. It reports the PostgreSQL, PostGIS and schema
    versions when the database answers, and null when it does not (readiness is /ready)."""
    try:
        with request.app.state.engine.connect() as conn:
            database = dict(conn.execute(HEALTH).mappings().one())
    except DBAPIError:
        database = None
    return {"status": "ok", "service": __version__, "database": database}
