"""The SQL of the grids domain, in one place. Every value is a bound parameter.

JSON is built by PostgreSQL (json_build_object / json_agg) and sent to the client as text,
so no row becomes a Python object on these read paths.
"""

from __future__ import annotations

from sqlalchemy import text

from gis_service.auth.visibility import private_sql
from gis_service.db.geojson import feature_collection_sql, geometry_json
from gis_service.geo.areas import bbox_sql
from gis_service.hazards.states import open_sql, overdue_sql

# Mobile phones are private: only callers who may read private fields in the grid's subtree
# (bound parameters of gis_service.auth.visibility) get them; everyone else the work phone.
_MOBILE = (
    "|| CASE WHEN "
    + private_sql("{grid}.path")
    + " THEN jsonb_build_object('mobile_phone', p.mobile_phone) ELSE '{{}}'::jsonb END"
)

# A grid's people at a moment, primary first, then by role rank.
_PEOPLE = (
    """
    (SELECT coalesce(json_agg(json_build_object(
                'id', p.id, 'name', p.name, 'role', a.role, 'role_name', r.name_zh,
                'role_name_en', r.name_en, 'work_phone', p.work_phone,
                'is_primary', a.is_primary)::jsonb """
    + _MOBILE
    + """
            ORDER BY a.is_primary DESC, r.rank, p.name), '[]'::json)
       FROM grid_assignments a
       JOIN people p ON p.id = a.person_id
       JOIN assignment_roles r ON r.code = a.role
      WHERE a.grid_id = {grid}.id
        AND gis_valid_at(a.valid_from, a.valid_to, {at}))
"""
)

_OPEN = open_sql("h")

# Every version id of the grid whose code is bound as :root (a redrawn grid keeps its code).
ROOT_IDS = "(SELECT array_agg(id) FROM grids WHERE code = CAST(:root AS text))"
# A grid's locate entry (names, level, people) as JSON text: its card when the answer is for
# now and the card is fresh, else built on the spot by the same definition
# (gis_grid_cards, migration 0010). Private callers in scope get the version with mobile
# phones. {gid} is the grid id, {path} its path (street first), q the query's point and time.
_ENTRY = (
    """
    (SELECT CASE WHEN """
    + private_sql("{path}")
    + """ THEN e.private ELSE e.public END
       FROM (SELECT k.public, k.private FROM grid_cards k
              WHERE k.grid_id = {gid} AND q.is_now
                AND (k.fresh_until IS NULL OR k.fresh_until > now())
             UNION ALL
             SELECT c.public, c.private FROM gis_grid_cards(ARRAY[{gid}], q.at) c
             LIMIT 1) e)
"""
)

# The special grids (专属网格) covering the point q.pt valid at q.at, each entry from its card.
_SPECIALS = f"""
    (SELECT coalesce(json_agg({_ENTRY.format(gid="s.id", path="s.path")}::json
                              ORDER BY s.code), '[]'::json)
       FROM q, LATERAL (
           SELECT DISTINCT g.id, g.code, g.path
             FROM grid_parts p JOIN grids g ON g.id = p.grid_id
            WHERE p.rank = 5 AND ST_Covers(p.geom, q.pt)
              AND gis_valid_at(g.valid_from, g.valid_to, q.at)
       ) s)
"""

# The open hazards of the finest grid (f.id): the one part of an answer computed per request.
_OPEN_COUNT = f"(SELECT count(*) FROM hazards h WHERE h.grid_id = f.id AND {_OPEN})::text"

# Locate one point: the chain of grids down to the finest one (gis_finest_grid holds the
# boundary rule), each entry from its card, the finest with its open-hazard count, plus any
# special grids (专属网格) covering the point. The entries are text ending in '}': the
# open-hazard count is spliced in before it, so no entry is parsed or rebuilt. One round trip.
LOCATE = text(
    f"""
    WITH q AS (
        SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt,
               coalesce(CAST(:at AS timestamptz), now()) AS at,
               CAST(:at AS timestamptz) IS NULL AS is_now
    ),
    f AS (
        SELECT gis_finest_grid(q.pt, q.at) AS id FROM q
    ),
    chain AS (
        SELECT u.ord, u.gid = f.id AS is_finest,
               {_ENTRY.format(gid="u.gid", path="fg.path[1:u.ord]")} AS entry
          FROM q, f
          JOIN grids fg ON fg.id = f.id
          CROSS JOIN LATERAL unnest(fg.path) WITH ORDINALITY AS u (gid, ord)
    )
    SELECT json_build_object(
        'point', json_build_object('lon', :lon, 'lat', :lat),
        'at', (SELECT at FROM q),
        'chain', (
            SELECT ('[' || string_agg(
                        left(c.entry, -1) || ', "open_hazards" : '
                        || CASE WHEN c.is_finest THEN {_OPEN_COUNT} ELSE 'null' END
                        || '}}', ', ' ORDER BY c.ord) || ']')::json
              FROM chain c
        ),
        'special_grids', {_SPECIALS}
    )::text AS body
      FROM f
     WHERE f.id IS NOT NULL
    """
)

# Locate now, for a caller who sees no private field: the same answer as LOCATE, from the
# finest grid's chain card (migration 0022) and its open-hazard count, with the special
# grids probed only where one lies near. The answer is joined as text in json_build_object's
# own layout: the chain is valid JSON by construction, and a cast to json would parse it.
# No row: no grid covers the point; a row whose body is NULL: the card's chain is missing or
# stale, and LOCATE answers instead. MATERIALIZED: inlined, the finest grid would be looked
# up again for each expression that reads it.
LOCATE_NOW_PUBLIC = text(
    f"""
    WITH q AS (
        SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt, now() AS at, true AS is_now
    ),
    f AS MATERIALIZED (
        SELECT gis_finest_grid(q.pt, q.at) AS id FROM q
    )
    SELECT CASE WHEN k.chain IS NOT NULL
                 AND (k.chain_fresh_until IS NULL OR k.chain_fresh_until > now())
           THEN left(json_build_object(
                         'point', json_build_object('lon', :lon, 'lat', :lat), 'at', now()
                     )::text, -1)
                || ', "chain" : ' || k.chain || ', "open_hazards" : ' || {_OPEN_COUNT} || '}}]'
                || ', "special_grids" : '
                || CASE WHEN k.specials THEN {_SPECIALS}::text ELSE '[]' END || '}}'
           END AS body
      FROM f
      LEFT JOIN grid_cards k ON k.grid_id = f.id
     WHERE f.id IS NOT NULL
    """
)

# One grid as a GeoJSON Feature (RFC 7946: lon/lat WGS84).
GRID_FEATURE = text(
    f"""
    SELECT json_build_object(
        'type', 'Feature',
        'id', g.id,
        'geometry', {geometry_json("g.geom")},
        'properties', json_build_object(
            'code', g.code, 'name', g.name, 'level', g.level,
            'level_name', l.name_zh, 'level_name_en', l.name_en,
            'parent_id', g.parent_id,
            'chain', (SELECT json_agg(json_build_object(
                              'id', a.id, 'code', a.code, 'name', a.name, 'level', a.level)
                          ORDER BY array_position(g.path, a.id))
                        FROM grids a WHERE a.id = ANY (g.path)),
            'valid_from', g.valid_from, 'valid_to', g.valid_to,
            'attributes', g.attributes,
            'area_m2', round(ST_Area(g.geom::geography)::numeric, 1),
            'people', {_PEOPLE.format(grid="g", at="now()")},
            'open_hazards', (SELECT count(*) FROM hazards h
                              WHERE h.grid_path @> ARRAY[g.id] AND {_OPEN})
        )
    )::text AS body
      FROM grids g JOIN grid_levels l ON l.code = g.level
     WHERE g.id = :id
    """
)

# For a 404 on locate: how far the point is from the nearest current grid.
NEAREST_GRID = text(
    """
    SELECT g.id, g.code, g.name,
           round(ST_Distance(g.geom::geography,
                             ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)::numeric, 1)
               AS distance_m
      FROM grids g
     WHERE g.valid_to IS NULL AND g.level = 'street'
     ORDER BY g.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
     LIMIT 1
    """
)

# The primary person of a grid now (网格长 for a grid, 微网格员 for a micro-grid …).
_LEADER = """
    (SELECT json_build_object('name', p.name, 'role', a.role, 'work_phone', p.work_phone)
       FROM grid_assignments a JOIN people p ON p.id = a.person_id
      WHERE a.grid_id = t.id AND a.is_primary
        AND gis_valid_at(a.valid_from, a.valid_to, now())
      LIMIT 1)
"""

# Filters of the grid list; a NULL parameter switches its filter off (psycopg2 sends
# literals, so the planner folds the switched-off ones away).
_GRID_MATCHED = f"""
    SELECT g.*
      FROM grids g
     WHERE (CAST(:at AS timestamptz) IS NULL AND g.valid_to IS NULL
            OR gis_valid_at(g.valid_from, g.valid_to, CAST(:at AS timestamptz)))
       AND (CAST(:level AS text) IS NULL OR g.level = :level)
       AND (CAST(:parent AS bigint) IS NULL OR g.parent_id = :parent)
       AND (CAST(:ancestor AS bigint) IS NULL OR g.path @> ARRAY[CAST(:ancestor AS bigint)])
       AND (CAST(:ids AS bigint[]) IS NULL OR g.id = ANY (CAST(:ids AS bigint[])))
       AND {bbox_sql("g.geom")}
       AND (CAST(:q AS text) IS NULL OR g.code LIKE :q || '%'
            OR g.name LIKE '%' || :q || '%')
"""

_GRID_FEATURE = f"""
    json_build_object(
        'type', 'Feature',
        'id', t.id,
        'geometry', {geometry_json("t.geom")},
        'properties', json_build_object(
            'code', t.code, 'name', t.name, 'level', t.level,
            'level_name', (SELECT name_zh FROM grid_levels WHERE code = t.level),
            'parent_id', t.parent_id, 'path', t.path,
            'valid_from', t.valid_from, 'valid_to', t.valid_to,
            'attributes', t.attributes,
            'leader', {_LEADER}))
"""

GRID_LIST = text(feature_collection_sql(_GRID_MATCHED, _GRID_FEATURE, "t.level, t.code, t.id"))

# Grids ordered street-first (the ancestors of a grid, or any id list in path order).
GRID_ANCESTORS = text(
    f"""
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'numberReturned', count(*),
        'features', coalesce(json_agg({_GRID_FEATURE} ORDER BY u.ord), '[]'::json))::text
      FROM grids g0
      CROSS JOIN LATERAL unnest(g0.path[1:array_length(g0.path, 1) - 1])
           WITH ORDINALITY AS u (gid, ord)
      JOIN grids t ON t.id = u.gid
     WHERE g0.id = :id
    """
)

GRID_LIST_CSV = text(
    f"""
    SELECT t.id, t.code, t.name, t.level, p.code AS parent_code,
           {_LEADER} ->> 'name' AS leader_name,
           {_LEADER} ->> 'work_phone' AS leader_phone,
           round(ST_Area(t.geom::geography)::numeric, 1) AS area_m2,
           t.valid_from, t.valid_to,
           CASE WHEN :crs = 'wgs84' THEN ST_AsText(t.geom, 7)
                ELSE ST_AsText(ST_GeomFromGeoJSON(gis_geojson(t.geom, :crs)), 7) END AS wkt
      FROM ({_GRID_MATCHED}) t
      LEFT JOIN grids p ON p.id = t.parent_id
     ORDER BY t.level, t.code, t.id
     LIMIT :limit OFFSET :offset
    """
)

GRID_EXISTS = text("SELECT id FROM grids WHERE id = :id")

# Everything about a grid and its whole subtree, as one JSON object (one round trip).
GRID_SUMMARY = text(
    f"""
    WITH g AS (SELECT * FROM grids WHERE id = :id),
    sub AS (SELECT s.* FROM grids s, g WHERE s.path @> ARRAY[g.id] AND s.valid_to IS NULL),
    hz AS (
        SELECT h.category_code, h.status, h.due_at
          FROM hazards h, g
         WHERE h.grid_path @> ARRAY[g.id] AND {_OPEN}
    ),
    fac AS (
        SELECT f.type_code, count(*) AS n
          FROM facilities f, g
         WHERE ST_Intersects(f.geom, g.geom)
         GROUP BY f.type_code
    )
    SELECT json_build_object(
        'grid', (SELECT json_build_object(
                     'id', g.id, 'code', g.code, 'name', g.name, 'level', g.level,
                     'level_name', (SELECT name_zh FROM grid_levels WHERE code = g.level),
                     'chain', (SELECT json_agg(json_build_object(
                                   'id', a.id, 'code', a.code, 'name', a.name,
                                   'level', a.level) ORDER BY array_position(g.path, a.id))
                                 FROM grids a WHERE a.id = ANY (g.path)),
                     'area_m2', round(ST_Area(g.geom::geography)::numeric, 1))
                   FROM g),
        'people', {_PEOPLE.format(grid="g", at="now()")},
        'subtree', json_build_object(
            'grids_by_level', (SELECT coalesce(json_object_agg(level, n), '{{}}'::json)
                                 FROM (SELECT level, count(*) AS n FROM sub
                                        WHERE id <> :id GROUP BY level) x),
            'open_hazards', (SELECT count(*) FROM hz),
            'overdue_hazards', (SELECT count(*) FROM hz WHERE {overdue_sql("hz")}),
            'open_hazards_by_category', (
                SELECT coalesce(json_object_agg(category_code, n), '{{}}'::json)
                  FROM (SELECT category_code, count(*) AS n FROM hz GROUP BY 1) x),
            'open_hazards_by_status', (
                SELECT coalesce(json_object_agg(status, n), '{{}}'::json)
                  FROM (SELECT status, count(*) AS n FROM hz GROUP BY 1) x),
            'facilities_by_type', (SELECT coalesce(json_object_agg(type_code, n), '{{}}'::json)
                                     FROM fac),
            'facilities', (SELECT coalesce(sum(n), 0) FROM fac),
            'people', (SELECT count(DISTINCT a.person_id)
                         FROM grid_assignments a JOIN sub ON sub.id = a.grid_id
                        WHERE gis_valid_at(a.valid_from, a.valid_to, now()))
        )
    )::text
      FROM g
    """
)

# Batch locate: each point's finest grid and its chain of ids, in input order; null when
# outside every grid. One statement whatever the batch size: gis_finest_grids (migrations
# 0017, 0018) routes every point at once, level by level, with the rule gis_finest_grid uses.
# The points come as one WKB MultiPoint (gis_service.geo.wkb). The answer is written as
# compact text (codes match ^[0-9A-Za-z._-]+$, so to_json only quotes them): twice as fast
# as json_agg of json_build_object for 10,000 entries, and 10% fewer bytes to send.
LOCATE_BATCH = text(
    """
    SELECT '[' || string_agg(CASE WHEN f.grid_id IS NULL THEN 'null'
                                  ELSE '{"grid_id":' || f.grid_id || ',"code":' || to_json(f.code)
                                       || ',"chain":' || array_to_json(f.path) || '}'
                             END, ',' ORDER BY f.ord) || ']'
      FROM gis_finest_grids(
               ARRAY(SELECT d.geom
                       FROM ST_Dump(ST_GeomFromWKB(CAST(:points AS bytea), 4326)) AS d
                      ORDER BY d.path[1]),
               coalesce(CAST(:at AS timestamptz), now())) AS f
    """
)

# When the first grid covering a point began (any version, current or retired): to tell "no
# grid existed here yet on that date" from "outside the territory".
FIRST_GRID_AT_POINT = text(
    """
    SELECT min(g.valid_from) AS first_from
      FROM grids g
     WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    """
)

# The latest version's path of a grid code, and the code of a grid id (subtree checks).
GRID_CODE_PATH = text("SELECT path FROM grids WHERE code = :code ORDER BY valid_from DESC LIMIT 1")
CODE_OF = text("SELECT code FROM grids WHERE id = :id")
# Build the cards a bulk import left missing and rebuild those the clock made stale
# (migration 0010); locate is right without them, only slower.
MAINTAIN_CARDS = text("SELECT gis_fill_grid_cards(), gis_refresh_due_grid_cards()")
