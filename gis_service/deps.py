"""Dependencies shared by every router: the database connection and common query parsers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import Connection

from gis_service.config import Settings
from gis_service.errors import invalid
from gis_service.geo.datums import Datum, to_wgs84

# The query parsers below are async on purpose: they only parse, and FastAPI runs a sync
# dependency in the thread pool, a hand-off that costs more than the parsing itself.


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    """A pooled connection for one request; reads run in autocommit-free read transactions."""
    with request.app.state.engine.connect() as conn:
        yield conn


Conn = Annotated[Connection, Depends(get_conn)]


@dataclass(frozen=True)
class PointQuery:
    """A point from the query string, already converted to WGS84."""

    lon: float
    lat: float
    crs: Datum
    input_lon: float
    input_lat: float


async def crs_query(
    crs: Annotated[
        Datum,
        Query(
            description="Datum of coordinates in the request and the response: wgs84 (GPS, "
            "default), gcj02 (AMap, Tencent, WeChat) or bd09 (Baidu)."
        ),
    ] = Datum.wgs84,
) -> Datum:
    """Parse ``crs``, shared by every parser that reads or writes coordinates."""
    return crs


Crs = Annotated[Datum, Depends(crs_query)]


async def point_query(
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude in degrees.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude in degrees.")],
    crs: Crs,
) -> PointQuery:
    """Parse ``lon`` and ``lat`` (in the datum ``crs``) and convert the point to WGS84."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    return PointQuery(float(wlon), float(wlat), crs, lon, lat)


async def at_query(
    at: Annotated[
        str | None,
        Query(
            description="Answer as of this date or ISO 8601 time (grids valid then); default: now.",
            examples=["2026-01-01"],
        ),
    ] = None,
) -> datetime | None:
    """Parse ``at`` as a date (midnight UTC) or an ISO 8601 datetime."""
    if at is None:
        return None
    try:
        if len(at) == 10:
            return datetime.combine(date.fromisoformat(at), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(at)
    except ValueError as exc:
        raise invalid(
            "Parameter 'at' must be a date (YYYY-MM-DD) or an ISO 8601 datetime.", at=at
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BBox:
    """A WGS84 bounding box (minx, miny, maxx, maxy)."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    def as_params(self) -> dict[str, float]:
        """Bound parameters for ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)."""
        return {"minx": self.minx, "miny": self.miny, "maxx": self.maxx, "maxy": self.maxy}


def parse_bbox(
    raw: str, settings: Settings, crs: Datum | str = Datum.wgs84, cap_area: bool = True
) -> BBox:
    """Parse ``minx,miny,maxx,maxy``; check order, range and (if ``cap_area``) area."""
    import math

    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise invalid("bbox must be four numbers: minLon,minLat,maxLon,maxLat.", bbox=raw)
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise invalid(
            "bbox must contain only numbers: minLon,minLat,maxLon,maxLat.", bbox=raw
        ) from exc
    if len(nums) == 6:  # OGC 17-069 allows a 3D bbox: minx,miny,minz,maxx,maxy,maxz
        nums = [nums[0], nums[1], nums[3], nums[4]]
    minx, miny, maxx, maxy = nums
    if not all(math.isfinite(n) for n in nums):
        raise invalid("bbox values must be finite numbers.", bbox=raw)
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise invalid(
            "bbox is out of range: longitudes in [-180, 180], latitudes in [-90, 90].", bbox=raw
        )
    if minx > maxx or miny > maxy:
        raise invalid(
            "bbox corners are crossed: give minLon,minLat,maxLon,maxLat with min ≤ max.", bbox=raw
        )
    if Datum(crs) is not Datum.wgs84:
        (x0, x1), (y0, y1) = to_wgs84([minx, maxx], [miny, maxy], crs)
        minx, maxx, miny, maxy = float(x0), float(x1), float(y0), float(y1)
    # Area on the sphere, roughly: enough to bound the work a request can cause.
    mean_lat = math.radians((miny + maxy) / 2)
    area_km2 = (maxx - minx) * 111.32 * math.cos(mean_lat) * (maxy - miny) * 110.57
    if cap_area and area_km2 > settings.max_bbox_area_km2:
        raise invalid(
            f"bbox covers about {area_km2:,.0f} km²; the most one request may ask for is "
            f"{settings.max_bbox_area_km2:,.0f} km². Ask for a smaller area or page by tiles.",
            bbox=raw,
            area_km2=round(area_km2, 1),
            max_area_km2=settings.max_bbox_area_km2,
        )
    return BBox(minx, miny, maxx, maxy)


async def bbox_query(
    request: Request,
    crs: Crs,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat (in the datum given by crs).",
            examples=["113.60,34.70,113.65,34.74"],
        ),
    ] = None,
) -> BBox | None:
    """Parse the optional ``bbox`` query parameter."""
    if bbox is None:
        return None
    return parse_bbox(bbox, request.app.state.settings, crs)


async def limit_query(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size; values above the maximum are clamped.")
    ] = None,
) -> int:
    """The page size: default when absent, clamped to the maximum (never refused)."""
    settings: Settings = request.app.state.settings
    if limit is None:
        return settings.default_limit
    return min(limit, settings.max_limit)


def _declared_query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query_names(sub)
    return names


# Accepted on every route: Open311 clients send their API key as a query parameter.
GLOBAL_QUERY_PARAMS = frozenset({"api_key"})


async def reject_unknown_query(request: Request) -> None:
    """400 for a query parameter the route does not declare: a typo must not pass silently."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = getattr(route, "_gis_allowed_query", None)
    if allowed is None:
        allowed = _declared_query_names(dependant)
        route._gis_allowed_query = allowed
    unknown = sorted(set(request.query_params) - allowed - GLOBAL_QUERY_PARAMS)
    if unknown:
        from gis_service.errors import bad_request

        raise bad_request(
            f"Unknown query parameter(s): {', '.join(unknown)}. "
            f"This endpoint takes: {', '.join(sorted(allowed)) or 'none'}.",
            unknown=unknown,
            allowed=sorted(allowed),
        )


@dataclass(frozen=True)
class Near:
    """A WGS84 point and a radius in metres."""

    lon: float
    lat: float
    radius_m: float


MAX_RADIUS_M = 5000.0


async def near_query(
    crs: Crs,
    near: Annotated[
        str | None,
        Query(
            description="lon,lat of a centre (in the datum crs); use with radius.",
            examples=["113.64,34.72"],
        ),
    ] = None,
    radius: Annotated[
        float, Query(gt=0, le=MAX_RADIUS_M, description="Radius around near, in metres.")
    ] = 250.0,
) -> Near | None:
    """Parse ``near=lon,lat`` and ``radius`` (metres, measured on the spheroid)."""
    if near is None:
        return None
    lon, lat = parse_lonlat(near, crs)
    return Near(lon, lat, radius)


def parse_lonlat(raw: str, crs: Datum | str, name: str = "near") -> tuple[float, float]:
    """Parse ``lon,lat`` given in ``crs``, check its range, and return it in WGS84."""
    try:
        lon, lat = (float(p) for p in raw.split(","))
    except ValueError as exc:
        raise invalid(f"{name} must be lon,lat, two numbers.", **{name: raw}) from exc
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise invalid(
            f"{name} is out of range: lon in [-180, 180], lat in [-90, 90].", **{name: raw}
        )
    wlon, wlat = to_wgs84(lon, lat, crs)
    return float(wlon), float(wlat)
