"""SQL functions that return coordinates in GCJ-02 or BD-09, so GeoJSON in those datums is
still built inside PostgreSQL.

They mirror gis_service/geo/datums.py (the tests compare the two on random points).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = [
    # The published GCJ-02 offset (Krasovsky ellipsoid constants), as in datums._delta.
    """
    CREATE FUNCTION gis_gcj02_delta(lon float8, lat float8, OUT dlon float8, OUT dlat float8)
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        a CONSTANT float8 := 6378245.0;
        ee CONSTANT float8 := 0.00669342162296594323;
        x float8 := lon - 105.0;
        y float8 := lat - 35.0;
        sx float8 := sqrt(abs(lon - 105.0));
        common float8;
        radlat float8;
        magic float8;
        sqrtmagic float8;
    BEGIN
        common := (20.0 * sin(6.0 * x * pi()) + 20.0 * sin(2.0 * x * pi())) * 2.0 / 3.0;
        dlat := -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
            + (20.0 * sin(y * pi()) + 40.0 * sin(y / 3.0 * pi())) * 2.0 / 3.0
            + (160.0 * sin(y / 12.0 * pi()) + 320.0 * sin(y * pi() / 30.0)) * 2.0 / 3.0;
        dlon := 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
            + (20.0 * sin(x * pi()) + 40.0 * sin(x / 3.0 * pi())) * 2.0 / 3.0
            + (150.0 * sin(x / 12.0 * pi()) + 300.0 * sin(x / 30.0 * pi())) * 2.0 / 3.0;
        radlat := lat / 180.0 * pi();
        magic := 1.0 - ee * sin(radlat) * sin(radlat);
        sqrtmagic := sqrt(magic);
        dlat := (dlat * 180.0) / ((a * (1.0 - ee)) / (magic * sqrtmagic) * pi());
        dlon := (dlon * 180.0) / (a / sqrtmagic * cos(radlat) * pi());
    END $$
    """,
    # WGS84 → 'wgs84' | 'gcj02' | 'bd09'; GCJ-02 leaves points outside China unshifted.
    """
    CREATE FUNCTION gis_from_wgs84(lon float8, lat float8, datum text) RETURNS float8[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        d record;
        gx float8 := lon;
        gy float8 := lat;
        z float8;
        theta float8;
        xpi CONSTANT float8 := pi() * 3000.0 / 180.0;
    BEGIN
        IF datum NOT IN ('wgs84', 'gcj02', 'bd09') THEN
            RAISE EXCEPTION 'unknown datum %', datum USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF datum = 'wgs84' THEN
            RETURN ARRAY[lon, lat];
        END IF;
        IF lon BETWEEN 72.004 AND 137.8347 AND lat BETWEEN 0.8293 AND 55.8271 THEN
            d := gis_gcj02_delta(lon, lat);
            gx := lon + d.dlon;
            gy := lat + d.dlat;
        END IF;
        IF datum = 'bd09' THEN
            z := sqrt(gx * gx + gy * gy) + 0.00002 * sin(gy * xpi);
            theta := atan2(gy, gx) + 0.000003 * cos(gx * xpi);
            RETURN ARRAY[z * cos(theta) + 0.0065, z * sin(theta) + 0.006];
        END IF;
        RETURN ARRAY[gx, gy];
    END $$
    """,
    # Walks a GeoJSON coordinates array of any depth and shifts every position.
    """
    CREATE FUNCTION gis_coords_from_wgs84(c jsonb, datum text, decimals int) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        p float8[];
    BEGIN
        IF jsonb_typeof(c -> 0) = 'number' THEN
            p := gis_from_wgs84((c ->> 0)::float8, (c ->> 1)::float8, datum);
            RETURN jsonb_build_array(round(p[1]::numeric, decimals),
                                     round(p[2]::numeric, decimals));
        END IF;
        RETURN coalesce(
            (SELECT jsonb_agg(gis_coords_from_wgs84(e, datum, decimals) ORDER BY i)
               FROM jsonb_array_elements(c) WITH ORDINALITY AS t (e, i)),
            '[]'::jsonb);
    END $$
    """,
    # A geometry as GeoJSON in the datum a client asked for (RFC 7946 layout, lon first).
    """
    CREATE FUNCTION gis_geojson(g geometry, datum text DEFAULT 'wgs84', decimals int DEFAULT 7)
    RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    DECLARE
        j jsonb;
    BEGIN
        IF g IS NULL THEN
            RETURN NULL;
        END IF;
        IF datum = 'wgs84' THEN
            RETURN ST_AsGeoJSON(g, decimals)::jsonb;
        END IF;
        j := ST_AsGeoJSON(g, 15)::jsonb;
        IF j ->> 'type' = 'GeometryCollection' THEN
            RETURN jsonb_build_object('type', 'GeometryCollection', 'geometries',
                (SELECT coalesce(jsonb_agg(gis_geojson(d.geom, datum, decimals) ORDER BY d.path),
                                 '[]'::jsonb)
                   FROM ST_Dump(g) AS d));
        END IF;
        RETURN jsonb_set(j, '{coordinates}',
                         gis_coords_from_wgs84(j -> 'coordinates', datum, decimals));
    END $$
    """,
]

DOWNGRADE = [
    "DROP FUNCTION IF EXISTS gis_geojson(geometry, text, int)",
    "DROP FUNCTION IF EXISTS gis_coords_from_wgs84(jsonb, text, int)",
    "DROP FUNCTION IF EXISTS gis_from_wgs84(float8, float8, text)",
    "DROP FUNCTION IF EXISTS gis_gcj02_delta(float8, float8)",
]


def upgrade() -> None:
    """Create the datum functions."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the datum functions."""
    for statement in DOWNGRADE:
        op.execute(statement)
