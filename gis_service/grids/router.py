"""Thin HTTP routes for grids: locate points, list, read and summarise grids."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gis_service.auth.deps import CurrentPrincipal
from gis_service.errors import Invalid, NotFound
from gis_service.geo.datums import to_wgs84
from gis_service.grids import schemas, service, sql
from gis_service.grids.service import GridFilter
from gis_service.hazards.deps import FilterDep, hazard_list
from gis_service.hazards.states import OPEN_STATUSES
from gis_service.http.deps import (
    At,
    BBoxDep,
    Conn,
    Crs,
    PointQuery,
    SettingsDep,
    point_query,
    reject_unknown_query,
)
from gis_service.http.errors import error_body
from gis_service.http.listing import FormatDep, Page, PageDep, list_response
from gis_service.http.responses import GeoJSONResponse, RawJSONResponse

router = APIRouter(prefix="/api/v1", tags=["grids"], dependencies=[Depends(reject_unknown_query)])

_ERRORS = {
    404: {
        "description": "Not found",
        "content": {
            "application/json": {"example": error_body("not_found", "No grid covers this point.")}
        },
    },
    422: {"description": "Invalid parameter"},
}

GridId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Grid id.")]
Level = Literal["street", "community", "grid", "micro_grid", "special"]


@router.get(
    "/locate",
    response_class=RawJSONResponse,
    response_model=schemas.LocateResult,
    responses=_ERRORS,
    summary="Which grids (and who) is responsible for this point",
)
def locate(
    conn: Conn,
    point: Annotated[PointQuery, Depends(point_query)],
    at: At,
    principal: CurrentPrincipal,
) -> RawJSONResponse:
    """The chain of grids (street → community → grid → micro-grid) covering the point, each
    with its responsible people (names and work phones; mobile phones for staff in scope);
    the finest also carries its open-hazard count."""
    body = service.locate(conn, point.lon, point.lat, at, principal)
    if body is None:
        near = service.nearest_grid(conn, point.lon, point.lat)
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
    response_class=RawJSONResponse,
    response_model=schemas.BatchLocateResult,
    summary="Locate many points at once",
)
def locate_batch(
    conn: Conn, settings: SettingsDep, body: schemas.BatchLocateRequest, at: At
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
    results = service.locate_many(conn, [float(x) for x in wlons], [float(y) for y in wlats], at)
    return RawJSONResponse(f'{{"count": {len(lons)}, "results": {results}}}')


async def grid_filter_query(
    bbox: BBoxDep,
    at: At,
    level: Annotated[Level | None, Query(description="Only grids of this level.")] = None,
    parent: Annotated[int | None, Query(ge=1, description="Only children of this grid.")] = None,
    within: Annotated[
        int | None, Query(ge=1, description="Only grids in this grid's subtree.")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Code prefix or part of the name."),
    ] = None,
) -> GridFilter:
    """Parse the grid-list filters."""
    return GridFilter(level=level, parent=parent, ancestor=within, bbox=bbox, q=q, at=at)


def _grid_list(
    conn: Conn, request: Request, flt: GridFilter, page: Page, fmt: FormatDep, crs: Crs
) -> Response:
    statements = (sql.GRID_LIST, sql.GRID_LIST_CSV)
    return list_response(conn, request, page, fmt, statements, flt.as_params(crs), "grids")


@router.get("/grids", response_class=GeoJSONResponse, summary="Grids, filtered and paged")
def list_grids(
    conn: Conn,
    request: Request,
    flt: Annotated[GridFilter, Depends(grid_filter_query)],
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
) -> Response:
    """Grids by level, parent, subtree, bbox or a text search on name and code."""
    return _grid_list(conn, request, flt, page, fmt, crs)


@router.get(
    "/grids/{grid_id}",
    response_class=GeoJSONResponse,
    response_model=schemas.GridFeature,
    responses=_ERRORS,
    summary="One grid as a GeoJSON Feature",
)
def get_grid(conn: Conn, grid_id: GridId, crs: Crs, principal: CurrentPrincipal) -> GeoJSONResponse:
    """A grid with its chain, people and open-hazard count (whole subtree); staff in scope
    also see the people's mobile phones."""
    body = service.grid_feature(conn, grid_id, crs, principal)
    if body is None:
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)
    return GeoJSONResponse(body)


def _require(conn: Conn, grid_id: int) -> None:
    if not service.exists(conn, grid_id):
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)


@router.get(
    "/grids/{grid_id}/children",
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="The grids directly under a grid",
)
def grid_children(
    conn: Conn, request: Request, grid_id: GridId, page: PageDep, fmt: FormatDep, crs: Crs
) -> Response:
    """Current child grids, by level and code."""
    _require(conn, grid_id)
    return _grid_list(conn, request, GridFilter(parent=grid_id), page, fmt, crs)


@router.get(
    "/grids/{grid_id}/ancestors",
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="The grids above a grid, street first",
)
def grid_ancestors(conn: Conn, grid_id: GridId, crs: Crs) -> GeoJSONResponse:
    """The chain above the grid as a FeatureCollection, street first."""
    _require(conn, grid_id)
    return GeoJSONResponse(service.ancestors(conn, grid_id, crs))


@router.get(
    "/grids/{grid_id}/summary",
    response_class=RawJSONResponse,
    response_model=schemas.GridSummary,
    responses=_ERRORS,
    summary="People, open hazards and facilities of a grid's subtree",
)
def grid_summary(conn: Conn, grid_id: GridId, principal: CurrentPrincipal) -> RawJSONResponse:
    """Responsible people with roles and work phones (mobile phones for staff in scope); open
    and overdue hazards by category and status; facility counts by type; all for the grid's
    whole subtree."""
    body = service.summary(conn, grid_id, principal)
    if body is None:
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)
    return RawJSONResponse(body)


@router.get(
    "/grids/{grid_id}/hazards",
    response_class=GeoJSONResponse,
    responses=_ERRORS,
    summary="Hazards in a grid's subtree (open ones by default)",
)
def grid_hazards(
    conn: Conn,
    request: Request,
    grid_id: GridId,
    flt: FilterDep,
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
) -> Response:
    """Hazards routed into this grid or below; ``status`` defaults to open."""
    _require(conn, grid_id)
    statuses = flt.statuses
    if "status" not in request.query_params:
        statuses = list(OPEN_STATUSES)
    flt = replace(flt, grid=grid_id, statuses=statuses)
    return hazard_list(conn, request, flt, page, fmt, crs)
