"""Batch locate in one set-based pass: ``gis_finest_grids(points, at)`` and SP-GiST parts.

The batch form of locate called ``gis_finest_grid`` once per point: 10,000 PL/pgSQL calls,
each running its probes as a statement of its own. ``gis_finest_grids`` routes a whole array
of points with one statement per level: every point probes the micro-grid level, only the
points left without a grid probe the next level up, and so on (bench/batch_locate.py).

The routing rule is written once, in ``_probe`` below: the territorial levels finest first
(rank 4 → 1), the parts' polygons covering the point (boundary included), the grid valid at
the moment, and on a boundary shared by two grids the smaller code (then id). Both functions
are built from it, so the single and the batch answers cannot drift apart
(tests/test_locate.py compares them point by point).

The per-level partial indexes of ``grid_parts`` become SP-GiST (PostGIS's quad-tree on
boxes) instead of GiST (R-tree): a point probe in a level of 100,000 small polygons visits
a few nodes of 16 children instead of comparing ~200 boxes per R-tree page, and measured
about twice as fast for the same answers (bench/batch_locate.py). Every query on
``grid_parts`` uses ``~`` or ``&&`` (ST_Covers, ST_Intersects), which SP-GiST serves.

Revision ID: 0017_batch_locate
Revises: 0016_grid_cards_valid_at
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0017_batch_locate"
down_revision = "0016_grid_cards_valid_at"
branch_labels = None
depends_on = None

RANKS = (1, 2, 3, 4, 5)
# Territorial levels, finest first; rank 5 (special grids) never routes a point.
ROUTING = (4, 3, 2, 1)


def _probe(rank: int, batch: bool) -> str:
    """The one statement of the routing rule at one level: from points ``q (n, pt)``, the
    grid covering each at ``at``, smallest code first (one row per point when ``batch``)."""
    pick = "DISTINCT ON (q.n) q.n, g.id, g.code, g.path" if batch else "g.id"
    order = "q.n, g.code, g.id" if batch else "g.code, g.id"
    return f"""
        SELECT {pick}
          FROM q
          JOIN grid_parts p ON p.rank = {rank} AND ST_Covers(p.geom, q.pt)
          JOIN grids g ON g.id = p.grid_id
         WHERE gis_valid_at(g.valid_from, g.valid_to, at)
         ORDER BY {order}"""


def _finest_grid() -> str:
    """gis_finest_grid(pt, at): the probes one level at a time, stopping at the first hit."""
    probes = "".join(
        f"""
        WITH q (n, pt) AS (SELECT 1, pt)
        {_probe(rank, batch=False)}
         LIMIT 1
          INTO hit;
        IF hit IS NOT NULL THEN
            RETURN hit;
        END IF;
        """
        for rank in ROUTING
    )
    # A generic plan is forced because PL/pgSQL would otherwise re-plan every call for the
    # point's value (revision 0001).
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


def _finest_grids() -> str:
    """gis_finest_grids(pts, at): (ordinal, grid id, code, path) for each point of the array,
    in order, NULL when outside; each level probes only the points the finer levels left
    without a grid. The grid's code and path come along from the probe that checked the
    grid's validity, so a caller needs no second lookup of 10,000 grids by id."""
    levels = []
    for i, rank in enumerate(ROUTING):
        left = "".join(
            f" AND NOT EXISTS (SELECT 1 FROM r{finer} WHERE r{finer}.n = q.n)"
            for finer in ROUTING[:i]
        )
        levels.append(
            f"""
        r{rank} AS MATERIALIZED (
            WITH q AS (SELECT * FROM pts_q q WHERE true{left})
            {_probe(rank, batch=True)}
        )"""
        )
    joins = " ".join(f"LEFT JOIN r{rank} ON r{rank}.n = q.n" for rank in ROUTING)
    found = ", ".join(
        f"coalesce({', '.join(f'r{rank}.{col}' for rank in ROUTING)})"
        for col in ("id", "code", "path")
    )
    # The planner of a generic plan takes the array for ten points, and so probes each
    # level's index once per point (a nested loop), which is right for any size: a spatial
    # predicate cannot be hashed or merged.
    return f"""
    CREATE OR REPLACE FUNCTION gis_finest_grids(pts geometry[], at timestamptz DEFAULT now())
    RETURNS TABLE (ord bigint, grid_id bigint, code text, path bigint[])
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET plan_cache_mode = force_generic_plan AS $$
    BEGIN
        RETURN QUERY
        WITH pts_q AS MATERIALIZED (
            SELECT u.n, u.pt FROM unnest(pts) WITH ORDINALITY AS u (pt, n)
        ),
        {",".join(levels)}
        SELECT q.n, {found}
          FROM pts_q q {joins}
         ORDER BY q.n;
    END $$
    """


def upgrade() -> None:
    """SP-GiST part indexes, and both routing functions from the one rule."""
    for rank in RANKS:
        op.execute(
            f"CREATE INDEX grid_parts_rank{rank}_spgist ON grid_parts USING spgist (geom)"
            f" WHERE rank = {rank}"
        )
        op.execute(f"DROP INDEX IF EXISTS grid_parts_rank{rank}_gist")
    op.execute(_finest_grid())
    op.execute(_finest_grids())


def downgrade() -> None:
    """Drop the batch function and go back to GiST (gis_finest_grid keeps its meaning)."""
    op.execute("DROP FUNCTION IF EXISTS gis_finest_grids(geometry[], timestamptz)")
    for rank in RANKS:
        op.execute(
            f"CREATE INDEX grid_parts_rank{rank}_gist ON grid_parts USING gist (geom)"
            f" WHERE rank = {rank}"
        )
        op.execute(f"DROP INDEX IF EXISTS grid_parts_rank{rank}_spgist")
