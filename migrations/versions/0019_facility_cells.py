"""Facility cells: the thinned facility tiles (z14, z15) read pre-aggregated cells.

Below its detail zoom a facility tile keeps one facility per cell of a 32 × 32 lattice over
the tile, the lowest id standing for the others, with a count. Built on request, a city
z14 tile read and grouped ~24,000 facilities (~50 ms of a cache miss). ``facility_cells``
holds that grouping ready: for each thinned zoom z, a cell is the web-mercator tile of zoom
z + 5 (exactly 1/32 of a z tile per side, so the cells nest in the tiles) holding the
facility's key point (a point itself, a line the south-west corner of its box, as before),
with its lowest id, the count and that facility's tile columns and geometry. A tile reads
the cells whose standing facility lies in it (GiST, ~1,000 rows).

Kept by statement-level triggers on facilities: the cells of the rows written are rebuilt
(from the GiST index, cell by cell; a statement touching more than ``_MANY`` cells rebuilds
the table), and the tiles showing a cell's old or new standing facility are invalidated with
the tile cache's own gis_tiles_bump (revision 0011).

Revision ID: 0019_facility_cells
Revises: 0018_locate_cells
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0019_facility_cells"
down_revision = "0018_locate_cells"
branch_labels = None
depends_on = None

# The facility layer's thinned zooms: its minzoom up to below its detail zoom (a copy of
# gis_service.tiles; tests/test_tile_cache.py compares them).
ZOOMS = (14, 15)
CELL_SHIFT = 5  # 2**5 = 32 cells per tile side
_MANY = 10000

# The cell (tile of zoom {z} + 5) holding lon/lat: the slippy-map formulas.
_N = "(2.0 ^ ({z} + " + str(CELL_SHIFT) + "))"
_CX = "floor(({lon} + 180.0) / 360.0 * " + _N + ")::integer"
_CY = (
    "floor((1.0 - ln(tan(radians({lat})) + 1.0 / cos(radians({lat}))) / pi()) / 2.0 * "
    + _N
    + ")::integer"
)
# Its box in degrees, a hair wider so that a point on its edge is found by the && test.
_WEST = "({cx}::float8 / " + _N + " * 360.0 - 180.0 - 1e-9)"
_EAST = "(({cx} + 1)::float8 / " + _N + " * 360.0 - 180.0 + 1e-9)"
_NORTH = "(degrees(atan(sinh(pi() * (1.0 - 2.0 * {cy}::float8 / " + _N + ")))) + 1e-9)"
_SOUTH = "(degrees(atan(sinh(pi() * (1.0 - 2.0 * ({cy} + 1)::float8 / " + _N + ")))) - 1e-9)"


def cell_of(geom: str, z: str) -> tuple[str, str]:
    """(cx, cy) of the cell holding the key point of facility geometry ``geom`` at zoom z."""
    lon, lat = f"ST_XMin({geom})", f"ST_YMin({geom})"
    return _CX.format(lon=lon, z=z), _CY.format(lat=lat, z=z)


def _cell_box(z: str, cx: str, cy: str) -> str:
    return (
        f"ST_MakeEnvelope({_WEST.format(z=z, cx=cx)}, {_SOUTH.format(z=z, cy=cy)},"
        f" {_EAST.format(z=z, cx=cx)}, {_NORTH.format(z=z, cy=cy)}, 4326)"
    )


_ZOOMS = f"unnest(ARRAY{list(ZOOMS)}::smallint[]) AS zz (zoom)"
_FX, _FY = cell_of("f.geom", "zz.zoom")

# Every cell, from the whole table (the migration, and a statement writing many rows).
_FILL_ALL = f"""
    INSERT INTO facility_cells (zoom, cx, cy, id, n, code, name, type_code, status, geom)
    SELECT s.zoom, s.cx, s.cy, f.id, s.n, f.code, f.name, f.type_code, f.status, f.geom
      FROM (SELECT zz.zoom, {_FX} AS cx, {_FY} AS cy, min(f.id) AS id, count(*)::integer AS n
              FROM facilities f, {_ZOOMS}
             GROUP BY 1, 2, 3) s
      JOIN facilities f ON f.id = s.id
"""

# The trigger: the cells of the rows written (old and new) rebuilt from the table. plpgsql
# resolves a query when it runs it, so each event reads only the transition tables it has.
_KEYS = f"SELECT zz.zoom, {_FX} AS cx, {_FY} AS cy FROM {{rows}} f, {_ZOOMS}"
_TOUCHED = "unnest(zs, xs, ys) AS t (zoom, cx, cy)"
_SAME = "({c}.zoom, {c}.cx, {c}.cy) = (t.zoom, t.cx, t.cy)"
_TRIGGER = f"""
    CREATE FUNCTION facility_cells_from_facilities() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        zs smallint[];
        xs integer[];
        ys integer[];
        old_cells facility_cells[];
        shown geometry[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(k.zoom), array_agg(k.cx), array_agg(k.cy) INTO zs, xs, ys
              FROM ({_KEYS.format(rows="new_rows")} UNION {_KEYS.format(rows="new_rows")}) k;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(k.zoom), array_agg(k.cx), array_agg(k.cy) INTO zs, xs, ys
              FROM ({_KEYS.format(rows="old_rows")} UNION {_KEYS.format(rows="old_rows")}) k;
        ELSE
            SELECT array_agg(k.zoom), array_agg(k.cx), array_agg(k.cy) INTO zs, xs, ys
              FROM ({_KEYS.format(rows="new_rows")} UNION {_KEYS.format(rows="old_rows")}) k;
        END IF;
        IF zs IS NULL THEN
            RETURN NULL;
        END IF;
        IF cardinality(zs) > {_MANY} THEN
            -- The tile cache moves the whole layer for a statement this large (0011).
            TRUNCATE facility_cells;
            {_FILL_ALL};
            RETURN NULL;
        END IF;
        old_cells := ARRAY(
            SELECT c FROM facility_cells c JOIN {_TOUCHED} ON {_SAME.format(c="c")});
        DELETE FROM facility_cells c USING {_TOUCHED} WHERE {_SAME.format(c="c")};
        INSERT INTO facility_cells (zoom, cx, cy, id, n, code, name, type_code, status, geom)
        SELECT t.zoom, t.cx, t.cy, f.id, s.n, f.code, f.name, f.type_code, f.status, f.geom
          FROM {_TOUCHED}
          CROSS JOIN LATERAL (
              SELECT min(f.id) AS id, count(*)::integer AS n
                FROM facilities f, (SELECT t.zoom) zz
               WHERE f.geom && {_cell_box("t.zoom", "t.cx", "t.cy")}
                 AND {_FX} = t.cx AND {_FY} = t.cy
          ) s
          JOIN facilities f ON f.id = s.id;
        -- Tiles show a cell where its standing facility lies: those of the old and the new
        -- one change (a neighbour's margin included), unless the cell stayed as it was.
        shown := ARRAY(
            SELECT o.geom FROM unnest(old_cells) o
             WHERE NOT EXISTS (SELECT 1 FROM facility_cells m
                                WHERE (m.zoom, m.cx, m.cy, m.id, m.n)
                                      = (o.zoom, o.cx, o.cy, o.id, o.n))
            UNION ALL
            SELECT m.geom FROM facility_cells m JOIN {_TOUCHED} ON {_SAME.format(c="m")}
             WHERE NOT EXISTS (SELECT 1 FROM unnest(old_cells) o
                                WHERE (m.zoom, m.cx, m.cy, m.id, m.n)
                                      = (o.zoom, o.cx, o.cy, o.id, o.n)));
        PERFORM gis_tiles_bump('facilities', shown);
        RETURN NULL;
    END $$;
"""


def upgrade() -> None:
    """The cells from the facilities there are, their GiST indexes, and the triggers."""
    op.execute(
        """
        CREATE TABLE facility_cells (
            zoom smallint NOT NULL,
            cx integer NOT NULL,
            cy integer NOT NULL,
            id bigint NOT NULL,
            n integer NOT NULL,
            code text NOT NULL,
            name text,
            type_code text NOT NULL,
            status text NOT NULL,
            geom geometry(Geometry, 4326) NOT NULL,
            PRIMARY KEY (zoom, cx, cy)
        )
        """
    )
    op.execute(_FILL_ALL)
    for z in ZOOMS:
        # One index per zoom: the tile statement of each zoom names it as a literal.
        op.execute(
            f"CREATE INDEX facility_cells_z{z}_geom ON facility_cells USING gist (geom)"
            f" WHERE zoom = {z}"
        )
    op.execute("ANALYZE facility_cells")
    op.execute(_TRIGGER)
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "NEW TABLE AS new_rows OLD TABLE AS old_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER facility_cells_{event.lower()} AFTER {event} ON facilities"
            f" REFERENCING {refs} FOR EACH STATEMENT"
            " EXECUTE FUNCTION facility_cells_from_facilities()"
        )


def downgrade() -> None:
    """Drop the triggers, their function and the cells."""
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS facility_cells_{event} ON facilities")
    op.execute("DROP FUNCTION IF EXISTS facility_cells_from_facilities()")
    op.execute("DROP TABLE IF EXISTS facility_cells")
