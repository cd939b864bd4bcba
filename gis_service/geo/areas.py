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

    def as_params(self) -> dict[str, float | None]:
        """Bound parameters of bbox_sql: the box east of minx, and west_maxx, the end of its
        part west of the antimeridian (None when it does not cross it)."""
        crossing = self.crosses_antimeridian
        return {
            "minx": self.minx,
            "miny": self.miny,
            "maxx": 180.0 if crossing else self.maxx,
            "maxy": self.maxy,
            "west_maxx": self.maxx if crossing else None,
        }


NO_BBOX: dict[str, None] = dict.fromkeys(("minx", "miny", "maxx", "maxy", "west_maxx"))


_INTERSECTS = "ST_Intersects({geom}, {box})"
_EAST = "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"
_WEST = "ST_MakeEnvelope(-180, :miny, :west_maxx, :maxy, 4326)"


def bbox_given_sql(geom: str, crossing: bool, test: str = _INTERSECTS) -> str:
    """The SQL condition that ``geom`` meets a bbox that is given (bbox_params bound): one
    envelope, or, for a box across the antimeridian, that one or its part west of it (OGC
    17-069r4 §7.15.3, the rule /ogc applies too)."""
    east = test.format(geom=geom, box=_EAST)
    return f"({east} OR {test.format(geom=geom, box=_WEST)})" if crossing else east


def bbox_sql(geom: str, test: str = _INTERSECTS) -> str:
    """The SQL condition that ``geom`` meets the optional bbox of bbox_params (true when
    there is none), by the rule of bbox_given_sql."""
    return (
        f"(CAST(:minx AS float8) IS NULL OR {test.format(geom=geom, box=_EAST)}"
        f" OR (CAST(:west_maxx AS float8) IS NOT NULL AND {test.format(geom=geom, box=_WEST)}))"
    )


def bbox_params(bbox: BBox | None) -> dict[str, float | None]:
    """Bound parameters of an optional bbox (all NULL switch its filter off)."""
    return bbox.as_params() if bbox else dict(NO_BBOX)


# What parse_bbox reads, as the OpenAPI documents of /api and /ogc both state it (one rule
# for both: OGC 17-069r4 §7.15.3); sent as one comma list (style form, explode false).
BBOX_SCHEMA = {
    "type": "array",
    "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
    "items": {"type": "number", "minimum": -180, "maximum": 180},
}
BBOX_DESCRIPTION = (
    "minLon,minLat,maxLon,maxLat (or six numbers with heights, ignored); minLon > maxLon "
    "crosses the antimeridian; latitudes beyond ±90 are read as the pole, and latitudes given "
    "in the wrong order are read in the right one."
)


def parse_bbox(raw: str, crs: Datum | str = Datum.wgs84) -> BBox:
    """Parse ``minx,miny,maxx,maxy`` (BBOX_SCHEMA, BBOX_DESCRIPTION) and check its range;
    minx > maxx names a box across 180° (OGC API – Features). No area cap: what it filters
    is paged, so its size does not bound the work."""
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise Invalid("bbox must be four numbers: minLon,minLat,maxLon,maxLat.", bbox=raw)
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise Invalid(
            "bbox must contain only numbers: minLon,minLat,maxLon,maxLat.", bbox=raw
        ) from exc
    if not all(math.isfinite(n) for n in nums):
        raise Invalid("bbox values must be finite numbers.", bbox=raw)
    if not all(-180 <= n <= 180 for n in nums):
        raise Invalid("bbox is out of range: every number lies in [-180, 180].", bbox=raw)
    if len(nums) == 6:  # OGC 17-069 allows a 3D bbox: minx,miny,minz,maxx,maxy,maxz
        nums = [nums[0], nums[1], nums[3], nums[4]]
    minx, maxx = nums[0], nums[2]
    # A box reaching past a pole reaches the pole; one given top before bottom is the same box.
    miny, maxy = sorted(max(-90.0, min(90.0, v)) for v in (nums[1], nums[3]))
    if Datum(crs) is not Datum.wgs84 and minx <= maxx:  # the Chinese datums stay in China
        (x0, x1), (y0, y1) = to_wgs84([minx, maxx], [miny, maxy], crs)
        minx, maxx, miny, maxy = float(x0), float(x1), float(y0), float(y1)
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


# What parse_lonlat reads, as the OpenAPI document states it: lon,lat as one comma list.
LONLAT_SCHEMA = {
    "type": "array",
    "minItems": 2,
    "maxItems": 2,
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "items": {"type": "number"},
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
