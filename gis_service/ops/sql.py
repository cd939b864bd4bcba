"""The SQL of backups, restores, readiness, metrics, the doctor and photo hygiene."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.sql import OVERDUE
from gis_service.hazards.states import open_sql

# Our tables: every ordinary table outside the system schemas that no extension owns
# (spatial_ref_sys belongs to PostGIS and is not ours to count).
USER_TABLES = """
    SELECT n.nspname, c.relname
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast|temp)'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')
     ORDER BY 1, 2
"""

# Row count and an order-independent checksum of a table: the sum of the first 64 bits of
# each row's MD5, exact in numeric. Equal after a dump and restore because the row's text
# form is (timestamps in UTC, floats in shortest exact form since PostgreSQL 12).
TABLE_CHECKSUM = """
    SELECT count(*),
           coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text
      FROM {table} AS t
"""

SERVER_FACTS = """
    SELECT current_setting('server_version'),
           (SELECT extversion FROM pg_extension WHERE extname = 'postgis'),
           (SELECT string_agg(version_num, ',' ORDER BY version_num)
              FROM alembic_version)
"""

SERVER_FACTS_NO_ALEMBIC = """
    SELECT current_setting('server_version'),
           (SELECT extversion FROM pg_extension WHERE extname = 'postgis'),
           NULL
"""

HAS_ALEMBIC = "SELECT to_regclass('public.alembic_version') IS NOT NULL"

# Photo rows whose files should be on disk: (hazard, photo id, where an archived one went).
PHOTO_ROWS = """
    SELECT hazard_id, id::text, archived_to FROM hazard_photos
"""
PHOTO_ROWS_OLD = "SELECT hazard_id, id::text, NULL FROM hazard_photos"
HAS_PHOTO_ARCHIVE_COLUMN = """
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_name = 'hazard_photos' AND column_name = 'archived_to')
"""

# ---- readiness and metrics ---------------------------------------------------------------
READY = text("SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version")

# One round trip per scrape: open hazards by status, overdue ones, committed imports.
METRICS = text(
    f"""
    SELECT (SELECT coalesce(jsonb_object_agg(status, n), '{{}}')
              FROM (SELECT h.status, count(*) AS n FROM hazards h
                     WHERE {open_sql("h")} GROUP BY h.status) s) AS open_by_status,
           (SELECT count(*) FROM hazards t WHERE {OVERDUE}) AS overdue,
           (SELECT coalesce(jsonb_object_agg(layer, n), '{{}}')
              FROM (SELECT layer, count(*) AS n FROM import_runs GROUP BY layer) i)
               AS import_runs
    """
)

# ---- photo hygiene: archiving photos of long-closed hazards ---------------------------------
# Photos of hazards closed before :cutoff that are not archived yet.
CANDIDATES = text(
    """
    SELECT ph.hazard_id, ph.id::text AS id
      FROM hazard_photos ph
      JOIN hazards h ON h.id = ph.hazard_id
     WHERE h.status = ANY (CAST(:closed AS text[]))
       AND h.closed_at < :cutoff
       AND ph.archived_to IS NULL
     ORDER BY ph.hazard_id, ph.id
    """
)

MARK = text(
    """
    UPDATE hazard_photos SET archived_to = :rel, archived_at = now()
     WHERE id = CAST(:id AS uuid) AND archived_to IS NULL
    """
)

# Originals left behind by a run that stopped after its commit.
LEFTOVERS = text(
    "SELECT hazard_id, id::text AS id FROM hazard_photos WHERE archived_to IS NOT NULL"
)
