"""GET /health: is the database up, and which PostgreSQL and PostGIS versions serve it."""

from __future__ import annotations

from fastapi import APIRouter

from gis_service.http.deps import EngineDep
from gis_service.system import service

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness, with database and PostGIS versions")
def health(engine: EngineDep) -> dict:
    """Liveness: 200 while the process answers. It reports the PostgreSQL, PostGIS and schema
    versions when the database answers, and null when it does not (readiness is /ready)."""
    return service.health(engine)
