"""Tile cache: vector tiles kept in PostgreSQL, keyed by layer, z/x/y and data versions.

A tile is valid while its layer's version (``tile_layer_versions``: moved by a grid redraw,
a change of leaders, or any statement writing more than 1,000 rows) and its own version
(``tile_versions``: moved for the tiles a changed hazard or facility touches, at every zoom
of the layers it shows in) are what they were when it was built, and its ``expires_at``
(the next moment its content changes by the clock alone: a deadline passing makes a hazard
overdue, a grid version or an assignment starting) has not passed. The versions are read
in the same snapshot as the data the tile is built from, so a tile built while a change
commits is stored under the old version and never served after it.

Which zooms each layer has lives in ``tile_layers``, synced from gis_service.tiles.layers at
start-up.

Revision ID: 0011_tile_cache
Revises: 0010_grid_cards
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0011_tile_cache"
down_revision = "0010_grid_cards"
branch_labels = None
depends_on = None

# The clip buffer, in tiles (64 of 4096 units).
_MARGIN = "64.0 / 4096"
# More rows than this in one statement move the whole layer's version instead.
_MANY = 1000
# A frozen copy of gis_service.hazards.states.CLOSED_STATUSES (a test compares them): an open
# hazard is one whose status is not among them, on the row alias {t}.
CLOSED_STATUSES = ("closed", "rejected", "voided")
_OPEN = "{t}.status NOT IN (" + ", ".join(f"'{s}'" for s in CLOSED_STATUSES) + ")"

UPGRADE = [
    """
    CREATE TABLE tile_layers (
        layer text PRIMARY KEY,
        minzoom smallint NOT NULL,
        maxzoom smallint NOT NULL
    )
    """,
    """
    INSERT INTO tile_layers (layer, minzoom, maxzoom) VALUES
        ('grids_street', 10, 18), ('grids_community', 12, 18), ('grids_grid', 13, 18),
        ('grids_micro_grid', 15, 18), ('grids_special', 14, 18), ('facilities', 14, 18),
        ('hazards', 12, 18)
    """,
    """
    CREATE TABLE tile_layer_versions (
        layer text PRIMARY KEY,
        version bigint NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE tile_versions (
        layer text NOT NULL,
        z smallint NOT NULL,
        x integer NOT NULL,
        y integer NOT NULL,
        version bigint NOT NULL,
        PRIMARY KEY (layer, z, x, y)
    )
    """,
    """
    CREATE TABLE tile_cache (
        layer text NOT NULL,
        z smallint NOT NULL,
        x integer NOT NULL,
        y integer NOT NULL,
        layer_version bigint NOT NULL,
        tile_version bigint NOT NULL,
        etag text NOT NULL,
        data bytea NOT NULL,
        gz bytea,
        expires_at timestamptz,
        built_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (layer, z, x, y)
    )
    """,
    "COMMENT ON TABLE tile_cache IS 'Built vector tiles; see migration 0011 for validity.'",
    "COMMENT ON COLUMN tile_cache.gz IS 'The data gzip-compressed, added once built.'",
    # The tiles of zooms zmin..zmax that a WGS84 box touches, clip buffer included (a feature
    # within the buffer of a tile is drawn in it too). Slippy-map arithmetic in tile units
    # (web-mercator is linear in them), so no ST_Transform per call; PL/pgSQL with a small ROWS
    # so that the DISTINCT over its rows is planned for what it returns.
    f"""
    CREATE FUNCTION gis_tiles_over(box geometry, zmin integer, zmax integer)
    RETURNS TABLE (z integer, x integer, y integer)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 20 AS $$
    DECLARE
        x0 float8 := ST_XMin(box);
        x1 float8 := ST_XMax(box);
        -- north edge first: tile rows count from the north
        yn float8 := radians(least(ST_YMax(box), 85.0511));
        ys float8 := radians(greatest(ST_YMin(box), -85.0511));
        n integer;
    BEGIN
        FOR zz IN zmin .. zmax LOOP
            n := 1 << zz;
            RETURN QUERY
            SELECT zz, xx, yy
              FROM generate_series(
                       greatest(0, floor((x0 + 180) / 360 * n - {_MARGIN})::integer),
                       least(n - 1, floor((x1 + 180) / 360 * n + {_MARGIN})::integer)) AS xx,
                   generate_series(
                       greatest(0, floor((1 - asinh(tan(yn)) / pi()) / 2 * n - {_MARGIN})::int),
                       least(n - 1, floor((1 - asinh(tan(ys)) / pi()) / 2 * n + {_MARGIN})::int))
                       AS yy;
        END LOOP;
    END $$
    """,
    """
    CREATE FUNCTION gis_tile_layer_bump(layers text[]) RETURNS void
    LANGUAGE sql VOLATILE AS $$
        INSERT INTO tile_layer_versions (layer, version)
        SELECT DISTINCT l, 1 FROM unnest(layers) AS l
        ON CONFLICT (layer) DO UPDATE SET version = tile_layer_versions.version + 1;
    $$
    """,
    # Move the version of every tile of ``layer`` that one of ``boxes`` touches; with many
    # boxes (a bulk load), move the layer's version instead.
    f"""
    CREATE FUNCTION gis_tiles_bump(tile_layer text, boxes geometry[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        zmin integer;
        zmax integer;
    BEGIN
        IF coalesce(cardinality(boxes), 0) = 0 THEN
            RETURN;
        END IF;
        IF cardinality(boxes) > {_MANY} THEN
            PERFORM gis_tile_layer_bump(ARRAY[tile_layer]);
            RETURN;
        END IF;
        SELECT l.minzoom, l.maxzoom INTO zmin, zmax FROM tile_layers l WHERE l.layer = tile_layer;
        IF zmin IS NULL THEN
            RETURN;
        END IF;
        -- In key order, so that two writers bumping overlapping tiles lock them in the same
        -- order and cannot deadlock.
        INSERT INTO tile_versions AS v (layer, z, x, y, version)
        SELECT DISTINCT tile_layer, t.z, t.x, t.y, 1
          FROM unnest(boxes) AS b, gis_tiles_over(b, zmin, zmax) AS t
         WHERE b IS NOT NULL
         ORDER BY 2, 3, 4
        ON CONFLICT ON CONSTRAINT tile_versions_pkey DO UPDATE SET version = v.version + 1;
    END $$
    """,
    # Hazards: what a tile shows of an open hazard, and the open-hazard counts of the grids
    # and micro-grids of its routed chain (the two grid layers that carry counts). A
    # statement-level trigger names only the transition tables its event has, so each event
    # reads its own (plpgsql resolves a query when it runs it).
    f"""
    CREATE FUNCTION tile_cache_from_hazards() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        shown geometry[];
        counted bigint[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            shown := ARRAY(SELECT geom FROM new_rows WHERE {_OPEN.format(t="new_rows")});
            counted := ARRAY(SELECT DISTINCT unnest(grid_path) FROM new_rows
                              WHERE {_OPEN.format(t="new_rows")});
        ELSIF TG_OP = 'DELETE' THEN
            shown := ARRAY(SELECT geom FROM old_rows WHERE {_OPEN.format(t="old_rows")});
            counted := ARRAY(SELECT DISTINCT unnest(grid_path) FROM old_rows
                              WHERE {_OPEN.format(t="old_rows")});
        ELSE
            shown := ARRAY(
                SELECT v.g
                  FROM new_rows n JOIN old_rows o USING (id),
                       LATERAL (VALUES (CASE WHEN {_OPEN.format(t="n")} THEN n.geom END),
                                       (CASE WHEN {_OPEN.format(t="o")} THEN o.geom END)) AS v (g)
                 WHERE v.g IS NOT NULL
                   AND (n.geom, n.status, n.category_code, n.severity, n.public_code,
                        n.reported_at, n.due_at, n.grid_path)
                       IS DISTINCT FROM
                       (o.geom, o.status, o.category_code, o.severity, o.public_code,
                        o.reported_at, o.due_at, o.grid_path));
            counted := ARRAY(
                SELECT DISTINCT p
                  FROM new_rows n JOIN old_rows o USING (id),
                       unnest(n.grid_path || o.grid_path) AS p
                 WHERE n.grid_path IS DISTINCT FROM o.grid_path
                    OR {_OPEN.format(t="n")} IS DISTINCT FROM {_OPEN.format(t="o")});
        END IF;
        PERFORM gis_tiles_bump('hazards', shown);
        PERFORM gis_tiles_bump('grids_' || g.level, array_agg(g.geom))
           FROM grids g
          WHERE g.id = ANY (counted) AND g.level IN ('grid', 'micro_grid')
          GROUP BY g.level;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tile_cache_from_facilities() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM gis_tiles_bump('facilities', ARRAY(SELECT geom FROM new_rows));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM gis_tiles_bump('facilities', ARRAY(SELECT geom FROM old_rows));
        ELSE
            PERFORM gis_tiles_bump('facilities', ARRAY(
                SELECT v.g
                  FROM new_rows n JOIN old_rows o USING (id),
                       LATERAL (VALUES (n.geom), (o.geom)) AS v (g)
                 WHERE (n.geom, n.code, n.name, n.type_code, n.status)
                       IS DISTINCT FROM (o.geom, o.code, o.name, o.type_code, o.status)));
        END IF;
        RETURN NULL;
    END $$
    """,
    # Grids (a redraw, a rename, a new version) and their leaders move their level's layer.
    """
    CREATE FUNCTION tile_cache_from_grids() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM gis_tile_layer_bump(ARRAY(SELECT DISTINCT 'grids_' || level FROM new_rows));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM gis_tile_layer_bump(ARRAY(SELECT DISTINCT 'grids_' || level FROM old_rows));
        ELSE
            PERFORM gis_tile_layer_bump(ARRAY(
                SELECT 'grids_' || level FROM new_rows
                 UNION SELECT 'grids_' || level FROM old_rows));
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tile_cache_from_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        ids bigint[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            ids := ARRAY(SELECT grid_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            ids := ARRAY(SELECT grid_id FROM old_rows);
        ELSE
            ids := ARRAY(SELECT grid_id FROM new_rows UNION SELECT grid_id FROM old_rows);
        END IF;
        PERFORM gis_tile_layer_bump(ARRAY(
            SELECT DISTINCT 'grids_' || level FROM grids WHERE id = ANY (ids)));
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tile_cache_from_people() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM gis_tile_layer_bump(ARRAY(
            SELECT DISTINCT 'grids_' || g.level
              FROM new_rows n JOIN old_rows o ON o.id = n.id
              JOIN grid_assignments a ON a.person_id = n.id
              JOIN grids g ON g.id = a.grid_id
             WHERE n.name IS DISTINCT FROM o.name));
        RETURN NULL;
    END $$
    """,
    # Names, icons and colours of the catalogue are in every tile of their layer.
    """
    CREATE FUNCTION tile_cache_from_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM gis_tile_layer_bump(ARRAY[TG_ARGV[0]]);
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER tile_cache_{table}_{op.lower()} AFTER {op} ON {table}
            REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {fn}()
        """
        for table, fn, ops in (
            ("hazards", "tile_cache_from_hazards", ("INSERT", "UPDATE", "DELETE")),
            ("facilities", "tile_cache_from_facilities", ("INSERT", "UPDATE", "DELETE")),
            ("grids", "tile_cache_from_grids", ("INSERT", "UPDATE", "DELETE")),
            ("grid_assignments", "tile_cache_from_assignments", ("INSERT", "UPDATE", "DELETE")),
            ("people", "tile_cache_from_people", ("UPDATE",)),
        )
        for op in ops
        for refs in (
            {
                "INSERT": "NEW TABLE AS new_rows",
                "UPDATE": "NEW TABLE AS new_rows OLD TABLE AS old_rows",
                "DELETE": "OLD TABLE AS old_rows",
            }[op],
        )
    ),
    """
    CREATE TRIGGER tile_cache_facility_types AFTER INSERT OR UPDATE OR DELETE
        ON facility_types FOR EACH STATEMENT EXECUTE FUNCTION tile_cache_from_catalog('facilities')
    """,
    """
    CREATE TRIGGER tile_cache_hazard_categories AFTER INSERT OR UPDATE OR DELETE
        ON hazard_categories FOR EACH STATEMENT EXECUTE FUNCTION tile_cache_from_catalog('hazards')
    """,
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS tile_cache_hazard_categories ON hazard_categories",
    "DROP TRIGGER IF EXISTS tile_cache_facility_types ON facility_types",
    *(
        f"DROP TRIGGER IF EXISTS tile_cache_{table}_{op} ON {table}"
        for table in ("hazards", "facilities", "grids", "grid_assignments", "people")
        for op in ("insert", "update", "delete")
    ),
    *(
        f"DROP FUNCTION IF EXISTS tile_cache_from_{t}()"
        for t in ("hazards", "facilities", "grids", "assignments", "people", "catalog")
    ),
    "DROP FUNCTION IF EXISTS gis_tiles_bump(text, geometry[])",
    "DROP FUNCTION IF EXISTS gis_tile_layer_bump(text[])",
    "DROP FUNCTION IF EXISTS gis_tiles_over(geometry, integer, integer)",
    "DROP TABLE IF EXISTS tile_cache",
    "DROP TABLE IF EXISTS tile_versions",
    "DROP TABLE IF EXISTS tile_layer_versions",
    "DROP TABLE IF EXISTS tile_layers",
]


def upgrade() -> None:
    """Create the tile cache, its versions and the triggers that move them."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the tile cache, its versions and triggers."""
    for statement in DOWNGRADE:
        op.execute(statement)
