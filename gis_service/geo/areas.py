"""The areas a request asks about: a bounding box, or a circle around a point. Parsed from
text, checked (order, range, size) and held in WGS84, whatever datum the caller used."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gis_service.errors import Invalid
from gis_service.geo.datums import Datum, to_wgs84

# Largest radius a near= query may ask for, in metres.
MAX_RADIUS_M = 5000.0


@dataclass(frozen=True)
class BBox:
    """A WGS84 bounding box (minx, miny, maxx, maxy)."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    @property
    def crosses_antimeridian(self) -> bool:
        """True when the box runs east from minx past 180° to maxx (OGC 17-069r4 §7.15.3)."""
        return self.minx > self.maxx

    def as_params(self) -> dict[str, float]:
        """Bound parameters for ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)."""
        return {"minx": self.minx, "miny": self.miny, "maxx": self.maxx, "maxy": self.maxy}


NO_BBOX: dict[str, None] = dict.fromkeys(("minx", "miny", "maxx", "maxy"))


def bbox_params(bbox: BBox | None) -> dict[str, float | None]:
    """Bound parameters of an optional bbox (all NULL switch its filter off)."""
    return bbox.as_params() if bbox else dict(NO_BBOX)


def parse_bbox(
    raw: str,
    max_area_km2: float | None,
    crs: Datum | str = Datum.wgs84,
    antimeridian: bool = False,
) -> BBox:
    """Parse ``minx,miny,maxx,maxy``; check order, range and (unless None) area. With
    ``antimeridian``, minx > maxx names a box across 180° (OGC API – Features allows it)."""
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise Invalid("bbox must be four numbers: minLon,minLat,maxLon,maxLat.", bbox=raw)
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise Invalid(
            "bbox must contain only numbers: minLon,minLat,maxLon,maxLat.", bbox=raw
        ) from exc
    if len(nums) == 6:  # OGC 17-069 allows a 3D bbox: minx,miny,minz,maxx,maxy,maxz
        nums = [nums[0], nums[1], nums[3], nums[4]]
    minx, miny, maxx, maxy = nums
    if not all(math.isfinite(n) for n in nums):
        raise Invalid("bbox values must be finite numbers.", bbox=raw)
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise Invalid(
            "bbox is out of range: longitudes in [-180, 180], latitudes in [-90, 90].", bbox=raw
        )
    if (minx > maxx and not antimeridian) or miny > maxy:
        raise Invalid(
            "bbox corners are crossed: give minLon,minLat,maxLon,maxLat with min ≤ max.", bbox=raw
        )
    if Datum(crs) is not Datum.wgs84:
        (x0, x1), (y0, y1) = to_wgs84([minx, maxx], [miny, maxy], crs)
        minx, maxx, miny, maxy = float(x0), float(x1), float(y0), float(y1)
    # Area on the sphere, roughly: enough to bound the work a request can cause.
    mean_lat = math.radians((miny + maxy) / 2)
    width = maxx - minx if minx <= maxx else maxx + 360 - minx
    area_km2 = width * 111.32 * math.cos(mean_lat) * (maxy - miny) * 110.57
    if max_area_km2 is not None and area_km2 > max_area_km2:
        raise Invalid(
            f"bbox covers about {area_km2:,.0f} km²; the most one request may ask for is "
            f"{max_area_km2:,.0f} km². Ask for a smaller area or page by tiles.",
            bbox=raw,
            area_km2=round(area_km2, 1),
            max_area_km2=max_area_km2,
        )
    return BBox(minx, miny, maxx, maxy)


@dataclass(frozen=True)
class Near:
    """A WGS84 point and a radius in metres."""

    lon: float
    lat: float
    radius_m: float


def near_params(near: Near | None) -> dict[str, float | None]:
    """Bound parameters :near_lon, :near_lat, :radius (all NULL switch the filter off)."""
    return {
        "near_lon": near.lon if near else None,
        "near_lat": near.lat if near else None,
        "radius": near.radius_m if near else None,
    }


def parse_lonlat(raw: str, crs: Datum | str, name: str = "near") -> tuple[float, float]:
    """Parse ``lon,lat`` given in ``crs``, check its range, and return it in WGS84."""
    try:
        lon, lat = (float(p) for p in raw.split(","))
    except ValueError as exc:
        raise Invalid(f"{name} must be lon,lat, two numbers.", **{name: raw}) from exc
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise Invalid(
            f"{name} is out of range: lon in [-180, 180], lat in [-90, 90].", **{name: raw}
        )
    wlon, wlat = to_wgs84(lon, lat, crs)
    return float(wlon), float(wlat)
