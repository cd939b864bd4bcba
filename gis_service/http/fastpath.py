"""The hottest public reads past FastAPI's dependency solving, with the same answers.

Locate, a page of facilities by bbox and a vector tile are most of a public map's traffic;
for each, FastAPI's routing and dependency solving cost about a quarter of the worker's CPU
(py-spy, bench/api_vs_tipg.py), more than the statement itself. Here a plain request of
one of them (GET, no credentials, only the common parameters, each in the strict form the
route's validation accepts) is parsed by a few lines and handed to the route's own
endpoint function, with the route's own dependency functions for what they compute; its
Response is sent as FastAPI would send it. The dispatcher sits inside the app's middleware
and exception handlers (edge guard, body cap, security headers, gzip, metrics and request
log, the error table), so those see the request exactly as they see any other.

Anything else (HEAD, an unknown, repeated or malformed parameter, at=, a filter, a key,
token or session cookie) takes the ordinary route, whose validation answers it: the fast
path never judges input it does not fully understand. tests/test_fastpath.py sends the same
requests, good and hostile, through both and compares status, headers, body and log line.
The routes stay declared as they are, so the OpenAPI document does not change.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gis_service.auth.deps import PUBLIC_READ, presents_credentials
from gis_service.auth.principal import ANONYMOUS
from gis_service.db.limits import BIGINT_MAX
from gis_service.facilities.router import facility_filter_query, list_facilities
from gis_service.geo.datums import Datum
from gis_service.grids.router import locate
from gis_service.http.deps import (
    bbox_query,
    crs_query,
    get_catalog,
    get_reads,
    point_query,
    settings_of,
)
from gis_service.http.listing import MAX_OFFSET, format_query, page_query
from gis_service.http.routes import iter_routes
from gis_service.tiles.router import get_tile
from gis_service.tiles.tilesets import MAX_ZOOM, MIN_ZOOM

# Numbers in the one spelling every validator reads alike (no sign, blank, exponent,
# underscore or leading zero); any other spelling goes the ordinary way.
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{1,15})?")
_NATURAL = re.compile(r"0|[1-9][0-9]{0,18}")
_DATUMS = {d.value: d for d in Datum}

# Endpoint keyword arguments, or None: let the ordinary route answer.
Parser = Callable[[Request, dict[str, str]], Awaitable[dict[str, Any] | None]]


def _query(request: Request, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query as a dict when every name is allowed and given once, else None."""
    pairs = request.query_params.multi_items()
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= allowed:
        return None
    return query


def _decimal(raw: str | None, bound: float) -> float | None:
    if raw is None or not _DECIMAL.fullmatch(raw):
        return None
    value = float(raw)
    return value if -bound <= value <= bound else None


def _natural(raw: str, low: int, high: int) -> int | None:
    if not _NATURAL.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _datum(query: dict[str, str]) -> Datum | None:
    return _DATUMS.get(query.get("crs", Datum.wgs84.value))


async def _locate(request: Request, _: dict[str, str]) -> dict[str, Any] | None:
    """GET /api/v1/locate?lon=…&lat=…[&crs=…]."""
    query = _query(request, frozenset({"lon", "lat", "crs"}))
    if query is None:
        return None
    lon, lat, datum = _decimal(query.get("lon"), 180), _decimal(query.get("lat"), 90), _datum(query)
    if lon is None or lat is None or datum is None:
        return None
    crs = await crs_query(datum)
    return {
        "db": await get_reads(request),
        "point": await point_query(lon, lat, crs),
        "at": None,
        "principal": await PUBLIC_READ(ANONYMOUS),
    }


async def _facilities(request: Request, _: dict[str, str]) -> dict[str, Any] | None:
    """GET /api/v1/facilities?bbox=…[&limit=…][&offset=…][&crs=…]."""
    query = _query(request, frozenset({"bbox", "limit", "offset", "crs"}))
    if query is None:
        return None
    datum = _datum(query)
    limit = offset = None
    if "limit" in query:
        limit = _natural(query["limit"], 1, BIGINT_MAX)
        if limit is None:
            return None
    if "offset" in query:
        offset = _natural(query["offset"], 0, MAX_OFFSET)
        if offset is None:
            return None
    if datum is None:
        return None
    await PUBLIC_READ(ANONYMOUS)
    crs = await crs_query(datum)
    # bbox_query is the route's own parser: a bad bbox raises its own 422 from here.
    bbox = await bbox_query(crs, query.get("bbox"))
    return {
        "db": await get_reads(request),
        "request": request,
        "flt": await facility_filter_query(await get_catalog(request), bbox, None),
        "page": await page_query(settings_of(request), limit, 0 if offset is None else offset),
        "fmt": await format_query(request, None),
        "crs": crs,
    }


async def _tile(request: Request, path_params: dict[str, str]) -> dict[str, Any] | None:
    """GET /tiles/{layer}/{z}/{x}/{y}.pbf (the route reads no query parameter)."""
    z = _natural(path_params["z"], MIN_ZOOM, MAX_ZOOM)
    x = _natural(path_params["x"], 0, 2**MAX_ZOOM - 1)
    y = _natural(path_params["y"], 0, 2**MAX_ZOOM - 1)
    tags = request.headers.getlist("if-none-match")
    if z is None or x is None or y is None or len(tags) > 1:
        return None
    await PUBLIC_READ(ANONYMOUS)
    return {
        "request": request,
        "db": await get_reads(request),
        "layer": path_params["layer"],
        "z": z,
        "x": x,
        "y": y,
        "if_none_match": tags[0] if tags else None,
    }


@dataclass(frozen=True)
class FastRoute:
    """One route served past the dependency solver: the route FastAPI would pick (for the
    request log and metrics), its endpoint, and the parser of its plain requests."""

    route: Any
    endpoint: Callable[..., Awaitable[Any]]
    parse: Parser


class FastPaths:
    """The dispatcher in front of the app's router (see the module docstring)."""

    def __init__(self, router: ASGIApp, exact: dict[str, FastRoute], patterns: list) -> None:
        self.router = router
        self.exact = exact
        self.patterns = patterns  # [(compiled path regex, FastRoute)]

    def _match(self, path: str) -> tuple[FastRoute, dict[str, str]] | None:
        found = self.exact.get(path)
        if found is not None:
            return found, {}
        for regex, fast in self.patterns:
            m = regex.match(path)
            if m is not None:
                return fast, m.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            matched = self._match(scope["path"])
            if matched is not None:
                fast, path_params = matched
                request = Request(scope, receive)
                if not presents_credentials(request):
                    # What the router and current_principal record: the request log and the
                    # metrics read them (set first: a parser's 422 is logged under them).
                    scope["route"], scope["endpoint"] = fast.route, fast.endpoint
                    scope["path_params"] = path_params
                    request.state.principal = ANONYMOUS
                    kwargs = await fast.parse(request, path_params)
                    if kwargs is not None:
                        response = await fast.endpoint(**kwargs)
                        await response(scope, receive, send)
                        return
        await self.slow(scope, receive, send)

    async def slow(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ordinary route."""
        await self.router(scope, receive, send)


_PARSERS: dict[Callable[..., Any], Parser] = {
    locate: _locate,
    list_facilities: _facilities,
    get_tile: _tile,
}


def fast_paths(app: FastAPI, router: ASGIApp) -> FastPaths:
    """The dispatcher for ``app``'s routes of the fast endpoints, in front of ``router``."""
    exact: dict[str, FastRoute] = {}
    patterns = []
    for info in iter_routes(app):
        parse = _PARSERS.get(getattr(info.original, "endpoint", None))
        if parse is None or "GET" not in info.methods:
            continue
        fast = FastRoute(info.original, info.original.endpoint, parse)
        if info.original.param_convertors:
            patterns.append((info.original.path_regex, fast))
        else:
            exact[info.path] = fast
    missing = set(_PARSERS) - {f.endpoint for f in [*exact.values(), *(p[1] for p in patterns)]}
    if missing:
        raise RuntimeError(f"fast paths without a route: {sorted(f.__name__ for f in missing)}")
    return FastPaths(router, exact, patterns)


def install_fast_paths(app: FastAPI) -> None:
    """Put the dispatcher between the app's exception handling and its router."""
    inner = app.build_middleware_stack

    def build() -> ASGIApp:
        asgi = inner()
        node = asgi
        # FastAPI's innermost layer (AsyncExitStackMiddleware) calls the router itself.
        while getattr(node, "app", None) is not app.router:
            node = node.app
        node.app = fast_paths(app, app.router)
        return asgi

    app.build_middleware_stack = build  # type: ignore[method-assign]
