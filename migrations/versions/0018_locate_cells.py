"""Locate cells: the micro-grid level's parts keyed by a regular lon/lat cell, for btree probes.

A point probe into the SP-GiST index of a level of 100,000 micro-grid parts costs ~30 µs
(box comparisons at every quad-tree node); a btree probe on an integer ~4 µs. ``grid_cells``
lists each rank-4 part (micro-grid, the level nearly every point routes to) once per cell of
a regular lattice (``CELL`` degrees) that its bounding box touches, with the part's box, its
polygon and its grid's code, path and validity. A point's cell is computed from its
coordinates, and one btree probe returns every part that may cover it; the box columns and
then ST_Covers pick the exact answer. The index INCLUDEs every column a probe reads, so a
probe is an index-only scan whose entries lie in cell order: no heap page per candidate.

Completeness: a part covering a point has the point inside its box; ``floor(v / CELL)`` is
monotone in ``v``, so the point's cell lies within the cells listed for that part. A part
whose box would span more than ``FINE_MAX`` cells (a large rural micro-grid) is listed in
the cells of a coarser lattice (``COARSE`` = 64 × ``CELL``) instead, and a point probes its
fine and its coarse cell: the table stays ~2 rows per part whatever the sizes.

Kept by statement-level triggers (set-based, so a bulk import of 100,000 parts costs one
INSERT ... SELECT): parts inserted, deleted or updated, and a grid's code, path or validity
changed. The routing rule itself is unchanged (finest level first, boundary included, valid
at the moment, smaller code then id on a shared edge): revision 0017's template now reads the
micro-grid level from ``grid_cells`` in both the single and the batch function, so the two
still cannot drift (tests/test_locate.py); tests/test_locate_cells.py checks the triggers.

Revision ID: 0018_locate_cells
Revises: 0017_batch_locate
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from gis_service.db.migrate import revision_module

revision = "0018_locate_cells"
down_revision = "0017_batch_locate"
branch_labels = None
depends_on = None

# ~46 m × 55 m at 34.6° N: about one city micro-grid, so a part is listed ~2-3 times and a
# cell holds ~5 candidates, which the box columns reject before any polygon test.
CELL = 0.0005
COARSE = CELL * 64
FINE_MAX = 64
CELL_RANK = 4
# Every column a probe reads, in the index so a probe never visits the heap.
_PROBED = "x0, y0, x1, y1, grid_id, code, path, valid_from, valid_to, geom"


# Revision 0017 holds the routing rule's template for the levels above the micro-grids.
BEFORE = revision_module("0017_batch_locate")
# Territorial levels, finest first; rank 5 (special grids) never routes a point.
ROUTING = BEFORE.ROUTING


def _index(v: str, size: str) -> str:
    """The lattice index of coordinate ``v``, shifted to be non-negative (|v| ≤ 180)."""
    return f"(floor(({v}) / CAST({size} AS float8))::bigint + 1048576)"


def _key(ix: str, iy: str, level: str) -> str:
    """A cell's key from its lattice indexes: the level, then x, then y (21 bits each)."""
    return f"(CAST({level} AS bigint) * 4398046511104 + {ix} * 2097152 + {iy})"


# Whether any part is listed on the coarse lattice: when none is (a city's micro-grids), a
# point skips the probe of its coarse cell (a btree descent, ~10% of a batch).
_ANY_COARSE = f"EXISTS (SELECT 1 FROM grid_cells WHERE cell >= {_key('0', '0', '1')})"


def cells_of(x: str, y: str) -> str:
    """The keys a point (x, y) probes: its fine cell, and its coarse cell if there are any
    (``any_coarse``, a variable of the calling function)."""
    fine = _key(_index(x, str(CELL)), _index(y, str(CELL)), "0")
    coarse = _key(_index(x, str(COARSE)), _index(y, str(COARSE)), "1")
    return f"CASE WHEN any_coarse THEN ARRAY[{fine}, {coarse}] ELSE ARRAY[{fine}] END"


def _fill(parts: str) -> str:
    """Insert the cells of the rank-4 parts in ``parts`` (id, grid_id, rank, geom)."""
    span = (
        f"({_index('ST_XMax(p.geom)', str(CELL))} - {_index('ST_XMin(p.geom)', str(CELL))} + 1)"
        f" * ({_index('ST_YMax(p.geom)', str(CELL))} - {_index('ST_YMin(p.geom)', str(CELL))}"
        " + 1)"
    )
    return f"""
        INSERT INTO grid_cells (cell, part_id, {_PROBED})
        SELECT {_key("i", "j", "s.coarse")},
               p.id, ST_XMin(p.geom), ST_YMin(p.geom), ST_XMax(p.geom), ST_YMax(p.geom),
               g.id, g.code, g.path, g.valid_from, g.valid_to, p.geom
          FROM {parts} p
          JOIN grids g ON g.id = p.grid_id
          CROSS JOIN LATERAL (
              SELECT CASE WHEN {span} > {FINE_MAX} THEN 1 ELSE 0 END AS coarse) s
          CROSS JOIN LATERAL (
              SELECT CASE s.coarse WHEN 1 THEN {COARSE} ELSE {CELL} END AS size) z
          CROSS JOIN LATERAL generate_series(
              {_index("ST_XMin(p.geom)", "z.size")}, {_index("ST_XMax(p.geom)", "z.size")}) i
          CROSS JOIN LATERAL generate_series(
              {_index("ST_YMin(p.geom)", "z.size")}, {_index("ST_YMax(p.geom)", "z.size")}) j
         WHERE p.rank = {CELL_RANK}
    """


def _covering(rank: int) -> str:
    """The routing rule at one level, for one point ``q (pt, x, y)``: the grids of that level
    whose polygon covers the point (boundary included) and that are valid at ``at``, as
    (id, code, path). A caller takes the smallest code, then id (``_FIRST``)."""
    if rank == CELL_RANK:
        # The parts listed in the point's cells, their box around the point, then the polygon.
        return f"""
            SELECT c.grid_id AS id, c.code, c.path
              FROM grid_cells c
             WHERE c.cell = ANY ({cells_of("q.x", "q.y")})
               AND c.x0 <= q.x AND q.x <= c.x1 AND c.y0 <= q.y AND q.y <= c.y1
               AND ST_Covers(c.geom, q.pt)
               AND gis_valid_at(c.valid_from, c.valid_to, at)"""
    return f"""
            SELECT g.id, g.code, g.path
              FROM grid_parts p JOIN grids g ON g.id = p.grid_id
             WHERE p.rank = {rank} AND ST_Covers(p.geom, q.pt)
               AND gis_valid_at(g.valid_from, g.valid_to, at)"""


# On a boundary shared by two grids of a level, the smaller code wins (then the smaller id).
_FIRST = "ORDER BY 2, 1 LIMIT 1"


def _finest_grid() -> str:
    """gis_finest_grid(pt, at): the levels one at a time, stopping at the first hit."""
    probes = "".join(
        f"""
        SELECT h.id INTO hit
          FROM (SELECT pt, ST_X(pt) AS x, ST_Y(pt) AS y) q,
               LATERAL ({_covering(rank)}
                   {_FIRST}) h;
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
        any_coarse boolean := {_ANY_COARSE};
    BEGIN
    {probes}
        RETURN NULL;
    END $$
    """


def _finest_grids() -> str:
    """gis_finest_grids(pts, at): (ordinal, grid id, code, path) for each point of the array,
    in order, NULL when outside. Each level keeps one row per point it was given, with its
    grid or NULLs, and passes only the NULLs on to the next level up: no anti-join, whose
    plan would hang on the planner's guess of how many points each level finds (a nested
    loop over two CTEs of 10,000 rows took 13 s). The points are probed in cell order, so
    consecutive probes read the same index pages while they are still in the CPU's cache
    (about twice as fast as input order)."""
    levels = []
    source = "pts_q"
    for rank in ROUTING:
        keep = "" if source == "pts_q" else " WHERE q.id IS NULL"
        levels.append(
            f"""
        l{rank} AS MATERIALIZED (
            SELECT q.n, q.pt, q.x, q.y, h.id, h.code, h.path
              FROM {source} q
              LEFT JOIN LATERAL ({_covering(rank)}
                  {_FIRST}) h ON true{keep}
        )"""
        )
        source = f"l{rank}"
    found = " UNION ALL ".join(
        f"SELECT l.n, l.id, l.code, l.path FROM l{rank} l"
        + (" WHERE l.id IS NOT NULL" if rank != ROUTING[-1] else "")
        for rank in ROUTING
    )
    return f"""
    CREATE OR REPLACE FUNCTION gis_finest_grids(pts geometry[], at timestamptz DEFAULT now())
    RETURNS TABLE (ord bigint, grid_id bigint, code text, path bigint[])
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET plan_cache_mode = force_generic_plan AS $$
    DECLARE
        any_coarse boolean := {_ANY_COARSE};
    BEGIN
        RETURN QUERY
        WITH pts_q AS MATERIALIZED (
            SELECT u.n, u.pt, ST_X(u.pt) AS x, ST_Y(u.pt) AS y,
                   NULL::bigint AS id, NULL::text AS code, NULL::bigint[] AS path
              FROM unnest(pts) WITH ORDINALITY AS u (pt, n)
             ORDER BY {_index("ST_X(u.pt)", str(CELL))}, {_index("ST_Y(u.pt)", str(CELL))}
        ),
        {",".join(levels)}
        SELECT r.n, r.id, r.code, r.path
          FROM ({found}) r
         ORDER BY r.n;
    END $$
    """


def cells_function(fill: str, create: str = "CREATE") -> str:
    """grid_cells_from_parts(): the cells of the parts a statement deleted go, and ``fill``
    (an INSERT of the cells of the parts in ``new_parts``) lists those it inserted."""
    return f"""
    {create} FUNCTION grid_cells_from_parts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            DELETE FROM grid_cells c USING old_parts o
             WHERE o.rank = {CELL_RANK} AND c.grid_id = o.grid_id AND c.part_id = o.id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            {fill};
        END IF;
        RETURN NULL;
    END $$"""


# Triggers: parts in → their cells in; parts out → their cells out; a grid's code, path or
# validity changed → its cells follow. Statement-level with transition tables: set-based.
_TRIGGERS = f"""{cells_function(_fill("new_parts"))};
    CREATE TRIGGER grid_cells_parts_insert AFTER INSERT ON grid_parts
        REFERENCING NEW TABLE AS new_parts
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_from_parts();
    CREATE TRIGGER grid_cells_parts_delete AFTER DELETE ON grid_parts
        REFERENCING OLD TABLE AS old_parts
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_from_parts();
    CREATE TRIGGER grid_cells_parts_update AFTER UPDATE ON grid_parts
        REFERENCING OLD TABLE AS old_parts NEW TABLE AS new_parts
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_from_parts();
    CREATE FUNCTION grid_cells_parts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE grid_cells;
        RETURN NULL;
    END $$;
    CREATE TRIGGER grid_cells_parts_truncate AFTER TRUNCATE ON grid_parts
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_parts_truncate();
    CREATE FUNCTION grid_cells_from_grids() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE grid_cells c
           SET code = n.code, path = n.path, valid_from = n.valid_from, valid_to = n.valid_to
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE c.grid_id = n.id
           AND (n.code, n.path, n.valid_from, n.valid_to)
               IS DISTINCT FROM (o.code, o.path, o.valid_from, o.valid_to);
        RETURN NULL;
    END $$;
    CREATE TRIGGER grid_cells_grids_update AFTER UPDATE ON grids
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION grid_cells_from_grids();
"""


def upgrade() -> None:
    """The cell table, filled from the parts there are; its triggers; both routing functions."""
    op.execute(
        """
        CREATE TABLE grid_cells (
            cell bigint NOT NULL,
            part_id bigint NOT NULL,
            x0 float8 NOT NULL,
            y0 float8 NOT NULL,
            x1 float8 NOT NULL,
            y1 float8 NOT NULL,
            grid_id bigint NOT NULL,
            code text NOT NULL,
            path bigint[] NOT NULL,
            valid_from timestamptz NOT NULL,
            valid_to timestamptz,
            geom geometry(Polygon, 4326) NOT NULL
        )
        """
    )
    op.execute(_fill("grid_parts"))
    op.execute(f"CREATE INDEX grid_cells_probe ON grid_cells (cell) INCLUDE ({_PROBED})")
    op.execute("CREATE INDEX grid_cells_grid_idx ON grid_cells (grid_id)")
    op.execute("ANALYZE grid_cells")
    op.execute(_TRIGGERS)
    op.execute(_finest_grid())
    op.execute(_finest_grids())


def downgrade() -> None:
    """Revision 0017's routing functions again, then drop the cells and their triggers."""
    op.execute(BEFORE._finest_grid())
    op.execute(BEFORE._finest_grids())
    for trigger in ("parts_insert", "parts_delete", "parts_update", "parts_truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS grid_cells_{trigger} ON grid_parts")
    op.execute("DROP TRIGGER IF EXISTS grid_cells_grids_update ON grids")
    op.execute("DROP FUNCTION IF EXISTS grid_cells_from_parts()")
    op.execute("DROP FUNCTION IF EXISTS grid_cells_parts_truncate()")
    op.execute("DROP FUNCTION IF EXISTS grid_cells_from_grids()")
    op.execute("DROP TABLE IF EXISTS grid_cells")
