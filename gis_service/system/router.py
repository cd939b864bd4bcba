"""GET /health: is the database up, and which PostgreSQL and PostGIS versions serve it."""

from __future__ import annotations

from fastapi import APIRouter

from gis_service.http.deps import Conn
from gis_service.system import service

router = APIRouter(tags=["system"])


@router.get("/health", summary="Database and PostGIS versions")
def health(conn: Conn) -> dict:
    """Report the service, PostgreSQL, PostGIS and schema versions."""
    return service.health(conn)
