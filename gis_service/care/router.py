"""Thin HTTP routes of the care registry: categories (public), people under care and
households (staff in scope, audited), counts, visit coverage and the overdue tint (no names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gis_service.auth.deps import PUBLIC_READ, ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.care import service
from gis_service.db.limits import BIGINT_MAX
from gis_service.geo.areas import parse_lonlat
from gis_service.hazards.deps import csv_list
from gis_service.http.deps import (
    ASSESSED_YEARS,
    BBoxDep,
    CatalogDep,
    Conn,
    Crs,
    SettingsDep,
    code_list_query,
    lonlat_query,
    reject_unknown_query,
)
from gis_service.http.listing import PageDep
from gis_service.http.responses import GeoJSONResponse, RawJSONResponse

router = APIRouter(
    prefix="/api/v1/care", tags=["care (七必访)"], dependencies=[Depends(reject_unknown_query)]
)

# Personal data: staff (and keys) holding read_private, and only inside their subtree.
CARE_READ = require(scopes={"read_private"})
# Counts name nobody: any logged-in user or key of the subtree (not anonymous visitors).
COUNTS_READ = require(scopes={"read"})

PersonId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="A person under care.")]
HouseholdId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="A household.")]
GridParam = Annotated[
    int | None,
    Query(ge=1, le=BIGINT_MAX, description="Grid whose subtree to read; default: your scope."),
]
_PRIVATE_RESPONSES = {
    401: {"description": "Not logged in."},
    403: {"description": "No read_private scope (API keys without it see nothing here)."},
    404: {"description": "No such record in your area (a private record is not confirmed)."},
    422: {"description": "A bad parameter."},
}
_COUNT_RESPONSES = {
    401: {"description": "Not logged in."},
    404: {"description": "The grid does not exist or lies outside your scope."},
    422: {"description": "A bad parameter."},
}


def _via(request: Request) -> str:
    return f"{request.method} {request.url.path}"


@router.get(
    "/categories",
    summary="Categories of people under care (七必访) with visit frequencies; the needs list",
    dependencies=[Depends(PUBLIC_READ)],
)
def care_categories(catalog: CatalogDep) -> dict:
    """From layers/care.yaml: each category and at most how many days pass between visits
    (a person in several categories is visited as often as the most frequent asks), and the
    tick list of needs a visit records. Names no person."""
    return service.categories_json(catalog)


@router.get(
    "/people",
    summary="People under care of my area, soonest due (or nearest) first",
    responses=_PRIVATE_RESPONSES,
)
def list_people(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(CARE_READ)],
    page: PageDep,
    crs: Crs,
    grid: GridParam = None,
    category: Annotated[
        str | None, code_list_query("Comma list of category codes.", "care_categories")
    ] = None,
    due: Annotated[
        str | None,
        code_list_query(
            "Comma list of overdue (逾期未访), today (今日待访), later, none.", service.DUE_STATES
        ),
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name, address or code.")
    ] = None,
    near: Annotated[str | None, lonlat_query("lon,lat (in crs): nearest first.")] = None,
) -> RawJSONResponse:
    """Names, addresses, phones and categories, with the next-due date of each person (from
    the most frequent of their categories) and an AMap link to the household. Every person
    returned is written to the audit log as read by you."""
    result = service.people(
        conn,
        principal,
        catalog,
        grid=grid,
        categories=csv_list(category, tuple(c.code for c in catalog.care.categories), "category"),
        due=csv_list(due, service.DUE_STATES, "due"),
        q=q,
        near=parse_lonlat(near, crs) if near else None,
        crs=crs,
        limit=page.limit,
        offset=page.offset,
        ip=ip,
        via=_via(request),
    )
    return RawJSONResponse(service.dump(result))


@router.get(
    "/people/{care_person_id}",
    summary="One person under care with the latest visits (audited)",
    responses=_PRIVATE_RESPONSES,
)
def get_person(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    care_person_id: PersonId,
    principal: Annotated[Principal, Depends(CARE_READ)],
    crs: Crs,
) -> RawJSONResponse:
    """The record and the 20 latest visits; the read is written to the audit log."""
    result = service.person(conn, principal, catalog, care_person_id, crs, ip, _via(request))
    return RawJSONResponse(service.dump(result))


@router.get(
    "/households",
    summary="Households of my area with their people under care (audited)",
    responses=_PRIVATE_RESPONSES,
)
def list_households(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(CARE_READ)],
    page: PageDep,
    crs: Crs,
    grid: GridParam = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Address, name or code.")
    ] = None,
) -> RawJSONResponse:
    """Each household (code, address, phone, grid, location) with its people under care."""
    result = service.households(
        conn,
        principal,
        catalog,
        grid=grid,
        q=q,
        crs=crs,
        limit=page.limit,
        offset=page.offset,
        ip=ip,
        via=_via(request),
    )
    return RawJSONResponse(service.dump(result))


@router.get(
    "/households/{household_id}",
    summary="One household with its people under care (audited)",
    responses=_PRIVATE_RESPONSES,
)
def get_household(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    household_id: HouseholdId,
    principal: Annotated[Principal, Depends(CARE_READ)],
    crs: Crs,
) -> RawJSONResponse:
    """The household and its people; the read is written to the audit log."""
    result = service.household(conn, principal, catalog, household_id, crs, ip, _via(request))
    return RawJSONResponse(service.dump(result))


@router.get(
    "/counts",
    summary="How many people under care of each category, overdue and due today (no names)",
    responses=_COUNT_RESPONSES,
)
def care_counts(
    conn: Conn,
    principal: Annotated[Principal, Depends(COUNTS_READ)],
    grid: GridParam = None,
) -> dict:
    """Counts of your subtree (or of a grid in it); any logged-in user or API key."""
    return service.counts(conn, principal, grid)


@router.get(
    "/coverage",
    summary="Visit coverage per grid for a month: % of people visited on time (no names)",
    responses=_COUNT_RESPONSES,
)
def care_coverage(
    conn: Conn,
    principal: Annotated[Principal, Depends(COUNTS_READ)],
    settings: SettingsDep,
    grid: GridParam = None,
    month: Annotated[
        str | None,
        Query(
            pattern=rf"^{ASSESSED_YEARS}-(0[1-9]|1[0-2])$",
            description="YYYY-MM, a month that has begun; default: this month.",
        ),
    ] = None,
) -> dict:
    """For each child grid of the grid (or of your scope root): people under care, those
    visited on time (their next-due day never passed without a visit during the month, up
    to now), those visited at all, visits, overdue now and due today; and the total."""
    # "This month" is the street office's (Beijing) month: before 08:00 on the 1st, UTC is
    # still in the month before and the new month would be refused as not begun.
    today = datetime.now(ZoneInfo(settings.local_timezone)).date()
    return service.coverage(conn, principal, grid, service.parse_month(month, today))


@router.get(
    "/overdue-map",
    response_class=GeoJSONResponse,
    summary="Micro-grids holding people under care, with overdue counts, for the map's tint",
    responses={**_COUNT_RESPONSES, 200: {"content": {"application/geo+json": {}}}},
)
def overdue_map(
    conn: Conn,
    principal: Annotated[Principal, Depends(COUNTS_READ)],
    bbox: BBoxDep,
    crs: Crs,
    grid: GridParam = None,
) -> Response:
    """A FeatureCollection of micro-grids with people, overdue and due_today counts (no
    names), most overdue first; the map tints micro-grids by it. Not in the vector tiles:
    tiles are public and cached, and these counts are for staff."""
    return GeoJSONResponse(service.overdue_map(conn, principal, grid, bbox, crs))
