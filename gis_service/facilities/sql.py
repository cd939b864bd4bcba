"""The SQL of the facilities domain, in one place. Every value is a bound parameter."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.db.geojson import feature_collection_sql, geometry_json
from gis_service.geo.areas import bbox_sql
from gis_service.hazards.states import open_sql

_MATCHED = f"""
    SELECT f.*
      FROM facilities f
     WHERE (CAST(:types AS text[]) IS NULL OR f.type_code = ANY (CAST(:types AS text[])))
       AND (CAST(:statuses AS text[]) IS NULL OR f.status = ANY (CAST(:statuses AS text[])))
       AND {bbox_sql("f.geom")}
       AND (CAST(:near_lon AS float8) IS NULL
            OR ST_DWithin(f.geom::geography,
                          ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography,
                          :radius))
       AND (CAST(:grid AS bigint) IS NULL
            OR ST_Intersects(f.geom, (SELECT geom FROM grids WHERE id = :grid)))
       AND (CAST(:q AS text) IS NULL OR f.code LIKE :q || '%' OR f.name LIKE '%' || :q || '%')
"""

_PROPERTIES = """
    json_build_object(
        'code', t.code, 'type', t.type_code,
        'type_name', ft.name_zh, 'type_name_en', ft.name_en,
        'icon', ft.icon, 'color', ft.color,
        'name', t.name, 'status', t.status, 'attributes', t.attributes,
        'distance_m', CASE WHEN CAST(:near_lon AS float8) IS NULL THEN NULL ELSE
            round(ST_Distance(t.geom::geography,
                  ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography)::numeric, 1)
            END)
"""

_FEATURE = f"""
    (SELECT json_build_object('type', 'Feature', 'id', t.id,
                              'geometry', {geometry_json("t.geom")},
                              'properties', {_PROPERTIES})
       FROM facility_types ft WHERE ft.code = t.type_code)
"""

FACILITY_LIST = text(feature_collection_sql(_MATCHED, _FEATURE, "t.id"))

FACILITY_LIST_CSV = text(
    f"""
    SELECT t.id, t.code, t.type_code AS type, ft.name_zh AS type_name, t.name, t.status,
           (gis_from_wgs84(ST_X(ST_PointOnSurface(t.geom)), ST_Y(ST_PointOnSurface(t.geom)),
                           :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(ST_PointOnSurface(t.geom)), ST_Y(ST_PointOnSurface(t.geom)),
                           :crs))[2] AS lat,
           CASE WHEN :crs = 'wgs84' THEN ST_AsText(t.geom, 7)
                ELSE ST_AsText(ST_GeomFromGeoJSON(gis_geojson(t.geom, :crs)), 7) END AS wkt,
           t.attributes::text AS attributes
      FROM ({_MATCHED}) t
      JOIN facility_types ft ON ft.code = t.type_code
     ORDER BY t.id
     LIMIT :limit OFFSET :offset
    """
)

# The k nearest facilities: KNN (<->) on the GiST index picks candidates in degrees, then the
# true distance on the spheroid orders them (degrees are not metres away from the equator).
FACILITY_NEAREST = text(
    f"""
    WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
    cand AS (
        SELECT f.*
          FROM facilities f, pt
         WHERE (CAST(:types AS text[]) IS NULL OR f.type_code = ANY (CAST(:types AS text[])))
         ORDER BY f.geom <-> pt.g
         LIMIT :k * 2 + 10
    ),
    t AS (
        SELECT c.*, ST_Distance(c.geom::geography, pt.g::geography) AS dist
          FROM cand c, pt
         ORDER BY dist, c.id
         LIMIT :k
    )
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'numberReturned', count(*),
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', t.id,
            'geometry', {geometry_json("t.geom")},
            'properties', json_build_object(
                'code', t.code, 'type', t.type_code, 'type_name', ft.name_zh,
                'icon', ft.icon, 'color', ft.color, 'name', t.name, 'status', t.status,
                'attributes', t.attributes, 'distance_m', round(t.dist::numeric, 1)))
            ORDER BY t.dist, t.id), '[]'::json))::text
      FROM t JOIN facility_types ft ON ft.code = t.type_code
    """
)

# One facility with the grid chain it lies in (the same routing rule as hazards).
FACILITY_FEATURE = text(
    f"""
    SELECT json_build_object(
        'type', 'Feature', 'id', t.id,
        'geometry', {geometry_json("t.geom")},
        'properties', json_build_object(
            'code', t.code, 'type', t.type_code, 'type_name', ft.name_zh,
            'type_name_en', ft.name_en, 'class_code', ft.class_code,
            'icon', ft.icon, 'color', ft.color, 'name', t.name, 'status', t.status,
            'attributes', t.attributes, 'created_at', t.created_at, 'updated_at', t.updated_at,
            'grid_chain', gis_grid_chain(gis_finest_grid(ST_PointOnSurface(t.geom))),
            'open_hazards', (SELECT count(*) FROM hazards h WHERE h.facility_id = t.id
                               AND {open_sql("h")})))::text
      FROM facilities t JOIN facility_types ft ON ft.code = t.type_code
     WHERE t.id = :id
    """
)
