"""WGS84 ⇄ GCJ-02 ⇄ BD-09 against published pairs, round trips, and SQL against Python."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, text

from gis_service.geo.datums import (
    bd09_to_gcj02,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)

# Pairs published with the widely used coordtransform library (Beijing, 116.404, 39.915).
WGS_TO_GCJ = ((116.404, 39.915), (116.41024449916938, 39.91640428150164))
GCJ_TO_BD = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))
# Baidu's one-step inverse is approximate (a few cm); ours iterates to the exact inverse.
BD_TO_GCJ_APPROX = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    k = np.cos(np.radians(lat1)) * 111_320.0
    return np.hypot((np.asarray(lon1) - lon2) * k, (np.asarray(lat1) - lat2) * 110_574.0)


def test_published_pairs() -> None:
    (lon, lat), (elon, elat) = WGS_TO_GCJ
    assert wgs84_to_gcj02(lon, lat) == pytest.approx((elon, elat), abs=1e-9)
    (lon, lat), (elon, elat) = GCJ_TO_BD
    assert gcj02_to_bd09(lon, lat) == pytest.approx((elon, elat), abs=1e-9)
    (lon, lat), (elon, elat) = BD_TO_GCJ_APPROX
    assert bd09_to_gcj02(lon, lat) == pytest.approx((elon, elat), abs=1e-6)


def test_zhengzhou_offset_is_hundreds_of_metres() -> None:
    glon, glat = wgs84_to_gcj02(113.64, 34.72)
    assert 300 < float(_metres(113.64, 34.72, glon, glat)) < 800


def test_outside_china_is_unchanged() -> None:
    assert wgs84_to_gcj02(2.35, 48.85) == pytest.approx((2.35, 48.85))


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_round_trips_stay_within_a_metre(datum: str) -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.5, 134.5, 5000)
    lat = rng.uniform(18.5, 53.0, 5000)
    back = to_wgs84(*from_wgs84(lon, lat, datum), datum)
    assert _metres(lon, lat, *back).max() < 0.01
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert _metres(lon, lat, *gcj02_to_wgs84(glon, glat)).max() < 0.01


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_sql_functions_match_python(engine: Engine, datum: str) -> None:
    rng = np.random.default_rng(11)
    lon = rng.uniform(73.5, 134.5, 500)
    lat = rng.uniform(18.5, 53.0, 500)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT gis_from_wgs84(x, y, :d) FROM unnest(CAST(:xs AS float8[]),"
                " CAST(:ys AS float8[])) WITH ORDINALITY AS t (x, y, i) ORDER BY i"
            ),
            {"xs": lon.tolist(), "ys": lat.tolist(), "d": datum},
        ).scalars()
        got = np.array(list(rows))
    exp_lon, exp_lat = from_wgs84(lon, lat, datum)
    assert np.abs(got[:, 0] - exp_lon).max() < 1e-10
    assert np.abs(got[:, 1] - exp_lat).max() < 1e-10
