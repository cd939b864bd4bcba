"""The SQL of patrols. Every value is a bound parameter; tracks are built, measured and
turned into GeoJSON by PostGIS. A track keeps each point's time as its M value (seconds
since 1970-01-01 UTC)."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.db.geojson import feature_collection_sql, geometry_json

# The line of a track from three bound arrays (WGS84 lon, lat and epoch seconds), in order.
_TRACK = """
    ST_SetSRID(ST_MakeLine(ARRAY(
        SELECT ST_MakePointM(u.x, u.y, u.m)
          FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]), CAST(:ms AS float8[]))
               WITH ORDINALITY AS u (x, y, m, i)
         ORDER BY u.i)), 4326)
"""

# Where a track lies: the grid of its first point, and the current micro-grids it passes
# (each with its path, for the caller's scope), through the subdivided parts' index.
PLACE = text(
    f"""
    WITH t AS (SELECT {_TRACK} AS track),
    s AS (SELECT gis_finest_grid(ST_StartPoint(ST_Force2D(t.track))) AS grid FROM t)
    SELECT s.grid, (SELECT path FROM grids WHERE id = s.grid) AS path,
           ST_Length(ST_Force2D(t.track)::geography) AS length_m,
           ARRAY(SELECT DISTINCT g.id FROM grid_parts p JOIN grids g ON g.id = p.grid_id
                  WHERE p.rank = 4 AND ST_Intersects(p.geom, ST_Force2D(t.track))
                    AND g.valid_to IS NULL ORDER BY g.id) AS micro_grids,
           ARRAY(SELECT DISTINCT a FROM grids g, unnest(g.path) AS a
                  WHERE g.id IN (SELECT p.grid_id FROM grid_parts p
                                  WHERE p.rank = 4
                                    AND ST_Intersects(p.geom, ST_Force2D(t.track)))) AS touched
      FROM t, s
    """
)

INSERT_PATROL = text(
    f"""
    INSERT INTO patrols (ref, principal, user_id, person_id, walker_name, grid_id, grid_path,
                         source, started_at, ended_at, track, points, length_m, micro_grids,
                         note)
    VALUES (CAST(:ref AS uuid), :principal, :user_id, :person_id, :walker_name, :grid_id,
            CAST(:grid_path AS bigint[]), :source, :started_at, :ended_at, {_TRACK},
            cardinality(CAST(:xs AS float8[])), :length_m, CAST(:micro_grids AS bigint[]),
            :note)
    ON CONFLICT (principal, ref) DO NOTHING
    RETURNING id
    """
)

BY_REF = text("SELECT id FROM patrols WHERE principal = :principal AND ref = CAST(:ref AS uuid)")

# Hazards reported on a patrol: same client ref and same reporter.
_HAZARDS = """
    (SELECT coalesce(json_agg(json_build_object(
                'id', h.id, 'public_code', h.public_code, 'category', h.category_code,
                'status', h.status, 'url', '/api/v1/hazards/' || h.id)
            ORDER BY h.id), '[]'::json)
       FROM hazards h
      WHERE h.patrol_ref = t.ref AND h.reporter_principal = t.principal)
"""

_PROPERTIES = f"""
    'ref', t.ref, 'walker_name', t.walker_name, 'user_id', t.user_id,
    'person_id', t.person_id, 'grid_id', t.grid_id,
    'grid_name', (SELECT name FROM grids WHERE id = t.grid_id),
    'source', t.source, 'started_at', t.started_at, 'ended_at', t.ended_at,
    'duration_s', extract(epoch FROM t.ended_at - t.started_at),
    'points', t.points, 'length_m', round(t.length_m::numeric, 1),
    'micro_grids', cardinality(t.micro_grids), 'note', t.note,
    'received_at', t.received_at, 'hazards', {_HAZARDS},
    'url', '/api/v1/patrols/' || t.id
"""

PATROL = text(
    f"""
    SELECT json_build_object(
        'type', 'Feature', 'id', t.id,
        'geometry', {geometry_json("ST_Force2D(t.track)")},
        'properties', json_build_object({_PROPERTIES},
            'times', (SELECT json_agg(to_char(to_timestamp(ST_M(d.geom)) AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                                      ORDER BY d.path)
                        FROM ST_DumpPoints(t.track) AS d),
            'micro_grid_ids', t.micro_grids)
    )::text, t.grid_path, t.user_id
      FROM patrols t WHERE t.id = :id
    """
)

POINTS = text(
    """
    SELECT ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat, ST_M(d.geom) AS m
      FROM patrols p, ST_DumpPoints(p.track) AS d
     WHERE p.id = :id
     ORDER BY d.path
    """
)

_MATCHED = """
    SELECT p.* FROM patrols p
     WHERE ((CAST(:scope AS bigint[]) IS NULL OR p.grid_path && CAST(:scope AS bigint[]))
            OR p.user_id = CAST(:me AS bigint))
       AND (CAST(:grid AS bigint) IS NULL OR p.grid_path @> ARRAY[CAST(:grid AS bigint)]
            OR p.micro_grids && ARRAY(SELECT id FROM grids
                                       WHERE path @> ARRAY[CAST(:grid AS bigint)]
                                         AND level = 'micro_grid'))
       AND (CAST(:user AS bigint) IS NULL OR p.user_id = CAST(:user AS bigint))
       AND (CAST(:since AS timestamptz) IS NULL OR p.started_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR p.started_at < CAST(:until AS timestamptz))
"""
PATROLS = text(
    feature_collection_sql(
        _MATCHED,
        f"""json_build_object('type', 'Feature', 'id', t.id,
               'geometry', {geometry_json("ST_Force2D(t.track)")},
               'properties', json_build_object({_PROPERTIES}))""",
        "t.started_at DESC, t.id DESC",
    )
)

# Per child grid of :grid (or the streets) and period: patrols that passed through it, their
# distance inside it, their time, and its micro-grids passed out of all (coverage).
STATS = text(
    """
    WITH kids AS (
        SELECT g.id, g.code, g.name, g.level, g.geom FROM grids g
         WHERE g.valid_to IS NULL AND g.level <> 'special'
           AND (g.parent_id = CAST(:grid AS bigint)
                OR (CAST(:grid AS bigint) IS NULL AND g.parent_id IS NULL))
        UNION ALL
        SELECT g.id, g.code, g.name, g.level, g.geom FROM grids g
         WHERE g.id = CAST(:grid AS bigint)
           AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.parent_id = CAST(:grid AS bigint)
                              AND c.valid_to IS NULL AND c.level <> 'special')
    ),
    micro AS (
        SELECT k.id AS kid, m.id
          FROM kids k JOIN grids m ON m.path @> ARRAY[k.id]
         WHERE m.level = 'micro_grid' AND m.valid_to IS NULL
    ),
    pat AS (
        SELECT p.id, p.track, p.started_at, p.ended_at, p.micro_grids FROM patrols p
         WHERE p.started_at >= CAST(:since AS timestamptz)
           AND p.started_at < CAST(:until AS timestamptz)
           AND (CAST(:scope AS bigint[]) IS NULL OR p.grid_path && CAST(:scope AS bigint[])
                OR p.micro_grids && ARRAY(SELECT id FROM micro))
    ),
    -- Each patrol's micro-grids unnested once, so that the joins below hash instead of
    -- testing every micro-grid against every patrol's array (1 s of 2 on the demo district).
    walked AS (
        SELECT p.id, w.micro FROM pat p CROSS JOIN LATERAL unnest(p.micro_grids) AS w (micro)
    ),
    hit AS (
        SELECT DISTINCT mi.kid, w.id
          FROM walked w JOIN micro mi ON mi.id = w.micro
    ),
    per AS (
        SELECT k.id,
               count(p.id) AS patrols,
               coalesce(sum(ST_Length(ST_Intersection(ST_Force2D(p.track), k.geom)::geography)),
                        0) AS distance_m,
               coalesce(sum(extract(epoch FROM p.ended_at - p.started_at)), 0) AS duration_s
          FROM kids k
          LEFT JOIN hit h ON h.kid = k.id
          LEFT JOIN pat p ON p.id = h.id
         GROUP BY k.id
    ),
    passed AS (
        SELECT mi.kid,
               count(*) AS micro_total,
               count(*) FILTER (WHERE mi.id IN (SELECT w.micro FROM walked w)) AS passed
          FROM micro mi GROUP BY mi.kid
    )
    SELECT k.id, k.code, k.name, k.level, per.patrols, per.distance_m, per.duration_s,
           coalesce(ps.micro_total, 0) AS micro_total, coalesce(ps.passed, 0) AS passed
      FROM kids k
      JOIN per ON per.id = k.id
      LEFT JOIN passed ps ON ps.kid = k.id
     ORDER BY k.code
    """
)

TODAY = text(
    """
    SELECT count(*) AS patrols, coalesce(sum(length_m), 0) AS distance_m,
           coalesce(sum(extract(epoch FROM ended_at - started_at)), 0) AS duration_s,
           max(ended_at) AS last_ended_at
      FROM patrols
     WHERE user_id = :user AND gis_local_day(started_at) = gis_local_day(now())
    """
)
