"""Thin HTTP routes for facilities (部件)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gis_service.errors import Invalid, NotFound
from gis_service.facilities import service
from gis_service.facilities.service import FacilityFilter
from gis_service.facilities.states import FACILITY_STATUSES
from gis_service.http.deps import (
    BBoxDep,
    CatalogDep,
    Crs,
    Db,
    NearDep,
    PointQuery,
    code_list_query,
    id_path,
    id_query,
    point_query,
    reject_unknown_query,
)
from gis_service.http.listing import FormatDep, PageDep, list_response
from gis_service.http.responses import GeoJSONResponse

router = APIRouter(
    prefix="/api/v1", tags=["facilities"], dependencies=[Depends(reject_unknown_query)]
)

MAX_K = 100


def _codes(raw: str | None, allowed, name: str) -> list[str] | None:
    if not raw:
        return None
    items = [x.strip() for x in raw.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        raise Invalid(
            f"Unknown {name}: {', '.join(bad)}. Known: {', '.join(sorted(allowed))}.",
            **{name: bad},
        )
    return items


async def facility_filter_query(
    catalog: CatalogDep,
    bbox: BBoxDep,
    near: NearDep,
    type: Annotated[
        str | None,
        code_list_query("Comma list of facility-type codes (see layers/).", "facility_types"),
    ] = None,
    status: Annotated[
        str | None,
        code_list_query(f"Comma list of: {', '.join(FACILITY_STATUSES)}.", FACILITY_STATUSES),
    ] = None,
    grid: Annotated[int | None, id_query("Only inside this grid.")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Code prefix or name part.")
    ] = None,
) -> FacilityFilter:
    """Parse every facility-list filter."""
    return FacilityFilter(
        types=_codes(type, catalog.facility_types, "type"),
        statuses=_codes(status, FACILITY_STATUSES, "status"),
        bbox=bbox,
        near=near,
        grid=grid,
        q=q,
    )


@router.get("/facilities", response_class=GeoJSONResponse, summary="Facilities, filtered")
async def list_facilities(
    db: Db,
    request: Request,
    flt: Annotated[FacilityFilter, Depends(facility_filter_query)],
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
) -> Response:
    """Facilities by bbox, type, status, grid, or within ``radius`` metres of ``near``."""
    statements, params = flt.query(crs)
    return await list_response(db, request, page, fmt, statements, params, "facilities")


@router.get(
    "/facilities/nearest", response_class=GeoJSONResponse, summary="The k nearest facilities"
)
async def nearest_facilities(
    db: Db,
    catalog: CatalogDep,
    point: Annotated[PointQuery, Depends(point_query)],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many.")] = 5,
    type: Annotated[
        str | None, code_list_query("Comma list of facility-type codes.", "facility_types")
    ] = None,
) -> GeoJSONResponse:
    """The k nearest facilities (KNN on the spatial index), nearest first, with distances."""
    types = _codes(type, catalog.facility_types, "type")
    body = await service.nearest(db, point.lon, point.lat, k, types, point.crs)
    return GeoJSONResponse(body)


@router.get(
    "/facilities/{facility_id}",
    response_class=GeoJSONResponse,
    summary="One facility with its grid chain",
)
async def get_facility(
    db: Db, facility_id: Annotated[int, id_path("Facility id.")], crs: Crs
) -> GeoJSONResponse:
    """A facility as a GeoJSON Feature with the grids it lies in."""
    body = await service.facility_feature(db, facility_id, crs)
    if body is None:
        raise NotFound(f"Facility {facility_id} does not exist.", id=facility_id)
    return GeoJSONResponse(body)
