"""WKB written from arrays reads back as the same points, in order, in PostGIS too."""

from __future__ import annotations

import shapely
from sqlalchemy import text

from gis_service.geo.wkb import multipoint
from tests.support.databases import Databases

XS = [113.6051, -179.99999999999997, 0.0, -0.0, 180.0, 1e-300]
YS = [34.7111, -90.0, 90.0, 12.345678901234567, -0.5, 5e-324]


def test_multipoint_round_trips_every_bit() -> None:
    geom = shapely.from_wkb(multipoint(XS, YS))
    assert [(p.x, p.y) for p in geom.geoms] == list(zip(XS, YS, strict=True))


def test_postgis_reads_the_points_in_order(databases: Databases) -> None:
    engine = databases.engine("wkb")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT ST_X(d.geom), ST_Y(d.geom), ST_SRID(d.geom)"
                    " FROM ST_Dump(ST_GeomFromWKB(:b, 4326)) AS d ORDER BY d.path[1]"
                ),
                {"b": multipoint(XS, YS)},
            ).all()
    finally:
        engine.dispose()
    assert [(x, y) for x, y, _ in rows] == list(zip(XS, YS, strict=True))
    assert {srid for *_, srid in rows} == {4326}
