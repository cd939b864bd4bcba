"""The SQL of the tiles domain, in one place. Every value is a bound parameter.

Each tile is one statement: PostGIS selects the rows through the 4326 GiST index, projects,
simplifies and clips them, and encodes the whole tile with ST_AsMVT, so no feature ever
becomes a Python object. Bound parameters: :z, :x, :y (tile address), :margin (the clip
buffer as a fraction of the tile), :tolerance (simplification in EPSG:3857 metres),
:layer (the MVT layer name); grids add :level, and thinned point tiles the cell lattice
(:x0, :y0 the tile's south-west corner, :cw, :ch the cell size, in degrees).
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text

from gis_service.hazards.states import CLOCK_STATUSES, open_sql, overdue_sql

# Overdue means the same here as in the hazard API: past due while the deadline clock runs.
_CLOCK = ", ".join(f"'{s}'" for s in CLOCK_STATUSES)

# The tile (plus its clip buffer) in 4326, compared with the untouched geom column so the
# planner uses the GiST index; transforming the column instead would scan the whole table.
# psycopg2 sends the parameters as literals, so PostgreSQL folds this to a constant box.
_BOX = "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)"

# 4096 units per tile side and a 64-unit buffer: the MVT defaults that renderers expect.
_MVT_GEOM = "ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), 4096, 64, true)"

_GRID_GEOM = _MVT_GEOM.format(
    geom="ST_SimplifyPreserveTopology(ST_Transform(g.geom, 3857), :tolerance)"
)
# Points pass through unsimplified (nothing to simplify); lines are simplified like polygons.
_FACILITY_GEOM = _MVT_GEOM.format(
    geom="CASE WHEN GeometryType(k.geom) = 'POINT' THEN ST_Transform(k.geom, 3857)"
    " ELSE ST_SimplifyPreserveTopology(ST_Transform(k.geom, 3857), :tolerance) END"
)
_HAZARD_GEOM = _MVT_GEOM.format(geom="ST_Transform(k.geom, 3857)")

# The feature id goes in a column of its own: ST_AsMVT takes the id column out of the
# properties, and popups want `id` as a property too. Rows whose geometry was clipped away
# (NULL) are skipped by ST_AsMVT; zero rows encode as an empty bytea.
# Each tile statement also says when its content next changes by the clock alone
# ({expires}: NULL when never), which the tile cache keeps with it.
_ENCODE = (
    "SELECT ST_AsMVT(f, :layer, 4096, 'geom', '_fid') AS mvt, {expires} AS expires_at"
    " FROM features f"
)

_OPEN_HAZARD = open_sql("h")

# The thinning cell of a feature: a lattice of :cw × :ch degrees from the tile's south-west
# corner, keyed on the south-west corner of the feature's box (the point itself for points).
# Latitude is not linear in web-mercator, but across one tile the difference is invisible.
_CELL = "floor((ST_XMin({t}.geom) - :x0) / :cw), floor((ST_YMin({t}.geom) - :y0) / :ch)"


# ---- grids ------------------------------------------------------------------------------------

# Open hazards in each grid's whole subtree (as GET /grids/{id} counts them): hazards whose
# routed chain (grid_path, GIN-indexed) holds one of the tile's grids, in one pass. Only for
# the fine levels: a street holds tens of thousands of hazards, too many to count per tile.
_GRID_COUNTS = f"""
    counts AS (
        SELECT s.id, count(*)::integer AS n
          FROM hazards h
         CROSS JOIN LATERAL unnest(h.grid_path) AS u (gid)
          JOIN shapes s ON s.id = u.gid
         WHERE h.grid_path && ARRAY(SELECT id FROM shapes) AND {_OPEN_HAZARD}
         GROUP BY s.id
    ),
"""


# A grid version or a leader that starts later changes the tile when it starts.
_GRID_EXPIRES = f"""
    least(
        (SELECT min(g.valid_from) FROM grids g
          WHERE g.geom && {_BOX} AND g.level = :level AND g.valid_to IS NULL
            AND g.valid_from > now()),
        (SELECT min(a.valid_from) FROM grid_assignments a
          WHERE a.grid_id = ANY (ARRAY(SELECT id FROM shapes))
            AND a.is_primary AND a.valid_to IS NULL AND a.valid_from > now()))
"""


# Grids of one level as they stand: the latest version of each (valid_to IS NULL, the
# predicate of the partial index on current grids, which low zooms use) once in force. The
# geometry is simplified in metres before clipping so that a street at
# z10 does not carry thousands of sub-pixel vertices. The shapes are materialised once, then
# the leaders (and counts) are fetched for all of them in one set-based pass each, not one
# lookup per grid. Leader: the primary assignee valid now; the EXCLUDE constraint on
# grid_assignments allows at most one at any moment, so the join cannot duplicate a grid.
def _grid_tile(with_counts: bool) -> TextClause:
    """The grid tile statement, with or without the open-hazard count per grid."""
    counts = _GRID_COUNTS if with_counts else ""
    count_column = "coalesce(c.n, 0) AS open_hazards," if with_counts else ""
    count_join = "LEFT JOIN counts c ON c.id = s.id" if with_counts else ""
    return text(
        f"""
        WITH shapes AS MATERIALIZED (
            SELECT g.id, g.code, g.name, g.level, g.parent_id, {_GRID_GEOM} AS geom
              FROM grids g
             WHERE g.geom && {_BOX}
               AND g.level = :level AND g.valid_to IS NULL
               AND gis_valid_at(g.valid_from, g.valid_to, now())
        ),
        leaders AS (
            SELECT a.grid_id, p.name, r.name_zh AS role_name
              FROM grid_assignments a
              JOIN people p ON p.id = a.person_id
              JOIN assignment_roles r ON r.code = a.role
             WHERE a.grid_id = ANY (ARRAY(SELECT id FROM shapes))
               AND a.is_primary AND gis_valid_at(a.valid_from, a.valid_to, now())
        ),
        {counts}
        features AS (
            SELECT s.id AS _fid, s.id, s.code, s.name, s.level, s.parent_id,
                   l.name AS leader, l.role_name AS leader_role, {count_column} s.geom
              FROM shapes s
              LEFT JOIN leaders l ON l.grid_id = s.id
              {count_join}
             WHERE s.geom IS NOT NULL
        )
        {_ENCODE.format(expires=_GRID_EXPIRES)}
        """
    )


GRID_TILE = _grid_tile(with_counts=False)
GRID_TILE_WITH_COUNTS = _grid_tile(with_counts=True)


# ---- facilities -------------------------------------------------------------------------------

_FACILITY_COLUMNS = "f.id, f.code, f.name, f.type_code, f.status, f.geom"

_FACILITY_FEATURES = f"""
    features AS (
        SELECT k.id AS _fid, k.id, k.code, k.name, k.type_code, t.name_zh AS type_name,
               t.icon, t.color, k.status, k.count, {_FACILITY_GEOM} AS geom
          FROM kept k
          JOIN facility_types t ON t.code = k.type_code
    )
"""

# Every facility in the tile.
FACILITY_TILE = text(
    f"""
    WITH kept AS (
        SELECT {_FACILITY_COLUMNS}, 1 AS count FROM facilities f WHERE f.geom && {_BOX}
    ),
    {_FACILITY_FEATURES}
    {_ENCODE.format(expires="NULL::timestamptz")}
    """
)

# One facility per cell, the lowest id standing for the others, with `count` saying how
# many. Grouping reads only ids and geometries; the kept rows are fetched again by key,
# which is cheaper than carrying every column through the aggregate.
FACILITY_TILE_THINNED = text(
    f"""
    WITH cells AS (
        SELECT min(f.id) AS id, count(*)::integer AS n
          FROM facilities f
         WHERE f.geom && {_BOX}
         GROUP BY {_CELL.format(t="f")}
    ),
    kept AS (
        SELECT {_FACILITY_COLUMNS}, c.n AS count FROM cells c JOIN facilities f ON f.id = c.id
    ),
    {_FACILITY_FEATURES}
    {_ENCODE.format(expires="NULL::timestamptz")}
    """
)


# The thinned zooms whose cells are kept ready in facility_cells (a copy of migration
# 0019_facility_cells' ZOOMS; tests/test_tile_cache.py compares them). A cell there is the
# web-mercator tile of zoom z + 5 holding the facility's key point (the point, or a line's
# south-west box corner), with the lowest id standing for the cell and the count.
FACILITY_CELL_ZOOMS = (14, 15)


def _facility_cells_tile(z: int) -> TextClause:
    """The thinned facility tile of zoom ``z`` from its ready cells: those whose standing
    facility lies in the tile (plus its clip buffer); the zoom is a literal so that the
    planner takes that zoom's partial GiST index."""
    return text(
        f"""
        WITH kept AS (
            SELECT c.id, c.code, c.name, c.type_code, c.status, c.geom, c.n AS count
              FROM facility_cells c
             WHERE c.zoom = {int(z)} AND c.geom && {_BOX}
        ),
        {_FACILITY_FEATURES}
        {_ENCODE.format(expires="NULL::timestamptz")}
        """
    )


FACILITY_TILE_CELLS = {z: _facility_cells_tile(z) for z in FACILITY_CELL_ZOOMS}


# ---- hazards ----------------------------------------------------------------------------------

# Explicit columns on purpose: reporter_name, reporter_phone, the description and the address
# never reach a tile, which anyone may fetch.
_HAZARD_COLUMNS = (
    "h.id, h.public_code, h.category_code, h.severity, h.status, h.reported_at, h.due_at, h.geom"
)

_HAZARD_FEATURES = f"""
    features AS (
        SELECT k.id AS _fid, k.id, k.public_code, k.category_code,
               c.name_zh AS category_name, k.severity, k.status,
               to_char(k.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                   AS reported_at,
               coalesce({overdue_sql("k")}, false) AS overdue,
               k.count, {_HAZARD_GEOM} AS geom
          FROM kept k
          JOIN hazard_categories c ON c.code = k.category_code
    )
"""

# The next deadline in the tile still to pass: the hazard turns overdue then (the cells of a
# thinned tile carry their own next deadline, next_due).
_HAZARD_EXPIRES = (
    "(SELECT min(e.due_at) FROM {t} e WHERE e.due_at > now() AND e.status IN (" + _CLOCK + "))"
)

# Every open hazard in the tile.
HAZARD_TILE = text(
    f"""
    WITH kept AS (
        SELECT {_HAZARD_COLUMNS}, 1 AS count
          FROM hazards h
         WHERE h.geom && {_BOX} AND {_OPEN_HAZARD}
    ),
    {_HAZARD_FEATURES}
    {_ENCODE.format(expires=_HAZARD_EXPIRES.format(t="kept"))}
    """
)

# One open hazard per cell with `count`; the one shown is overdue whenever the cell holds an
# overdue hazard, since overdue cases are what supervisors chase.
HAZARD_TILE_THINNED = text(
    f"""
    WITH cells AS (
        SELECT coalesce(min(h.id) FILTER (WHERE {overdue_sql("h")}),
                        min(h.id)) AS id,
               count(*)::integer AS n,
               min(h.due_at) FILTER (WHERE h.due_at > now() AND h.status IN ({_CLOCK}))
                   AS next_due
          FROM hazards h
         WHERE h.geom && {_BOX} AND {_OPEN_HAZARD}
         GROUP BY {_CELL.format(t="h")}
    ),
    kept AS (
        SELECT {_HAZARD_COLUMNS}, c.n AS count FROM cells c JOIN hazards h ON h.id = c.id
    ),
    {_HAZARD_FEATURES}
    {_ENCODE.format(expires="(SELECT min(next_due) FROM cells)")}
    """
)


# ---- extents for TileJSON bounds: (xmin, ymin, xmax, ymax) in 4326, NULLs when empty ----------

_EXTENT = "SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax"

GRID_EXTENT = text(
    f"""
    {_EXTENT}
      FROM (SELECT ST_Extent(geom)::geometry AS e FROM grids
             WHERE level = :level AND valid_to IS NULL
               AND gis_valid_at(valid_from, valid_to, now())) s
    """
)

# facilities can hold a million rows: read the planner's estimate when ANALYZE has run, and
# only scan the table when it has not (a fresh or small database).
FACILITY_EXTENT = text(
    f"""
    {_EXTENT}
      FROM (SELECT coalesce(
                ST_EstimatedExtent(current_schema(), 'facilities', 'geom')::geometry,
                (SELECT ST_Extent(geom)::geometry FROM facilities)) AS e) s
    """
)

HAZARD_EXTENT = text(
    f"""
    {_EXTENT}
      FROM (SELECT ST_Extent(geom)::geometry AS e FROM hazards h WHERE {_OPEN_HAZARD}) s
    """
)


# ---- the tile cache (migration 0011) ------------------------------------------------------------
# The versions a cached tile must carry to be valid (migration 0011's triggers move them).
_VERSIONS = """
    SELECT coalesce((SELECT version FROM tile_layer_versions WHERE layer = :layer), 0) AS lv,
           coalesce((SELECT version FROM tile_versions
                      WHERE layer = :layer AND z = :z AND x = :x AND y = :y), 0) AS tv
"""
# The cached tile, if it is valid: of these versions and not expired.
_VALID = """
      FROM tile_cache c, ver
     WHERE c.layer = :layer AND c.z = :z AND c.x = :x AND c.y = :y
       AND c.layer_version = ver.lv AND c.tile_version = ver.tv
       AND (c.expires_at IS NULL OR c.expires_at > now())
"""

# A hit alone, in a statement planned once per connection: cached() below plans the build
# too, which took ~0.7 ms of a hit's ~1 ms. The plain bytes only when they will be sent or
# compressed (a client that takes gzip gets the stored gz: 19 KB instead of 19 + 48 KB).
CACHE_HIT = text(
    f"""
    WITH ver AS ({_VERSIONS})
    SELECT c.gz, c.etag, CASE WHEN c.gz IS NULL OR :plain THEN c.data END AS data
    {_VALID}
    """
)


@cache
def cached(tile: TextClause) -> TextClause:
    """``tile`` behind the cache: one statement that answers a valid cached tile, or builds
    the tile (only then: the build sits under a one-time NOT EXISTS filter), stores it and
    answers it. Returns (data, etag, hit). The versions are read in the statement's snapshot,
    the same one the tile is built from, so a tile is stored under the versions it reflects.
    """
    return text(
        f"""
        WITH ver AS ({_VERSIONS}),
        hit AS MATERIALIZED (SELECT c.data, c.gz, c.etag {_VALID}),
        built AS MATERIALIZED (
            SELECT coalesce(b.mvt, ''::bytea) AS mvt, b.expires_at,
                   '"' || md5(coalesce(b.mvt, ''::bytea)) || '"' AS etag
              FROM ({tile.text}) b
             WHERE NOT EXISTS (SELECT 1 FROM hit)
        ),
        stored AS (
            INSERT INTO tile_cache AS c
                   (layer, z, x, y, layer_version, tile_version, etag, data, expires_at)
            SELECT :layer, :z, :x, :y, ver.lv, ver.tv, b.etag, b.mvt, b.expires_at
              FROM built b, ver
            ON CONFLICT (layer, z, x, y) DO UPDATE
               SET layer_version = EXCLUDED.layer_version,
                   tile_version = EXCLUDED.tile_version, etag = EXCLUDED.etag,
                   data = EXCLUDED.data, gz = NULL, expires_at = EXCLUDED.expires_at,
                   built_at = now()
             WHERE (c.layer_version, c.tile_version)
                   <= (EXCLUDED.layer_version, EXCLUDED.tile_version)
        )
        SELECT coalesce((SELECT data FROM hit), (SELECT mvt FROM built)) AS data,
               (SELECT gz FROM hit) AS gz,
               coalesce((SELECT etag FROM hit), (SELECT etag FROM built)) AS etag,
               EXISTS (SELECT 1 FROM hit) AS hit
        """
    )


# A tile's gzip-compressed bytes, kept beside it once made (only if it is still that tile).
STORE_GZ = text(
    """
    UPDATE tile_cache SET gz = :gz
     WHERE layer = :layer AND z = :z AND x = :x AND y = :y AND etag = :etag AND gz IS NULL
    """
)

# The tile layers' zooms as the triggers of migration 0011_tile_cache read them.
SYNC_LAYERS = text(
    """
    INSERT INTO tile_layers (layer, minzoom, maxzoom) VALUES (:layer, :minzoom, :maxzoom)
    ON CONFLICT (layer) DO UPDATE SET minzoom = EXCLUDED.minzoom, maxzoom = EXCLUDED.maxzoom
     WHERE (tile_layers.minzoom, tile_layers.maxzoom) <> (EXCLUDED.minzoom, EXCLUDED.maxzoom)
    """
)

# Old tiles out: the built long ago (a day) and those of a layer version that has moved.
PRUNE = text(
    """
    DELETE FROM tile_cache c
     WHERE c.built_at < now() - interval '1 day'
        OR c.layer_version < coalesce(
               (SELECT version FROM tile_layer_versions v WHERE v.layer = c.layer), 0)
    """
)
