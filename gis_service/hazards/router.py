"""Thin HTTP routes for reading hazards (the write side is its own module)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gis_service.deps import BBox, Conn, Crs, Near, bbox_query, near_query, reject_unknown_query
from gis_service.errors import invalid, not_found
from gis_service.hazards import service, sql
from gis_service.hazards.models import CLOSED_STATUSES, HAZARD_STATUSES, OPEN_STATUSES
from gis_service.hazards.service import HazardFilter
from gis_service.listing import FormatDep, OutputFormat, PageDep, collection_response, csv_response
from gis_service.responses import GeoJSONResponse

router = APIRouter(prefix="/api/v1", tags=["hazards"], dependencies=[Depends(reject_unknown_query)])


def _csv_list(raw: str | None, allowed: tuple[str, ...] | None, name: str) -> list[str] | None:
    if raw is None or raw == "":
        return None
    items = [x.strip() for x in raw.split(",") if x.strip()]
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise invalid(
                f"Unknown {name}: {', '.join(bad)}. Allowed: {', '.join(allowed)}.", **{name: bad}
            )
    return items


def status_list(raw: str | None) -> list[str] | None:
    """Expand ``open``/``closed``/``all`` and check status names."""
    if raw in (None, "", "all"):
        return None
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if item == "open":
            out.extend(OPEN_STATUSES)
        elif item == "closed":
            out.extend(CLOSED_STATUSES)
        else:
            out.extend(_csv_list(item, HAZARD_STATUSES, "status") or [])
    return out


def hazard_filter_query(
    request: Request,
    bbox: Annotated[BBox | None, Depends(bbox_query)],
    near: Annotated[Near | None, Depends(near_query)],
    status: Annotated[
        str | None,
        Query(
            description="open, closed, all, or a comma list of states (reported, accepted, "
            "rejected, dispatched, in_progress, resolved, verified, closed)."
        ),
    ] = None,
    category: Annotated[
        str | None, Query(description="Comma list of hazard-category codes.")
    ] = None,
    grid: Annotated[
        int | None, Query(ge=1, description="Only hazards routed into this grid's subtree.")
    ] = None,
    since: Annotated[datetime | None, Query(description="Reported at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Reported before (ISO 8601).")] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not.")] = None,
) -> HazardFilter:
    """Parse every hazard-list filter."""
    known = tuple(request.app.state.catalog.hazard_categories)
    if since and until and since >= until:
        raise invalid("since must be before until.", since=str(since), until=str(until))
    return HazardFilter(
        statuses=status_list(status),
        categories=_csv_list(category, known, "category"),
        grid=grid,
        bbox=bbox,
        near=near,
        since=since,
        until=until,
        overdue=overdue,
    )


FilterDep = Annotated[HazardFilter, Depends(hazard_filter_query)]


def hazards_response(
    conn: Conn, request: Request, flt: HazardFilter, page, fmt: OutputFormat, crs
) -> Response:
    """A hazard list as GeoJSON or CSV (shared by /hazards and /grids/{id}/hazards)."""
    params = service.list_params(flt, crs)
    if fmt is OutputFormat.csv:
        return csv_response(conn, sql.HAZARD_LIST_CSV, {**params, **page.as_params()}, "hazards")
    return collection_response(conn, sql.HAZARD_LIST, params, request, page)


@router.get("/hazards", response_class=GeoJSONResponse, summary="Hazards, filtered and paged")
def list_hazards(
    conn: Conn, request: Request, flt: FilterDep, page: PageDep, fmt: FormatDep, crs: Crs
) -> Response:
    """Hazards by status, category, grid subtree, bbox, distance and time; newest first."""
    return hazards_response(conn, request, flt, page, fmt, crs)


@router.get(
    "/hazards/{hazard_id}", response_class=GeoJSONResponse, summary="One hazard with its history"
)
def get_hazard(
    conn: Conn,
    hazard_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    crs: Crs,
) -> GeoJSONResponse:
    """A hazard as a GeoJSON Feature, with every step of its history."""
    body = service.hazard_feature(conn, hazard_id, crs)
    if body is None:
        raise not_found(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    return GeoJSONResponse(body)
