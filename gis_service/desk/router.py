"""Thin HTTP routes of the staff desk: queues with counts, the units of a scope, dispatch
candidates, and the ledger (台账) as JSON or XLSX."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from gis_service.auth.deps import require
from gis_service.auth.principal import Principal
from gis_service.db.limits import BIGINT_MAX
from gis_service.desk import service
from gis_service.desk.service import DeskFilter
from gis_service.hazards.deps import csv_list
from gis_service.http.deps import (
    CatalogDep,
    Conn,
    Instant,
    SettingsDep,
    code_list_query,
    id_query,
    reject_unknown_query,
)
from gis_service.http.listing import PageDep
from gis_service.instants import clip_span

router = APIRouter(prefix="/api/v1", tags=["desk"], dependencies=[Depends(reject_unknown_query)])

# The desk shows private fields (handlers, addresses of residents' reports): staff only.
STAFF = require(scopes={"read_private"})
DISPATCHER = require(scopes={"dispatch"})
HazardId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
# The end of a dashboard's or ledger's period, cut by clip_span at LONGEST_DESK_SPAN.
CutUntil = Annotated[
    Instant,
    Query(
        description="Reported before (ISO 8601); cut at three years after since, and "
        "nothing when not after since."
    ),
]
SEVERITIES = ("low", "medium", "high", "critical")
SOURCES = ("patrol", "resident", "camera", "hotline", "superior")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The longest period the dashboard and the ledger cover: a longer one is cut there (the
# answer's since/until say what was covered), a reversed one holds nothing.
LONGEST_DESK_SPAN = timedelta(days=366 * 3)


async def desk_filter_query(
    catalog: CatalogDep,
    grid: Annotated[
        int | None,
        id_query("Only this grid's subtree (a community, a grid…)."),
    ] = None,
    category: Annotated[
        str | None,
        code_list_query(
            "Comma list of hazard-category codes.", "hazard_categories", max_length=2000
        ),
    ] = None,
    severity: Annotated[
        str | None,
        code_list_query("Comma list: low, medium, high, critical.", SEVERITIES, max_length=200),
    ] = None,
    source: Annotated[
        str | None,
        code_list_query(
            "Comma list: patrol, resident, camera, hotline, superior.", SOURCES, max_length=200
        ),
    ] = None,
    since: Annotated[Instant | None, Query(description="Reported at or after (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Reported before (ISO 8601).")] = None,
) -> DeskFilter:
    """Parse the desk's filters."""
    known = tuple(catalog.hazard_categories)
    return DeskFilter(
        grid=grid,
        categories=csv_list(category, known, "category"),
        severities=csv_list(severity, SEVERITIES, "severity"),
        sources=csv_list(source, SOURCES, "source"),
        since=since,
        until=until,
    )


FilterDep = Annotated[DeskFilter, Depends(desk_filter_query)]
Queue = Literal[
    "to_accept",
    "to_dispatch",
    "in_progress",
    "to_verify",
    "to_approve",
    "suspended",
    "overdue",
    "due_24h",
    "mine",
]
_NOT_IN_SCOPE = {404: {"description": "The grid does not exist or lies outside your scope."}}


@router.get(
    "/queues", summary="How many hazards wait in each queue of my scope", responses=_NOT_IN_SCOPE
)
def queue_counts(
    conn: Conn, principal: Annotated[Principal, Depends(STAFF)], flt: FilterDep
) -> dict:
    """Counts of the desk's queues over the caller's grid subtree (and the cases assigned to
    them): to_accept (待受理: reported), to_dispatch (待派遣: accepted), in_progress (处置中:
    dispatched or in progress), to_verify (待核查: resolved or verified), to_approve (待审批:
    a request for 延期, 缓办, 退回 or 作废 waits for its decision), suspended (缓办中: the
    clock stopped until resumed), overdue (已逾期),
    due_24h (24 工作时内到期: due within 24 working hours, clock running) and mine (我的任务:
    assigned to my person, clock running, wherever it lies). The filters narrow every queue
    alike."""
    return service.queue_counts(conn, principal, service.checked_filter(conn, principal, flt))


@router.get(
    "/queues/{queue}",
    summary="The hazards of one queue of my scope, sorted and paged",
    responses=_NOT_IN_SCOPE,
)
def queue_list(
    conn: Conn,
    principal: Annotated[Principal, Depends(STAFF)],
    queue: Annotated[Queue, Path(description="One of the queues of GET /api/v1/queues.")],
    flt: FilterDep,
    page: PageDep,
    sort: Annotated[
        Literal["reported_at", "due_at", "severity", "category", "status", "code", "grid"],
        Query(description="Column to sort by."),
    ] = "reported_at",
    order: Annotated[Literal["asc", "desc"], Query(description="Sort order.")] = "desc",
) -> dict:
    """Rows of one queue (the same cases as its count), with category, severity, status,
    source, street › community › grid, report time, deadline and handler."""
    flt = service.checked_filter(conn, principal, flt)
    return service.queue_list(
        conn, principal, queue, flt, sort, order == "desc", page.limit, page.offset
    )


@router.get(
    "/units", summary="The streets, communities or grids of my scope", responses=_NOT_IN_SCOPE
)
def scope_units(
    conn: Conn,
    principal: Annotated[Principal, Depends(STAFF)],
    level: Annotated[
        Literal["street", "community", "grid", "micro_grid", "special"],
        Query(description="Grid level to list."),
    ] = "community",
    within: Annotated[int | None, id_query("Only inside this grid's subtree.")] = None,
) -> dict:
    """Current grids of one level inside the caller's scope, without geometry, each with the
    names above it (街道 › 社区): for pickers and filters."""
    return service.units(conn, principal, level, within)


@router.get(
    "/hazards/{hazard_id}/candidates",
    summary="Who a hazard may be dispatched to: people of my scope, nearest first",
    responses={
        403: {"description": "You may not dispatch this hazard."},
        404: {"description": "No such hazard."},
    },
)
def dispatch_candidates(
    conn: Conn, principal: Annotated[Principal, Depends(DISPATCHER)], hazard_id: HazardId
) -> dict:
    """People with a current assignment on a grid of the caller's scope, each with role,
    grid (and 街道 › 社区), open workload (cases assigned now, clock running) and distance
    from the hazard to their grid (0 inside it); the ones whose grid holds the hazard first.
    Also the departments a case may go to."""
    return service.candidates(conn, principal, hazard_id)


@router.get(
    "/stats/dashboard",
    summary="Everything the dashboard (统计) draws, for a subtree and a period",
    responses={
        404: {"description": "The grid does not exist or lies outside your scope."},
        422: {"description": "Bad period."},
    },
)
def stats_dashboard(
    settings: SettingsDep,
    conn: Conn,
    principal: Annotated[Principal, Depends(STAFF)],
    since: Annotated[Instant, Query(description="Reported at or after (ISO 8601).")],
    until: CutUntil,
    grid: Annotated[int | None, id_query("Subtree; default: your scope root.")] = None,
    interval: Annotated[
        Literal["day", "week"], Query(description="Periods of the series: day or week.")
    ] = "day",
) -> dict:
    """Over the hazards reported in [since, until) in the subtree: total, open, closed and
    overdue; reported and closed per local day or week (closed counts closings in the
    period); by category; by community with 按期结案率 (closed cases fed back by their
    deadline ÷ closed cases, duplicates left out) and the median hours from report to close;
    the busiest grids. Also the ten oldest open hazards and heat cells (~200 m) of the open
    hazards of the subtree, whatever the period."""
    until = clip_span(since, until, LONGEST_DESK_SPAN)
    tz = settings.local_timezone
    return service.dashboard(conn, principal, grid, since, until, interval, tz)


@router.get(
    "/ledger",
    summary="The ledger (台账) of a unit and a period, as JSON or XLSX",
    responses={
        200: {"content": {"application/json": {}, XLSX: {}}},
        404: {"description": "The grid does not exist or lies outside your scope."},
        422: {"description": "Bad period."},
    },
)
def hazard_ledger(
    settings: SettingsDep,
    conn: Conn,
    principal: Annotated[Principal, Depends(STAFF)],
    since: Annotated[Instant, Query(description="Reported at or after (ISO 8601).")],
    until: CutUntil,
    grid: Annotated[
        int | None,
        id_query("Street, community or grid; default: your scope."),
    ] = None,
    f: Annotated[Literal["json", "xlsx"], Query(description="json (default) or xlsx.")] = "json",
) -> Response:
    """Every hazard reported in [since, until) in the unit's subtree, oldest first: code,
    category, severity, status, street › community › grid, address, lon/lat (WGS84), report
    time, handler (person and department), deadline, closing time and overdue, times in the
    service's local time (Beijing). XLSX has Chinese headers and no geometry column."""
    until = clip_span(since, until, LONGEST_DESK_SPAN)
    tz = settings.local_timezone
    book = service.ledger(conn, principal, grid, since, until, tz)
    if f == "json":
        import json

        return Response(
            json.dumps(book, ensure_ascii=False), media_type="application/json; charset=utf-8"
        )
    unit = book["unit"]["name"] if book["unit"] else "全辖区"
    title = f"{unit}隐患台账 {since:%Y-%m-%d}至{(until - timedelta(seconds=1)):%Y-%m-%d}"
    body = service.ledger_xlsx(book, title)
    return Response(
        body,
        media_type=XLSX,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"ledger.xlsx\"; filename*=UTF-8''{quote(title)}.xlsx"
            )
        },
    )
