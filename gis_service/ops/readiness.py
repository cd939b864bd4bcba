"""Readiness, with no HTTP: the schema revision the database is at, if it answers."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from gis_service.ops import sql


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sql.READY).scalar()


def schema_revision(engine: Engine) -> str | None:
    """The database's schema revision; raises DBAPIError when the database does not answer."""
    try:
        return _revision(engine)
    except DBAPIError as exc:
        # After a database restart the pool's first connection is stale: one retry.
        if not exc.connection_invalidated:
            raise
    return _revision(engine)
