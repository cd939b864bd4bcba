"""Imports: a record of every import, a bulk path for the grid triggers, and a cheaper rule
for "one version of a code at a time".

The EXCLUDE constraint on (code, tstzrange) made every inserted grid cost a GiST insert with
text keys (about 60 µs: 6 s of a 100,000-grid import). The same rule is kept by a partial
unique index (one open version per code) plus a statement-level trigger that checks the
inserted or updated rows against the other versions of their codes in one set-based join.
The index keeps the constraint's name, so errors read the same.

The per-row path and subdivide triggers skip their work while the session sets
``gis.bulk_import = on``; the importer then sets paths and writes grid_parts itself, set-based,
with the very same rules.

Revision ID: 0005_imports
Revises: 0004_hazard_workflow
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005_imports"
down_revision = "0004_hazard_workflow"
branch_labels = None
depends_on = None

_BULK_OFF = "current_setting('gis.bulk_import', true) IS DISTINCT FROM 'on'"

UPGRADE = [
    "ALTER TABLE grids DROP CONSTRAINT grids_no_overlapping_versions",
    """
    CREATE UNIQUE INDEX grids_no_overlapping_versions ON grids (code) WHERE valid_to IS NULL
    """,
    """
    CREATE FUNCTION grids_check_versions() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        clash text;
    BEGIN
        SELECT n.code INTO clash
          FROM changed_rows n
          JOIN grids g ON g.code = n.code AND g.id <> n.id
         WHERE g.valid_from < coalesce(n.valid_to, 'infinity')
           AND n.valid_from < coalesce(g.valid_to, 'infinity')
         LIMIT 1;
        IF clash IS NOT NULL THEN
            RAISE EXCEPTION 'conflicting key value violates exclusion constraint '
                            '"grids_no_overlapping_versions"'
                USING ERRCODE = 'exclusion_violation',
                      DETAIL = format('Two versions of grid %s overlap in time.', clash);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER grids_check_versions_insert AFTER INSERT ON grids
        REFERENCING NEW TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION grids_check_versions()
    """,
    """
    CREATE TRIGGER grids_check_versions_update AFTER UPDATE ON grids
        REFERENCING NEW TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION grids_check_versions()
    """,
    # The row triggers of 0001, now skipped in a bulk import (which does their work itself).
    "DROP TRIGGER grids_set_path ON grids",
    f"""
    CREATE TRIGGER grids_set_path BEFORE INSERT OR UPDATE OF parent_id, level, path ON grids
        FOR EACH ROW WHEN ({_BULK_OFF}) EXECUTE FUNCTION grids_set_path()
    """,
    "DROP TRIGGER grids_subdivide ON grids",
    f"""
    CREATE TRIGGER grids_subdivide AFTER INSERT OR UPDATE OF geom, level ON grids
        FOR EACH ROW WHEN ({_BULK_OFF}) EXECUTE FUNCTION grids_subdivide()
    """,
    """
    CREATE TABLE import_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        layer text NOT NULL CONSTRAINT import_runs_layer
            CHECK (layer IN ('grids', 'facilities', 'people')),
        source text NOT NULL,
        options jsonb NOT NULL DEFAULT '{}',
        counts jsonb NOT NULL DEFAULT '{}',
        warnings integer NOT NULL DEFAULT 0,
        actor text,
        valid_from timestamptz,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """,
    "COMMENT ON TABLE import_runs IS 'One row per committed import: who, what file, what changed.'",
]

DOWNGRADE = [
    "DROP TABLE IF EXISTS import_runs",
    "DROP TRIGGER IF EXISTS grids_subdivide ON grids",
    """
    CREATE TRIGGER grids_subdivide AFTER INSERT OR UPDATE OF geom, level ON grids
        FOR EACH ROW EXECUTE FUNCTION grids_subdivide()
    """,
    "DROP TRIGGER IF EXISTS grids_set_path ON grids",
    """
    CREATE TRIGGER grids_set_path BEFORE INSERT OR UPDATE OF parent_id, level, path ON grids
        FOR EACH ROW EXECUTE FUNCTION grids_set_path()
    """,
    "DROP TRIGGER IF EXISTS grids_check_versions_update ON grids",
    "DROP TRIGGER IF EXISTS grids_check_versions_insert ON grids",
    "DROP FUNCTION IF EXISTS grids_check_versions()",
    "DROP INDEX IF EXISTS grids_no_overlapping_versions",
    """
    ALTER TABLE grids ADD CONSTRAINT grids_no_overlapping_versions
        EXCLUDE USING gist (code WITH =, tstzrange(valid_from, valid_to) WITH &&)
    """,
]


def upgrade() -> None:
    """Record imports; bulk path for grid triggers; versions rule by index and trigger."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Restore the EXCLUDE constraint and the plain triggers; drop import_runs."""
    for statement in DOWNGRADE:
        op.execute(statement)
