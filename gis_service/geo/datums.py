"""WGS84 ⇄ GCJ-02 ⇄ BD-09 conversions, vectorised with NumPy.

GCJ-02 (AMap, Tencent, WeChat ``gcj02``) is an obfuscated datum, not an EPSG projection: it
shifts WGS84 by a few hundred metres inside China and leaves the rest of the world alone.
BD-09 (Baidu) is a further offset of GCJ-02. The forward formulas are the published ones; the
inverses are solved by fixed-point iteration to well under a millimetre.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the GCJ-02 formula uses
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

G = TypeVar("G", bound=shapely.Geometry)


class Datum(StrEnum):
    """The coordinate datums a client may speak."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """The rectangle inside which GCJ-02 applies its shift (outside, it equals WGS84)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """WGS84 → GCJ-02."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """GCJ-02 → WGS84, by iterating the forward formula until it reproduces the input."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    # Each point stops at its own convergence: a point then gets the same answer alone as
    # in a batch (iterating it further moves it by ~1e-13°, enough to cross a grid edge).
    active = np.ones(glon.shape, dtype=bool)
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon = np.where(active, wlon - elon, wlon)
        wlat = np.where(active, wlat - elat, wlat)
        active &= ~((np.abs(elon) < 1e-12) & (np.abs(elat) < 1e-12))
        if not active.any():
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """GCJ-02 → BD-09."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """BD-09 → GCJ-02: the published approximate inverse, refined by iteration."""
    blon = np.asarray(lon, dtype=float)
    blat = np.asarray(lat, dtype=float)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(10):
        flon, flat = gcj02_to_bd09(glon, glat)
        elon, elat = flon - blon, flat - blat
        glon, glat = glon - elon, glat - elat
        if np.all(np.abs(elon) < 1e-12) and np.all(np.abs(elat) < 1e-12):
            break
    return glon, glat


def to_wgs84(lon: ArrayLike, lat: ArrayLike, datum: Datum | str) -> tuple[NDArray, NDArray]:
    """Convert coordinates given in ``datum`` to WGS84."""
    datum = Datum(datum)
    if datum is Datum.gcj02:
        return gcj02_to_wgs84(lon, lat)
    if datum is Datum.bd09:
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, datum: Datum | str) -> tuple[NDArray, NDArray]:
    """Convert WGS84 coordinates to ``datum``."""
    datum = Datum(datum)
    if datum is Datum.gcj02:
        return wgs84_to_gcj02(lon, lat)
    if datum is Datum.bd09:
        return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _transform_geometry(geom: G, fn) -> G:
    def apply(coords: NDArray) -> NDArray:
        lon, lat = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, apply)


def geometry_to_wgs84(geom: G, datum: Datum | str) -> G:
    """A shapely geometry in ``datum`` converted to WGS84."""
    if Datum(datum) is Datum.wgs84:
        return geom
    return _transform_geometry(geom, lambda x, y: to_wgs84(x, y, datum))


def geometry_from_wgs84(geom: G, datum: Datum | str) -> G:
    """A WGS84 shapely geometry converted to ``datum``."""
    if Datum(datum) is Datum.wgs84:
        return geom
    return _transform_geometry(geom, lambda x, y: from_wgs84(x, y, datum))
