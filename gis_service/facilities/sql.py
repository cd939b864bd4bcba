"""The SQL of the facilities domain, in one place. Every value is a bound parameter."""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text

from gis_service.db.geojson import feature_collection_sql, geometry_json
from gis_service.db.reads import GENERIC_PLAN
from gis_service.geo.areas import bbox_given_sql
from gis_service.hazards.states import open_sql

# Each filter's condition on f, written into a list's statement only when the filter is
# given: no "(:x IS NULL OR …)" branch is left for the planner, so a plain bbox page plans
# as an index scan and nothing else (the map's commonest request: bench/api_vs_tipg.py).
_NEAR = "ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography"
_CONDITIONS = {
    "types": "f.type_code = ANY (CAST(:types AS text[]))",
    "statuses": "f.status = ANY (CAST(:statuses AS text[]))",
    "bbox": bbox_given_sql("f.geom", crossing=False),
    "bbox_crossing": bbox_given_sql("f.geom", crossing=True),
    "near": f"ST_DWithin(f.geom::geography, {_NEAR}, :radius)",
    "grid": "ST_Intersects(f.geom, (SELECT geom FROM grids WHERE id = :grid))",
    "q": "(f.code LIKE :q || '%' OR f.name LIKE '%' || :q || '%')",
}
FILTERS = frozenset(_CONDITIONS)


def _matched(given: frozenset[str]) -> str:
    where = " AND ".join(_CONDITIONS[name] for name in sorted(given)) or "true"
    return f"SELECT f.* FROM facilities f WHERE {where}"


def _feature(given: frozenset[str]) -> str:
    distance = (
        f"round(ST_Distance(t.geom::geography, {_NEAR})::numeric, 1)" if "near" in given else "NULL"
    )
    return f"""
    (SELECT json_build_object('type', 'Feature', 'id', t.id,
                              'geometry', {geometry_json("t.geom")},
                              'properties', json_build_object(
        'code', t.code, 'type', t.type_code,
        'type_name', ft.name_zh, 'type_name_en', ft.name_en,
        'icon', ft.icon, 'color', ft.color,
        'name', t.name, 'status', t.status, 'attributes', t.attributes,
        'distance_m', {distance}))
       FROM facility_types ft WHERE ft.code = t.type_code)
"""


@cache  # at most one pair per combination of filters
def facility_list(given: frozenset[str]) -> tuple[TextClause, TextClause]:
    """The page statements (GeoJSON, CSV) of a facility list by the filters ``given``."""
    matched = _matched(given)
    geojson = text(feature_collection_sql(matched, _feature(given), "t.id"))
    if given == {"bbox"}:
        # An index scan whatever the box: one plan serves every map view (db.reads).
        geojson = geojson.execution_options(**{GENERIC_PLAN: True})
    csv = text(
        f"""
    SELECT t.id, t.code, t.type_code AS type, ft.name_zh AS type_name, t.name, t.status,
           (gis_from_wgs84(ST_X(ST_PointOnSurface(t.geom)), ST_Y(ST_PointOnSurface(t.geom)),
                           :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(ST_PointOnSurface(t.geom)), ST_Y(ST_PointOnSurface(t.geom)),
                           :crs))[2] AS lat,
           CASE WHEN :crs = 'wgs84' THEN ST_AsText(t.geom, 7)
                ELSE ST_AsText(ST_GeomFromGeoJSON(gis_geojson(t.geom, :crs)), 7) END AS wkt,
           t.attributes::text AS attributes
      FROM ({matched}) t
      JOIN facility_types ft ON ft.code = t.type_code
     ORDER BY t.id
     LIMIT :limit OFFSET :offset
    """
    )
    return geojson, csv


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
