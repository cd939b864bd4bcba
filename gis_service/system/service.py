"""The service's own state, with no HTTP: versions of the service, PostgreSQL, PostGIS and the
schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from gis_service import __version__
from gis_service.system import sql


def health(conn: Connection) -> dict[str, Any]:
    """The service, PostgreSQL, PostGIS and schema versions (the database answers)."""
    row = conn.execute(sql.HEALTH).mappings().one()
    return {"status": "ok", "service": __version__, "database": dict(row)}
