"""Dependencies shared by every router: the app's settings, catalog and database, and the
common query parsers (crs, a point, at, bbox, near, unknown parameters)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from pydantic import AfterValidator, BeforeValidator
from sqlalchemy import Connection, Engine

from gis_service.catalog.schemas import X_DECLARED, Catalog
from gis_service.clock import Clock
from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX
from gis_service.db.reads import ReadDb
from gis_service.errors import BadRequest, Invalid
from gis_service.geo.areas import (
    BBOX_DESCRIPTION,
    MAX_RADIUS_M,
    BBox,
    Near,
    parse_bbox,
    parse_lonlat,
)
from gis_service.geo.datums import Datum, to_wgs84
from gis_service.idempotency import IdempotencyKeyText
from gis_service.instants import (
    INSTANT_PATTERN,
    as_utc,
    instant_pattern,
    parse_instant,
)


def code_list_pattern(codes: Iterable[str]) -> str:
    """The pattern of a comma list of ``codes`` as csv_list reads it (blank items and blanks
    around an item are allowed), for the document to state what the server accepts."""
    alternatives = "|".join(re.escape(code) for code in sorted(set(codes)))
    item = rf"\s*({alternatives})?\s*"
    return rf"^{item}(,{item})*$"


def code_list_query(description: str, codes: Iterable[str] | str, **kw: Any) -> Any:
    """The Query of a comma list of codes (csv_list reads it): ``codes`` are the codes, or
    the name of a catalogue list whose codes the document gets at app start."""
    # Documented only: csv_list checks the codes and says which are unknown (a pattern
    # refused by the framework would only say that it does not match).
    if isinstance(codes, str):
        mark: Any = f"code-list:{codes}"
    else:
        mark = {"pattern": code_list_pattern(codes)}
    return Query(description=description, json_schema_extra={X_DECLARED: mark}, **kw)


def lonlat_query(description: str) -> Any:
    """The Query of a point as ``lon,lat`` (parse_lonlat reads it; LONLAT_SCHEMA states it)."""
    return Query(
        description=description, examples=["113.64,34.72"], json_schema_extra={X_DECLARED: "lonlat"}
    )


def id_query(description: str) -> Any:
    """The Query of an optional object id: 1 to the largest bigint (a larger one used to
    reach the database and fail there with a 500)."""
    return Query(ge=1, le=BIGINT_MAX, description=description)


def id_path(description: str = "Object id.") -> Any:
    """The Path of an object id: 1 to the largest bigint."""
    return Path(ge=1, le=BIGINT_MAX, description=description)


# The query parsers below are async on purpose: they only parse, and FastAPI runs a sync
# dependency in the thread pool, a hand-off that costs more than the parsing itself.


def settings_of(request: Request) -> Settings:
    """The app's settings (the one place that reads them off the app)."""
    return request.app.state.settings


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return settings_of(request)


async def get_catalog(request: Request) -> Catalog:
    """The app's layer catalog (facility types, hazard categories, departments)."""
    return request.app.state.catalog


async def get_engine(request: Request) -> Engine:
    """The app's engine, for work that needs a connection of its own (rate limits, imports)."""
    return request.app.state.engine


async def get_clock(request: Request) -> Clock:
    """The app's clock (the database's, unless a test gave another)."""
    return request.app.state.clock


def get_conn(request: Request) -> Iterator[Connection]:
    """A pooled connection for one request; reads run in autocommit-free read transactions."""
    with request.app.state.engine.connect() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ClockDep = Annotated[Clock, Depends(get_clock)]
Conn = Annotated[Connection, Depends(get_conn)]

# The primary's WAL position after a client's last write (hex), so its reads see that write.
LSN_COOKIE = "gis_lsn"
# Long enough for any healthy replica to replay the write; replicas lagging more are skipped.
LSN_COOKIE_MAX_AGE_S = 60


async def get_reads(request: Request) -> ReadDb:
    """The async read pools (primary and replicas), with what this client must see."""
    raw = request.cookies.get(LSN_COOKIE, "")
    try:
        min_lsn = int(raw, 16) if raw and len(raw) <= 16 else 0
    except ValueError:
        min_lsn = 0
    return ReadDb(request.app.state.reads, min_lsn)


Db = Annotated[ReadDb, Depends(get_reads)]


def install_read_your_writes(app) -> None:
    """After a successful write, give the client the primary's WAL position (cookie), so its
    next reads go only to replicas that have replayed that far (or to the primary).

    Pure ASGI, and installed only when there are replicas: no cost on any other request.
    """
    inner = app.build_middleware_stack

    def build():
        asgi = inner()

        async def middleware(scope, receive, send):
            if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
                return await asgi(scope, receive, send)

            async def send_with_lsn(message):
                if message["type"] == "http.response.start" and message["status"] < 400:
                    lsn = await app.state.reads.current_lsn()
                    cookie = (
                        f"{LSN_COOKIE}={lsn:x}; Max-Age={LSN_COOKIE_MAX_AGE_S}; Path=/; "
                        "HttpOnly; SameSite=Lax"
                    )
                    headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                    message = {**message, "headers": headers}
                await send(message)

            return await asgi(scope, receive, send_with_lsn)

        return middleware

    app.build_middleware_stack = build


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

# The Idempotency-Key header of every write a phone may retry (reports, moves, visits, patrols).
IdempotencyKey = Annotated[
    IdempotencyKeyText | None,
    Header(
        alias="Idempotency-Key",
        description="A client key (8-200 printable characters): the same request sent again "
        "with the same key (an offline queue retrying) returns the first result instead of "
        "acting twice; the key sent with another body is refused (422).",
    ),
]


async def point_query(
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude in degrees.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude in degrees.")],
    crs: Crs,
) -> PointQuery:
    """Parse ``lon`` and ``lat`` (in the datum ``crs``) and convert the point to WGS84."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    return PointQuery(float(wlon), float(wlat), crs, lon, lat)


# The years assessments and the working calendar cover (its data and the deadline arithmetic
# live there): stated in the document, so that a far year is a documented refusal.
ASSESSED_YEARS = "(20[0-9]{2}|2100)"
ASSESSED_INSTANT_PATTERN = instant_pattern(ASSESSED_YEARS, r"(20(0[048]|[2468][048]|[13579][26]))")


def _not_a_number(value: Any) -> Any:
    """Pydantic reads a bare number as seconds since 1970; a date parameter never is one."""
    if isinstance(value, int | float) or (
        isinstance(value, str)
        and re.fullmatch(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*", value)
    ):
        raise ValueError("must be a date or an ISO 8601 date-time, not a number")
    return value


def _in_utc(value: datetime) -> datetime:
    """In UTC (naive means UTC): PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 and
    pydantic accept (-18:36 was a 500 on /audit)."""
    return as_utc(value if value.tzinfo else value.replace(tzinfo=UTC))


Instant = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]
"""A date-time query parameter: ISO 8601 text only (never seconds since 1970), in UTC."""


def instant_param(raw: str | None, name: str) -> datetime | None:
    """A date or ISO 8601 date-time parameter (see gis_service.instants); 422 when bad."""
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise Invalid(
            f"Parameter '{name}' must be a date (YYYY-MM-DD) or an ISO 8601 datetime.",
            **{name: raw},
        ) from exc


async def at_query(
    at: Annotated[
        str | None,
        Query(
            pattern=INSTANT_PATTERN,
            description="Answer as of this date or ISO 8601 time (grids valid then); default: now.",
            examples=["2026-01-01"],
        ),
    ] = None,
) -> datetime | None:
    """Parse ``at`` as a date (midnight UTC) or an ISO 8601 datetime."""
    return instant_param(at, "at")


At = Annotated[datetime | None, Depends(at_query)]


async def bbox_query(
    crs: Crs,
    bbox: Annotated[
        str | None,
        Query(
            description=f"In the datum given by crs: {BBOX_DESCRIPTION}",
            examples=["113.60,34.70,113.65,34.74"],
            # Documented as parse_bbox reads it (gis_service.http.routes puts BBOX_SCHEMA here).
            json_schema_extra={X_DECLARED: "bbox"},
        ),
    ] = None,
) -> BBox | None:
    """Parse the optional ``bbox`` query parameter: no area cap, the lists it filters are
    paged (limit bounds the work, as on /ogc)."""
    if bbox is None:
        return None
    return parse_bbox(bbox, crs)


BBoxDep = Annotated[BBox | None, Depends(bbox_query)]


def _declared_query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query_names(sub)
    return names


# Accepted on every route: Open311 clients send their API key as a query parameter.
GLOBAL_QUERY_PARAMS = frozenset({"api_key"})


def query_pairs(request: Request) -> list[tuple[str, str]]:
    """The query's name/value pairs in order, credentials left out: what links may repeat
    (an api_key would otherwise be copied into every self, next and alternate link, and
    from there into logs, caches and browser histories)."""
    return [(k, v) for k, v in request.query_params.multi_items() if k not in GLOBAL_QUERY_PARAMS]


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
        raise BadRequest(
            f"Unknown query parameter(s): {', '.join(unknown)}. "
            f"This endpoint takes: {', '.join(sorted(allowed)) or 'none'}.",
            unknown=unknown,
            allowed=sorted(allowed),
        )


async def near_query(
    crs: Crs,
    near: Annotated[
        str | None,
        lonlat_query("lon,lat of a centre (in the datum crs); use with radius."),
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


NearDep = Annotated[Near | None, Depends(near_query)]
