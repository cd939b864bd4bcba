"""GET /health: is the database up, and which PostgreSQL and PostGIS versions serve it."""

from __future__ import annotations

import os

from fastapi import APIRouter
from sqlalchemy import text

from gis_service import __version__
from gis_service.http.deps import Conn

router = APIRouter(tags=["system"])

HEALTH = text(
    """
    SELECT current_setting('server_version') AS postgresql,
           postgis_lib_version() AS postgis,
           postgis_full_version() AS postgis_full,
           (SELECT version_num FROM alembic_version LIMIT 1) AS schema_revision
    """
)


@router.get("/health", summary="Database and PostGIS versions")
def health(conn: Conn) -> dict:
    """Report the service, PostgreSQL, PostGIS and schema versions, and which worker process
    answered (with ``serve --workers N`` each process answers on its own)."""
    row = conn.execute(HEALTH).mappings().one()
    return {"status": "ok", "service": __version__, "worker": os.getpid(), "database": dict(row)}
