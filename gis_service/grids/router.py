"""Thin HTTP routes for grids: locate points; list, read and summarise grids; check their
coverage, follow their redrawing and reassign hazards after it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gis_service.auth.deps import PUBLIC_READ, ClientIp, CurrentPrincipal, require
from gis_service.auth.principal import Principal
from gis_service.db.transaction import transaction
from gis_service.errors import Invalid, NotFound
from gis_service.geo.datums import to_wgs84
from gis_service.grids import schemas, service, sql
from gis_service.grids.changes import changes
from gis_service.grids.coverage import Tolerances, check_coverage
from gis_service.grids.levels import Level
from gis_service.grids.reassign import reassign
from gis_service.grids.service import GridFilter
from gis_service.hazards.deps import FilterDep, hazard_list
from gis_service.hazards.states import OPEN_STATUSES
from gis_service.http.bodies import json_body, json_body_doc
from gis_service.http.deps import (
    INSTANT_PATTERN,
    At,
    BBoxDep,
    Conn,
    Crs,
    Db,
    PointQuery,
    SettingsDep,
    id_path,
    id_query,
    instant_param,
    point_query,
    reject_unknown_query,
)
from gis_service.http.errors import error_body
from gis_service.http.listing import FormatDep, Page, PageDep, list_response
from gis_service.http.responses import GeoJSONResponse, RawJSONResponse, bulk_json

router = APIRouter(prefix="/api/v1", tags=["grids"], dependencies=[Depends(reject_unknown_query)])

PUBLIC = [Depends(PUBLIC_READ)]
DISPATCHERS = require(roles={"admin", "street_staff"}, scopes={"dispatch"})
# The coverage check is a tool of those who draw and import the grids, and it costs
# geometry work on every grid of the subtree: not a public read (a loop of anonymous calls
# would keep the database busy).
MAINTAINERS = require(roles={"admin", "street_staff"}, scopes={"import"})

_ERRORS = {
    404: {
        "description": "Not found",
        "content": {
            "application/json": {"example": error_body("not_found", "No grid covers this point.")}
        },
    },
    422: {"description": "Invalid parameter"},
}

GridId = Annotated[int, id_path("Grid id.")]


@router.get(
    "/locate",
    dependencies=PUBLIC,
    response_class=RawJSONResponse,
    response_model=schemas.LocateResult,
    responses=_ERRORS,
    summary="Which grids (and who) is responsible for this point",
)
async def locate(
    db: Db,
    point: Annotated[PointQuery, Depends(point_query)],
    at: At,
    principal: CurrentPrincipal,
) -> RawJSONResponse:
    """The chain of grids (street → community → grid → micro-grid) covering the point, each
    with its responsible people (names and work phones; mobile phones for staff in scope);
    the finest also carries its open-hazard count."""
    body = await service.locate(db, point.lon, point.lat, at, principal)
    if body is None and at is not None:
        first = await service.first_grid_from(db, point.lon, point.lat)
        if first is not None and first > at:
            raise NotFound(
                f"No grid covered this point on {at:%Y-%m-%d}: the first grid here began on "
                f"{first:%Y-%m-%d}. Ask for a later date (at=) or leave at= out for today.",
                code="no_grid_at_date",
                lon=point.input_lon,
                lat=point.input_lat,
                crs=point.crs.value,
                at=at.isoformat(),
                first_grid_from=first.isoformat(),
            )
    if body is None:
        near = await service.nearest_grid(db, point.lon, point.lat)
        detail = {"lon": point.input_lon, "lat": point.input_lat, "crs": point.crs.value}
        message = "No grid covers this point; it lies outside the governed territory."
        if near:
            detail["nearest_grid"] = {
                "id": near["id"],
                "code": near["code"],
                "name": near["name"],
                "distance_m": float(near["distance_m"]),
            }
            message += (
                f" The nearest is {near['name']} ({near['code']}), {near['distance_m']} m away."
            )
        raise NotFound(message, **detail)
    return RawJSONResponse(body)


@router.post(
    "/locate",
    dependencies=PUBLIC,
    response_class=RawJSONResponse,
    response_model=schemas.BatchLocateResult,
    summary="Locate many points at once",
    openapi_extra=json_body_doc(schemas.BatchLocateRequest),
)
async def locate_batch(
    request: Request,
    db: Db,
    settings: SettingsDep,
    body: Annotated[schemas.BatchLocateRequest, Depends(json_body(schemas.BatchLocateRequest))],
    at: At,
) -> RawJSONResponse:
    """For each point, its finest grid id, code and chain of ids, or null when outside."""
    limit = settings.max_batch
    if len(body.points) > limit:
        raise Invalid(
            f"Too many points: {len(body.points)}; send at most {limit} per request.",
            count=len(body.points),
            max_batch=limit,
        )
    lons = [p[0] for p in body.points]
    lats = [p[1] for p in body.points]
    wlons, wlats = to_wgs84(lons, lats, body.crs)
    results = await service.locate_many(db, wlons, wlats, at)
    return await bulk_json(request, f'{{"count": {len(lons)}, "results": {results}}}')


async def grid_filter_query(
    bbox: BBoxDep,
    at: At,
    level: Annotated[Level | None, Query(description="Only grids of this level.")] = None,
    parent: Annotated[int | None, id_query("Only children of this grid.")] = None,
    within: Annotated[int | None, id_query("Only grids in this grid's subtree.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Code prefix or part of the name."),
    ] = None,
) -> GridFilter:
    """Parse the grid-list filters."""
    return GridFilter(level=level, parent=parent, ancestor=within, bbox=bbox, q=q, at=at)


async def _grid_list(
    db: Db, request: Request, flt: GridFilter, page: Page, fmt: FormatDep, crs: Crs
) -> Response:
    statements = (sql.GRID_LIST, sql.GRID_LIST_CSV)
    return await list_response(db, request, page, fmt, statements, flt.as_params(crs), "grids")


@router.get(
    "/grids",
    dependencies=PUBLIC,
    response_class=GeoJSONResponse,
    summary="Grids, filtered and paged",
)
async def list_grids(
    db: Db,
    request: Request,
    flt: Annotated[GridFilter, Depends(grid_filter_query)],
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
) -> Response:
    """Grids by level, parent, subtree, bbox or a text search on name and code."""
    return await _grid_list(db, request, flt, page, fmt, crs)


# ---- the grids' lifecycle: coverage, the changes feed, reassignment after a redraw --------
# Declared before /grids/{grid_id} so that "check", "changes" and "reassign" are not ids.


@router.get(
    "/grids/check",
    response_class=GeoJSONResponse,
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Not a grid maintainer, or the subtree lies outside your area"},
        404: {"description": "No current grid has this code"},
    },
    summary="Coverage check: gaps, overlaps, children outside their parent, slivers, no leader",
)
def grids_check(
    conn: Conn,
    principal: Annotated[Principal, Depends(MAINTAINERS)],
    root: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Grid code of the subtree (default: the caller's area).",
        ),
    ] = None,
    sliver_m2: Annotated[float, Query(gt=0, le=10000, description="Slivers: smaller than.")] = 10.0,
    sliver_width_m: Annotated[
        float, Query(ge=0, le=100, description="Slivers: thinner than (2·area/perimeter).")
    ] = 0.5,
    noise_m2: Annotated[float, Query(ge=0, le=1, description="Ignored: smaller than.")] = 0.01,
) -> GeoJSONResponse:
    """Each finding is a Feature with its geometry and area in m² (on the spheroid)."""
    root = service.scoped_root(conn, principal, root)
    try:
        body = check_coverage(conn, root, Tolerances(noise_m2, sliver_m2, sliver_width_m))
    except LookupError as exc:
        raise NotFound(str(exc), root=root) from exc
    return GeoJSONResponse(json.dumps(body, ensure_ascii=False))


@router.get(
    "/grids/changes",
    dependencies=PUBLIC,
    summary="Grids added, redrawn or retired since a date (the boundary history)",
)
def grids_changes(
    conn: Conn,
    crs: Crs,
    since: Annotated[
        str,
        Query(
            pattern=INSTANT_PATTERN, description="Date or ISO 8601 time.", examples=["2026-01-01"]
        ),
    ],
    until: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Date or ISO 8601 time (exclusive).")
    ] = None,
    root: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    level: Annotated[Level | None, Query()] = None,
    geometry: Annotated[bool, Query(description="Include each grid's geometry.")] = False,
) -> dict:
    """One entry per event: added, changed (with the fields that changed) or retired."""
    start = instant_param(since, "since")
    end = instant_param(until, "until")
    return changes(conn, start, end, root, level, geometry, crs.value)


def reassign_query(
    conn: Conn,
    principal: Annotated[Principal, Depends(DISPATCHERS)],
    root: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    hazards: Annotated[str | None, Query(description="Comma list of hazard public codes.")] = None,
) -> tuple[str | None, list[str] | None]:
    """The subtree root (within the caller's scope) and the optional hazard codes."""
    codes = [c.strip() for c in hazards.split(",") if c.strip()] if hazards else None
    return service.scoped_root(conn, principal, root), codes


ReassignQuery = Annotated[tuple[str | None, list[str] | None], Depends(reassign_query)]


@router.get(
    "/grids/reassign",
    summary="Open hazards that now lie in another grid (dry run: moves nothing)",
)
def reassign_plan(
    conn: Conn, principal: Annotated[Principal, Depends(DISPATCHERS)], query: ReassignQuery
) -> dict:
    """What POST would move: each hazard's old and new grid and responsible person. Only
    hazards whose old and new grids both lie in your area are listed."""
    root, codes = query
    return reassign(conn, root, apply=False, codes=codes, principal=principal)


@router.post(
    "/grids/reassign",
    summary="Move open hazards to the grids that now cover them (recorded as hazard events)",
)
def reassign_apply(
    conn: Conn,
    principal: Annotated[Principal, Depends(DISPATCHERS)],
    ip: ClientIp,
    query: ReassignQuery,
) -> dict:
    """Apply the plan GET shows (optionally only the listed hazards), in one transaction;
    each move writes a hazard event and an audit row."""
    root, codes = query
    with transaction(conn):
        return reassign(conn, root, apply=True, codes=codes, principal=principal, ip=ip)


@router.get(
    "/grids/{grid_id}",
    dependencies=PUBLIC,
    response_class=GeoJSONResponse,
    response_model=schemas.GridFeature,
    responses=_ERRORS,
    summary="One grid as a GeoJSON Feature",
)
async def get_grid(
    db: Db, grid_id: GridId, crs: Crs, principal: CurrentPrincipal
) -> GeoJSONResponse:
    """A grid with its chain, people and open-hazard count (whole subtree); staff in scope
    also see the people's mobile phones."""
    body = await service.grid_feature(db, grid_id, crs, principal)
    if body is None:
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)
    return GeoJSONResponse(body)


async def _require(db: Db, grid_id: int) -> None:
    if not await service.exists(db, grid_id):
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)


@router.get(
    "/grids/{grid_id}/children",
    dependencies=PUBLIC,
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="The grids directly under a grid",
)
async def grid_children(
    db: Db, request: Request, grid_id: GridId, page: PageDep, fmt: FormatDep, crs: Crs
) -> Response:
    """Current child grids, by level and code."""
    await _require(db, grid_id)
    return await _grid_list(db, request, GridFilter(parent=grid_id), page, fmt, crs)


@router.get(
    "/grids/{grid_id}/ancestors",
    dependencies=PUBLIC,
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="The grids above a grid, street first",
)
async def grid_ancestors(db: Db, grid_id: GridId, crs: Crs) -> GeoJSONResponse:
    """The chain above the grid as a FeatureCollection, street first."""
    await _require(db, grid_id)
    return GeoJSONResponse(await service.ancestors(db, grid_id, crs))


@router.get(
    "/grids/{grid_id}/summary",
    dependencies=PUBLIC,
    response_class=RawJSONResponse,
    response_model=schemas.GridSummary,
    responses=_ERRORS,
    summary="People, open hazards and facilities of a grid's subtree",
)
async def grid_summary(db: Db, grid_id: GridId, principal: CurrentPrincipal) -> RawJSONResponse:
    """Responsible people with roles and work phones (mobile phones for staff in scope); open
    and overdue hazards by category and status; facility counts by type; all for the grid's
    whole subtree."""
    body = await service.summary(db, grid_id, principal)
    if body is None:
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)
    return RawJSONResponse(body)


@router.get(
    "/grids/{grid_id}/hazards",
    dependencies=PUBLIC,
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="Hazards in a grid's subtree (open ones by default)",
)
async def grid_hazards(
    db: Db,
    request: Request,
    grid_id: GridId,
    flt: FilterDep,
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
) -> Response:
    """Hazards routed into this grid or below; ``status`` defaults to open."""
    await _require(db, grid_id)
    statuses = flt.statuses
    if "status" not in request.query_params:
        statuses = list(OPEN_STATUSES)
    flt = replace(flt, grid=grid_id, statuses=statuses)
    return await hazard_list(db, request, flt, page, fmt, crs)
