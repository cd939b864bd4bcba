"""Grid cards: each grid's locate entry (its names, level and people) kept as ready JSON.

Locate answers with the chain of grids over a point, each with its people. Building those
people lists (assignments ⋈ people ⋈ roles, aggregated to JSON) cost most of the query, on
the hottest route of the service. ``grid_cards`` keeps, per current grid, the entry as
text, in a public version (work phones) and a private one (with mobile phones), refreshed by
statement-level triggers in the transaction that changes a grid, an assignment or a person.
Only the open-hazard count of the finest grid is computed at request time.

One definition of an entry, ``gis_grid_cards(ids, at)``, serves both the cards and the
requests that cannot use one (an ``at`` in the past, a card not yet built after a bulk
import, or a card whose people change at a scheduled time that has passed:
``fresh_until``). A bulk import (``gis.bulk_import = on``) only drops the cards it makes
stale; ``gis_fill_grid_cards`` builds the missing ones afterwards, set-based.

Revision ID: 0010_grid_cards
Revises: 0009_service_orders
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0010_grid_cards"
down_revision = "0009_service_orders"
branch_labels = None
depends_on = None

_BULK_OFF = "current_setting('gis.bulk_import', true) IS DISTINCT FROM 'on'"

# One person of a grid's entry; the private entry adds the mobile phone. The keys and their
# order are those the locate API has always answered with (the ::jsonb orders them).
_PERSON = """json_build_object(
                'id', p.id, 'name', p.name, 'role', a.role, 'role_name', r.name_zh,
                'role_name_en', r.name_en, 'work_phone', p.work_phone,
                'is_primary', a.is_primary)::jsonb"""

# Whether assignment ``a`` holds at ``at``, as written out here; revision 0016 redefines the
# function with gis_valid_at (revision 0012), the one definition of it.
VALID_AT = "a.valid_from <= at AND (a.valid_to IS NULL OR a.valid_to > at)"


def cards_function(valid: str, create: str = "CREATE") -> str:
    """gis_grid_cards(ids, at) with ``valid``, the test that assignment ``a`` holds at ``at``.

    The entries of the grids ``ids`` as they stand at ``at``: id, code, name, level and its
    names, and the people (primary first, then by role rank and name). Text without the
    closing brace's successor: locate appends open_hazards to the finest one.
    """
    return f"""
    {create} FUNCTION gis_grid_cards(ids bigint[], at timestamptz)
    RETURNS TABLE (grid_id bigint, public text, private text, fresh_until timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT g.id,
               json_build_object(
                   'id', g.id, 'code', g.code, 'name', g.name, 'level', g.level,
                   'level_name', l.name_zh, 'level_name_en', l.name_en,
                   'people', coalesce(pp.public, '[]'::json))::text,
               json_build_object(
                   'id', g.id, 'code', g.code, 'name', g.name, 'level', g.level,
                   'level_name', l.name_zh, 'level_name_en', l.name_en,
                   'people', coalesce(pp.private, '[]'::json))::text,
               pp.fresh_until
          FROM grids g
          JOIN grid_levels l ON l.code = g.level
          LEFT JOIN LATERAL (
              SELECT json_agg({_PERSON} ORDER BY a.is_primary DESC, r.rank, p.name)
                         FILTER (WHERE {valid}) AS public,
                     json_agg({_PERSON}
                              || jsonb_build_object('mobile_phone', p.mobile_phone)
                              ORDER BY a.is_primary DESC, r.rank, p.name)
                         FILTER (WHERE {valid}) AS private,
                     min(CASE WHEN a.valid_from > at THEN a.valid_from
                              WHEN a.valid_to > at THEN a.valid_to END) AS fresh_until
                FROM grid_assignments a
                JOIN people p ON p.id = a.person_id
                JOIN assignment_roles r ON r.code = a.role
               WHERE a.grid_id = g.id AND (a.valid_to IS NULL OR a.valid_to > at)
          ) pp ON true
         WHERE g.id = ANY (ids)
    $$
    """


UPGRADE = [
    """
    CREATE TABLE grid_cards (
        grid_id bigint PRIMARY KEY,
        public text NOT NULL,
        private text NOT NULL,
        fresh_until timestamptz
    )
    """,
    """
    COMMENT ON TABLE grid_cards IS
        'Each current grid''s locate entry as JSON text (gis_grid_cards), kept by triggers.'
    """,
    """
    COMMENT ON COLUMN grid_cards.fresh_until IS
        'When an assignment of the grid starts or ends by the clock; the card is not used after.'
    """,
    cards_function(VALID_AT),
    # (Re)build the cards of the current grids among ``ids``; others lose theirs. Two
    # transactions refreshing the same card would each compute it from a snapshot without
    # the other's change (and the second INSERT would collide with the first): refreshes of a
    # card are serialised by a transaction-scoped advisory lock on its bucket (id % 1024, so
    # a statement touching many grids takes at most 1,024 locks), and the DELETE and INSERT
    # run after it, each with a fresh snapshot (READ COMMITTED) that sees the other's commit.
    """
    CREATE FUNCTION gis_refresh_grid_cards(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(71300, b)
           FROM (SELECT DISTINCT (i % 1024)::int AS b FROM unnest(ids) AS i ORDER BY 1) x;
        DELETE FROM grid_cards WHERE grid_id = ANY (ids);
        INSERT INTO grid_cards (grid_id, public, private, fresh_until)
        SELECT c.grid_id, c.public, c.private, c.fresh_until
          FROM gis_grid_cards(
                   ARRAY(SELECT id FROM grids WHERE id = ANY (ids) AND valid_to IS NULL),
                   now()) c;
    END $$
    """,
    # Build the cards current grids lack (after a bulk import, or a migration), in batches.
    """
    CREATE FUNCTION gis_fill_grid_cards(batch integer DEFAULT 50000) RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        total bigint := 0;
        ids bigint[];
    BEGIN
        LOOP
            ids := ARRAY(SELECT g.id FROM grids g
                          WHERE g.valid_to IS NULL
                            AND NOT EXISTS (SELECT 1 FROM grid_cards c WHERE c.grid_id = g.id)
                          LIMIT batch);
            EXIT WHEN cardinality(ids) = 0;
            PERFORM gis_refresh_grid_cards(ids);
            total := total + cardinality(ids);
        END LOOP;
        RETURN total;
    END $$
    """,
    "CREATE INDEX grid_cards_fresh_until_idx ON grid_cards (fresh_until)"
    " WHERE fresh_until IS NOT NULL",
    # Rebuild the cards the clock made stale (locate skips them meanwhile); the service
    # calls this every minute.
    """
    CREATE FUNCTION gis_refresh_due_grid_cards() RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        ids bigint[] := ARRAY(SELECT grid_id FROM grid_cards WHERE fresh_until <= now());
    BEGIN
        IF cardinality(ids) > 0 THEN
            PERFORM gis_refresh_grid_cards(ids);
        END IF;
        RETURN cardinality(ids);
    END $$
    """,
    # Which cards a statement made stale: the grids it wrote, the grids of the assignments it
    # wrote, the grids of the people it changed. Outside a bulk import they are rebuilt at once.
    f"""
    CREATE FUNCTION grid_cards_touch(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        IF cardinality(ids) = 0 THEN
            RETURN;
        END IF;
        IF {_BULK_OFF} THEN
            PERFORM gis_refresh_grid_cards(ids);
        ELSE
            -- The same locks as a refresh, so a concurrent fill cannot put back a card
            -- computed before this change.
            PERFORM pg_advisory_xact_lock(71300, b)
               FROM (SELECT DISTINCT (i % 1024)::int AS b FROM unnest(ids) AS i ORDER BY 1) x;
            DELETE FROM grid_cards WHERE grid_id = ANY (ids);
        END IF;
    END $$
    """,
    """
    CREATE FUNCTION grid_cards_from_grids() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM grid_cards_touch(ARRAY(SELECT id FROM old_rows));
        ELSE
            PERFORM grid_cards_touch(ARRAY(SELECT id FROM new_rows));
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION grid_cards_from_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM grid_cards_touch(ARRAY(SELECT DISTINCT grid_id FROM new_rows));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM grid_cards_touch(ARRAY(SELECT DISTINCT grid_id FROM old_rows));
        ELSE
            PERFORM grid_cards_touch(ARRAY(
                SELECT grid_id FROM new_rows UNION SELECT grid_id FROM old_rows));
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION grid_cards_from_people() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM grid_cards_touch(ARRAY(
            SELECT DISTINCT a.grid_id
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
              JOIN grid_assignments a ON a.person_id = n.id
             WHERE (n.name, n.work_phone, n.mobile_phone)
                   IS DISTINCT FROM (o.name, o.work_phone, o.mobile_phone)
               AND (a.valid_to IS NULL OR a.valid_to > now())));
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER grid_cards_{table}_{op.lower()} AFTER {op} ON {table}
            REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {fn}()
        """
        for table, fn in (
            ("grids", "grid_cards_from_grids"),
            ("grid_assignments", "grid_cards_from_assignments"),
        )
        for op, refs in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "NEW TABLE AS new_rows OLD TABLE AS old_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ),
    """
    CREATE TRIGGER grid_cards_people_update AFTER UPDATE ON people
        REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cards_from_people()
    """,
    # Level and role names are in every card: a change of those rare rows rebuilds them all.
    """
    CREATE FUNCTION grid_cards_rebuild_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM grid_cards;
        PERFORM gis_fill_grid_cards();
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER grid_cards_levels AFTER INSERT OR UPDATE OR DELETE ON grid_levels
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cards_rebuild_all()
    """,
    """
    CREATE TRIGGER grid_cards_roles AFTER INSERT OR UPDATE OR DELETE ON assignment_roles
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cards_rebuild_all()
    """,
    "SELECT gis_fill_grid_cards()",
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS grid_cards_roles ON assignment_roles",
    "DROP TRIGGER IF EXISTS grid_cards_levels ON grid_levels",
    "DROP TRIGGER IF EXISTS grid_cards_people_update ON people",
    *(
        f"DROP TRIGGER IF EXISTS grid_cards_{table}_{op} ON {table}"
        for table in ("grids", "grid_assignments")
        for op in ("insert", "update", "delete")
    ),
    "DROP FUNCTION IF EXISTS grid_cards_rebuild_all()",
    "DROP FUNCTION IF EXISTS grid_cards_from_people()",
    "DROP FUNCTION IF EXISTS grid_cards_from_assignments()",
    "DROP FUNCTION IF EXISTS grid_cards_from_grids()",
    "DROP FUNCTION IF EXISTS grid_cards_touch(bigint[])",
    "DROP FUNCTION IF EXISTS gis_fill_grid_cards(integer)",
    "DROP FUNCTION IF EXISTS gis_refresh_due_grid_cards()",
    "DROP FUNCTION IF EXISTS gis_refresh_grid_cards(bigint[])",
    "DROP FUNCTION IF EXISTS gis_grid_cards(bigint[], timestamptz)",
    "DROP TABLE IF EXISTS grid_cards",
]


def upgrade() -> None:
    """Create grid_cards, the function that builds an entry, the triggers; fill the cards."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the cards, their triggers and functions."""
    for statement in DOWNGRADE:
        op.execute(statement)
