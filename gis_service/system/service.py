"""The service's own state, with no HTTP: versions of the service, PostgreSQL, PostGIS and the
schema."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from gis_service import __version__
from gis_service.system import sql


def health(engine: Engine) -> dict[str, Any]:
    """The service, PostgreSQL, PostGIS and schema versions; the database part is None when
    the database does not answer (the process is alive all the same). ``worker`` names the
    process that answered (with ``serve --workers N`` each process answers on its own)."""
    try:
        with engine.connect() as conn:
            database: dict[str, Any] | None = dict(conn.execute(sql.HEALTH).mappings().one())
    except DBAPIError:
        database = None
    return {
        "status": "ok",
        "service": __version__,
        "worker": os.getpid(),
        "database": database,
    }
