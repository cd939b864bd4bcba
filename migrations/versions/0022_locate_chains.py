"""Locate chains: each grid's whole public chain kept as ready JSON beside its card.

Locate answers with the chain of grids over a point (street › community › grid › micro-grid),
each entry from its card (revision 0010), plus the special grids (专属网格) covering the point.
Assembling the chain (the path unnested, one card probe per level, each behind a fall-back
to the live definition) and probing the special-grid level cost ~45% of the statement's
backend CPU on the demo district, even where no special grid lies near. ``grid_cards`` now
also keeps, per current grid:

- ``chain``: the public entries of its path, street first, joined as locate joins them, the
  ancestors closed with ``"open_hazards" : null``, the grid's own entry left open for the
  count locate splices in (the one part computed per request); NULL while a card of the path
  is missing (after a bulk import, until the fill);
- ``chain_fresh_until``: the earliest ``fresh_until`` of the path's cards;
- ``specials``: whether any special-grid part's box overlaps the grid's box. A point covered
  by a special grid lies in its finest grid, so the two boxes overlap: where this is false,
  locate skips the probe. Validity is not looked at (a superset is safe).

Locate for a caller who sees no private field, asking about now, reads one card row; any
other caller, a missing or stale chain, falls back to the statement that builds the chain
level by level (gis_service/grids/sql.py); tests/test_grid_cards.py checks that both answer
alike after every kind of write.

Consistency: a chain depends on other rows (its ancestors' cards, the special parts), so a
transaction computing chains from its snapshot could miss a concurrent one's change. Every
refresh of cards, chains and flags therefore takes one transaction-scoped advisory lock
first (replacing revision 0010's per-bucket locks, which only ordered refreshes of the same
card) and computes in statements that start after it, each with a fresh snapshot (READ
COMMITTED) that sees every earlier refresh's commit. Card writes are rare (people,
assignments, grid edits); hazard writes never take it.

Revision ID: 0022_locate_chains
Revises: 0021_parts_gist
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from gis_service.db.migrate import revision_module

revision = "0022_locate_chains"
down_revision = "0021_parts_gist"
branch_labels = None
depends_on = None

CARDS = revision_module("0010_grid_cards")
_BULK_OFF = CARDS._BULK_OFF
# The one lock every refresh of cards, chains and special flags takes (see above).
_LOCK = "PERFORM pg_advisory_xact_lock(71301, 0);"
SPECIAL_RANK = 5

# Whether a special-grid part's box overlaps the box of grid ``g``.
_SPECIALS = (
    f"EXISTS (SELECT 1 FROM grid_parts s WHERE s.rank = {SPECIAL_RANK} AND s.geom && g.geom)"
)

UPGRADE = [
    """
    ALTER TABLE grid_cards
        ADD COLUMN chain text,
        ADD COLUMN chain_fresh_until timestamptz,
        ADD COLUMN specials boolean NOT NULL DEFAULT true
    """,
    """
    COMMENT ON COLUMN grid_cards.chain IS
        'The public locate chain of the grid''s path as JSON text, its own entry left open'
        ' (gis_grid_chains); NULL while a card of the path is missing.'
    """,
    "CREATE INDEX grid_cards_chain_missing_idx ON grid_cards (grid_id) WHERE chain IS NULL",
    # The one definition of a chain, used by the refresh and by the tests.
    f"""
    CREATE FUNCTION gis_grid_chains(ids bigint[])
    RETURNS TABLE (grid_id bigint, chain text, fresh_until timestamptz, specials boolean)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT g.id,
               CASE WHEN count(a.grid_id) = cardinality(g.path) THEN
                   '[' || string_agg(
                       CASE WHEN u.gid = g.id THEN left(a.public, -1)
                            ELSE left(a.public, -1) || ', "open_hazards" : null}}' END,
                       ', ' ORDER BY u.ord)
               END,
               min(a.fresh_until),
               {_SPECIALS}
          FROM grids g
          CROSS JOIN LATERAL unnest(g.path) WITH ORDINALITY AS u (gid, ord)
          LEFT JOIN grid_cards a ON a.grid_id = u.gid
         WHERE g.id = ANY (ids)
         GROUP BY g.id
    $$
    """,
    # The current grids in ``ids`` and below them (their path holds one). A few ids: the GIN
    # index on path. Many (a bulk write, every grid's person): ``path && ids`` compares each
    # path with the whole array, quadratic (hours for 100,000 ids), so the paths are
    # unnested and hash-joined with the ids instead, each side materialised once and nested
    # loops off: joined laterally, the planner hashed each grid's path and probed it with
    # every id (quadratic again).
    """
    CREATE FUNCTION gis_grids_under(ids bigint[]) RETURNS TABLE (id bigint)
    LANGUAGE plpgsql STABLE SET enable_nestloop = off AS $$
    BEGIN
        IF cardinality(ids) <= 64 THEN
            RETURN QUERY SELECT g.id FROM grids g WHERE g.path && ids AND g.valid_to IS NULL;
        ELSE
            RETURN QUERY
            WITH s AS MATERIALIZED (SELECT DISTINCT i FROM unnest(ids) AS i),
                 p AS MATERIALIZED (SELECT g.id, u.gid
                                      FROM grids g, unnest(g.path) AS u (gid)
                                     WHERE g.valid_to IS NULL)
            SELECT DISTINCT p.id FROM p JOIN s ON s.i = p.gid;
        END IF;
    END $$
    """,
    # The chains of the current grids in ``ids`` and below them.
    """
    CREATE FUNCTION gis_refresh_grid_chains(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        UPDATE grid_cards k
           SET chain = c.chain, chain_fresh_until = c.fresh_until, specials = c.specials
          FROM gis_grid_chains(ARRAY(SELECT id FROM gis_grids_under(ids))) c
         WHERE k.grid_id = c.grid_id;
    END $$
    """,
    # Cards of ``ids`` rebuilt from the live definition (current grids only), chains untouched.
    """
    CREATE FUNCTION gis_build_grid_cards(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        DELETE FROM grid_cards WHERE grid_id = ANY (ids);
        INSERT INTO grid_cards (grid_id, public, private, fresh_until)
        SELECT c.grid_id, c.public, c.private, c.fresh_until
          FROM gis_grid_cards(
                   ARRAY(SELECT id FROM grids WHERE id = ANY (ids) AND valid_to IS NULL),
                   now()) c;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION gis_refresh_grid_cards(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        {_LOCK}
        PERFORM gis_build_grid_cards(ids);
        PERFORM gis_refresh_grid_chains(ids);
    END $$
    """,
    # Missing cards first (in batches), then every missing chain in one pass: a chain is
    # built once, after all the cards of its path.
    f"""
    CREATE OR REPLACE FUNCTION gis_fill_grid_cards(batch integer DEFAULT 50000) RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        total bigint := 0;
        ids bigint[];
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM grids g WHERE g.valid_to IS NULL
                          AND NOT EXISTS (SELECT 1 FROM grid_cards c WHERE c.grid_id = g.id))
           AND NOT EXISTS (SELECT 1 FROM grid_cards WHERE chain IS NULL) THEN
            RETURN 0;
        END IF;
        {_LOCK}
        LOOP
            ids := ARRAY(SELECT g.id FROM grids g
                          WHERE g.valid_to IS NULL
                            AND NOT EXISTS (SELECT 1 FROM grid_cards c WHERE c.grid_id = g.id)
                          LIMIT batch);
            EXIT WHEN cardinality(ids) = 0;
            PERFORM gis_build_grid_cards(ids);
            total := total + cardinality(ids);
        END LOOP;
        UPDATE grid_cards k
           SET chain = c.chain, chain_fresh_until = c.fresh_until, specials = c.specials
          FROM gis_grid_chains(ARRAY(SELECT grid_id FROM grid_cards WHERE chain IS NULL)) c
         WHERE k.grid_id = c.grid_id AND c.chain IS NOT NULL;
        RETURN total;
    END $$
    """,
    # Outside a bulk import, stale cards (and the chains below them) are rebuilt at once;
    # inside one, they are dropped and the chains below them emptied until the fill.
    f"""
    CREATE OR REPLACE FUNCTION grid_cards_touch(ids bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        IF cardinality(ids) = 0 THEN
            RETURN;
        END IF;
        IF {_BULK_OFF} THEN
            PERFORM gis_refresh_grid_cards(ids);
        ELSE
            {_LOCK}
            DELETE FROM grid_cards WHERE grid_id = ANY (ids);
            UPDATE grid_cards SET chain = NULL
             WHERE chain IS NOT NULL AND grid_id IN (SELECT id FROM gis_grids_under(ids));
        END IF;
    END $$
    """,
    # A special grid drawn, redrawn or removed: the flags of the grids whose box its parts'
    # boxes overlap are set again.
    f"""
    CREATE FUNCTION grid_cards_from_special_parts() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        changed geometry[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            changed := ARRAY(SELECT geom FROM new_rows WHERE rank = {SPECIAL_RANK});
        ELSIF TG_OP = 'DELETE' THEN
            changed := ARRAY(SELECT geom FROM old_rows WHERE rank = {SPECIAL_RANK});
        ELSE
            changed := ARRAY(SELECT geom FROM new_rows WHERE rank = {SPECIAL_RANK}
                             UNION ALL
                             SELECT geom FROM old_rows WHERE rank = {SPECIAL_RANK});
        END IF;
        IF cardinality(changed) = 0 THEN
            RETURN NULL;
        END IF;
        {_LOCK}
        UPDATE grid_cards k SET specials = {_SPECIALS}
          FROM grids g
         WHERE g.id = k.grid_id
           AND g.id IN (SELECT n.id FROM unnest(changed) AS c (geom)
                          JOIN grids n ON n.geom && c.geom);
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER grid_cards_special_parts_{op.lower()} AFTER {op} ON grid_parts
            REFERENCING {refs} FOR EACH STATEMENT
            EXECUTE FUNCTION grid_cards_from_special_parts()
        """
        for op, refs in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "NEW TABLE AS new_rows OLD TABLE AS old_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ),
    "SELECT gis_fill_grid_cards()",
]


def _revision_0010(name: str) -> str:
    """Revision 0010's definition of function ``name``, to put back on downgrade."""
    for statement in CARDS.UPGRADE:
        if statement.strip().startswith(f"CREATE FUNCTION {name}("):
            return statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    raise LookupError(name)


DOWNGRADE = [
    *(
        f"DROP TRIGGER IF EXISTS grid_cards_special_parts_{op} ON grid_parts"
        for op in ("insert", "update", "delete")
    ),
    "DROP FUNCTION IF EXISTS grid_cards_from_special_parts()",
    _revision_0010("grid_cards_touch"),
    _revision_0010("gis_fill_grid_cards"),
    _revision_0010("gis_refresh_grid_cards"),
    "DROP FUNCTION IF EXISTS gis_build_grid_cards(bigint[])",
    "DROP FUNCTION IF EXISTS gis_refresh_grid_chains(bigint[])",
    "DROP FUNCTION IF EXISTS gis_grid_chains(bigint[])",
    "DROP FUNCTION IF EXISTS gis_grids_under(bigint[])",
    "DROP INDEX IF EXISTS grid_cards_chain_missing_idx",
    "ALTER TABLE grid_cards DROP COLUMN chain, DROP COLUMN chain_fresh_until, DROP COLUMN specials",
]


def upgrade() -> None:
    """Add the chain columns, their functions and triggers; build every chain."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the chains; revision 0010's refresh functions again."""
    for statement in DOWNGRADE:
        op.execute(statement)
