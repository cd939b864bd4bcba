"""The SQL of /health."""

from __future__ import annotations

from sqlalchemy import text

HEALTH = text(
    """
    SELECT current_setting('server_version') AS postgresql,
           postgis_lib_version() AS postgis,
           postgis_full_version() AS postgis_full,
           (SELECT version_num FROM alembic_version LIMIT 1) AS schema_revision
    """
)
