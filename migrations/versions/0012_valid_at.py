"""One definition of "valid at a moment": gis_valid_at(valid_from, valid_to, at).

Grids and grid assignments carry a validity interval [valid_from, valid_to); the same
predicate was written out in some forty queries. It is now one SQL function, and the two
functions of revision 0001 that route points and people (gis_finest_grid,
gis_responsible_person) use it too.

The function is LANGUAGE sql, IMMUTABLE, not STRICT, with a single expression as its body:
PostgreSQL inlines such a function into the calling query before planning (see "Inlining of
SQL-Language Functions" in the PostgreSQL wiki), so the planner sees the very expression that
was written out before and uses the same GiST and partial indexes.

Revision ID: 0012_valid_at
Revises: 0011_tile_cache
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0012_valid_at"
down_revision = "0011_tile_cache"
branch_labels = None
depends_on = None

VALID_AT = """
    CREATE FUNCTION gis_valid_at(valid_from timestamptz, valid_to timestamptz, at timestamptz)
    RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT valid_from <= at AND (valid_to IS NULL OR valid_to > at)
    $$
"""

# The predicate each routing function is written with: the function above, or (to go back
# down) the expression revision 0001 wrote out.
_NEW = "gis_valid_at({t}.valid_from, {t}.valid_to, at)"
_OLD = "{t}.valid_from <= at AND ({t}.valid_to IS NULL OR {t}.valid_to > at)"


def _finest_grid(valid: str) -> str:
    """gis_finest_grid as revision 0001 defines it, with the validity predicate ``valid``."""
    probes = "".join(
        f"""
        SELECT g.id INTO hit
          FROM grid_parts p JOIN grids g ON g.id = p.grid_id
         WHERE p.rank = {rank} AND ST_Covers(p.geom, pt)
           AND {valid.format(t="g")}
         ORDER BY g.code, g.id
         LIMIT 1;
        IF hit IS NOT NULL THEN
            RETURN hit;
        END IF;
        """
        for rank in (4, 3, 2, 1)
    )
    return f"""
    CREATE OR REPLACE FUNCTION gis_finest_grid(pt geometry, at timestamptz DEFAULT now())
    RETURNS bigint LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET plan_cache_mode = force_generic_plan AS $$
    DECLARE
        hit bigint;
    BEGIN
    {probes}
        RETURN NULL;
    END $$
    """


def _responsible_person(valid: str) -> str:
    """gis_responsible_person as revision 0001 defines it, with the predicate ``valid``."""
    return f"""
    CREATE OR REPLACE FUNCTION gis_responsible_person(grid bigint, at timestamptz DEFAULT now())
    RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT a.person_id
          FROM grids g
          JOIN grid_assignments a ON a.grid_id = ANY (g.path)
         WHERE g.id = grid
           AND a.is_primary
           AND {valid.format(t="a")}
         ORDER BY array_position(g.path, a.grid_id) DESC
         LIMIT 1
    $$
    """


def upgrade() -> None:
    """Create gis_valid_at and route with it."""
    op.execute(VALID_AT)
    op.execute(_finest_grid(_NEW))
    op.execute(_responsible_person(_NEW))


def downgrade() -> None:
    """Write the predicate out again, then drop the function."""
    op.execute(_finest_grid(_OLD))
    op.execute(_responsible_person(_OLD))
    op.execute("DROP FUNCTION IF EXISTS gis_valid_at(timestamptz, timestamptz, timestamptz)")
