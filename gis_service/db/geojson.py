"""SQL that builds GeoJSON inside PostgreSQL: a geometry in the datum asked for, and one
page of a FeatureCollection with its counts, so no feature becomes a Python object."""

from __future__ import annotations


def geometry_json(column: str) -> str:
    """SQL for a geometry as GeoJSON in the datum bound as :crs (plain ST_AsGeoJSON for WGS84)."""
    return (
        f"(CASE WHEN :crs = 'wgs84' THEN ST_AsGeoJSON({column}, 7)::json"
        f" ELSE gis_geojson({column}, :crs)::json END)"
    )


def feature_collection_sql(matched_cte: str, feature: str, order: str) -> str:
    """SQL returning (FeatureCollection text, numberMatched, numberReturned) for one page.

    ``matched_cte`` is a SELECT of the rows that match (alias its table ``t``), ``feature``
    the json_build_object of one Feature over ``t``, ``order`` the stable ORDER BY columns.
    """
    return f"""
    WITH matched AS ({matched_cte}),
    page AS (SELECT * FROM matched t ORDER BY {order} LIMIT :limit OFFSET :offset),
    counts AS (SELECT (SELECT count(*) FROM matched) AS matched,
                      (SELECT count(*) FROM page) AS returned)
    SELECT json_build_object(
               'type', 'FeatureCollection',
               'numberMatched', counts.matched,
               'numberReturned', counts.returned,
               'features', coalesce((SELECT json_agg({feature} ORDER BY {order}) FROM page t),
                                    '[]'::json)
           )::text,
           counts.matched, counts.returned
      FROM counts
    """
