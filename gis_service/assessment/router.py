"""Thin HTTP routes of the assessment (考核评价): areas, departments, people, points, and the
cases behind any figure; JSON, CSV or XLSX."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gis_service.assessment import service
from gis_service.auth.deps import require
from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import X_DECLARED
from gis_service.errors import Invalid
from gis_service.hazards import supervision
from gis_service.http.deps import (
    ASSESSED_INSTANT_PATTERN,
    ASSESSED_YEARS,
    CatalogDep,
    Conn,
    SettingsDep,
    id_query,
    instant_param,
    reject_unknown_query,
)
from gis_service.http.listing import PageDep
from gis_service.http.responses import RawJSONResponse
from gis_service.instants import clip_span
from gis_service.orders import service as orders_service

router = APIRouter(
    prefix="/api/v1/assessment",
    tags=["考核评价"],
    dependencies=[Depends(reject_unknown_query)],
)
STAFF = require(scopes={"read_private"})
Fmt = Literal["json", "csv", "xlsx"]


@dataclass(frozen=True)
class Period:
    """The period assessed and the subtree it covers."""

    since: datetime
    until: datetime
    grid: int | None


def _local_start(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(tz))


def _day(raw: str, name: str, tz: str) -> datetime:
    """A date is the local midnight that starts it (an assessment month runs in local time);
    a date-time is taken as it is."""
    value = instant_param(raw, name)
    assert value is not None
    return _local_start(value.date(), tz) if len(raw) == 10 else value


async def period_query(
    settings: SettingsDep,
    month: Annotated[
        str | None,
        # The years assessed (2000-2100) in the pattern: year 0000 was a 500 (no such date).
        Query(
            pattern=rf"^{ASSESSED_YEARS}-(0[1-9]|1[0-2])$",
            description="A month (YYYY-MM, 2000-01 to 2100-12), local time.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=ASSESSED_INSTANT_PATTERN,
            description="First day (YYYY-MM-DD) or instant; replaces the start of the month.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            alias="to",
            pattern=ASSESSED_INSTANT_PATTERN,
            description="Day after the last (YYYY-MM-DD) or instant; replaces the end of the "
            "month. A period is cut at a year after its start (the answer's 'to' says where); "
            "one whose 'to' is not after its 'from' holds nothing.",
        ),
    ] = None,
    grid: Annotated[int | None, id_query("A grid subtree; default: your scope.")] = None,
) -> Period:
    """The ``month`` (default: the current one, local time), whose start ``from`` and whose
    end ``to`` replace when given; cut at a year (one precedence, no refusal: a client
    cannot see a rule between parameters in the OpenAPI document)."""
    tz = settings.local_timezone
    if month:
        first = date.fromisoformat(month + "-01")
    else:
        first = datetime.now(ZoneInfo(tz)).date().replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    start = _day(since, "from", tz) if since else _local_start(first, tz)
    end = _day(until, "to", tz) if until else _local_start(nxt, tz)
    return Period(start, clip_span(start, end, service.LONGEST_PERIOD), grid)


PeriodDep = Annotated[Period, Depends(period_query)]
FmtQuery = Annotated[Fmt, Query(alias="f", description="json (default), csv or xlsx.")]


def _scope(conn: Conn, principal: Principal, period: Period) -> tuple[list[int] | None, int | None]:
    """The caller's scope, and the subtree asked for when it lies inside it (404 if not)."""
    grid = supervision.scoped_grid(principal, period.grid, conn) if period.grid else None
    return principal.scope_filter(), grid


def _table(body: dict, rows: list[dict], fmt: Fmt, title: str) -> Response | dict:
    if fmt == "json":
        return body
    if fmt == "csv":
        data, media, ext = service.table_csv(rows), "text/csv; charset=utf-8", "csv"
    else:
        data = service.table_xlsx(rows, title)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ext = "xlsx"
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="assessment.{ext}"; '
            f"filename*=UTF-8''{quote(title)}.{ext}"
        },
    )


def _head(period: Period) -> dict:
    return {"from": period.since.isoformat(), "to": period.until.isoformat(), "grid": period.grid}


_FILES = {
    200: {
        "content": {
            "application/json": {},
            "text/csv": {},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
        }
    },
    404: {"description": "The grid lies outside your scope."},
    422: {"description": "A bad or far date, a bad month, or a period over a year."},
}


@router.get(
    "/areas",
    summary="Indicators per street, community or grid",
    responses=_FILES,
    response_model=None,
)
def assess_areas(
    conn: Conn,
    catalog: CatalogDep,
    period: PeriodDep,
    principal: Annotated[Principal, Depends(STAFF)],
    fmt: FmtQuery = "json",
    level: Annotated[
        Literal["street", "community", "grid"], Query(description="The areas compared.")
    ] = "community",
) -> Response | dict:
    """上报数, 立案数, 立案率, 按期处置率, 按期结案率, 结案率, 返工率, 超期数, 满意率, the median
    working hours to close of the last 7 days, 异常件占比, and the 综合指标值 with its grade
    (weights in layers/assessment.yaml). Formulas: gis_service.assessment.service."""
    scope, grid = _scope(conn, principal, period)
    rows = service.areas(conn, catalog.assessment, period.since, period.until, level, scope, grid)
    body = {
        **_head(period),
        "level": level,
        "weights": catalog.assessment.weights,
        "grades": catalog.assessment.grades,
        "areas": rows,
    }
    return _table(body, rows, fmt, "区域考核")


@router.get(
    "/departments",
    summary="Indicators per department, with 吹哨报到",
    responses=_FILES,
    response_model=None,
)
def assess_departments(
    conn: Conn,
    period: PeriodDep,
    principal: Annotated[Principal, Depends(STAFF)],
    fmt: FmtQuery = "json",
) -> Response | dict:
    """应处置数, 按时处置数, 超期处置数, 处置率, 返工率 and 吹哨报到 on time per department."""
    scope, grid = _scope(conn, principal, period)
    rows = service.departments(conn, period.since, period.until, scope, grid)
    return _table({**_head(period), "departments": rows}, rows, fmt, "部门考核")


@router.get(
    "/people", summary="Indicators per person and role", responses=_FILES, response_model=None
)
def assess_people(
    conn: Conn,
    period: PeriodDep,
    principal: Annotated[Principal, Depends(STAFF)],
    fmt: FmtQuery = "json",
) -> Response | dict:
    """上报数, 有效上报率 (reporters), 按时核查率 (verifiers), 准确派遣率 (dispatchers)."""
    scope, grid = _scope(conn, principal, period)
    body = service.people(conn, period.since, period.until, scope, grid)
    return _table({**_head(period), **body}, body["people"], fmt, "人员考核")


@router.get(
    "/points",
    summary="积分 of grid workers and their ranking",
    responses=_FILES,
    response_model=None,
)
def assess_points(
    conn: Conn,
    catalog: CatalogDep,
    period: PeriodDep,
    principal: Annotated[Principal, Depends(STAFF)],
    fmt: FmtQuery = "json",
) -> Response | dict:
    """Points per grid worker from the rules of layers/assessment.yaml, highest first."""
    scope, grid = _scope(conn, principal, period)
    args = (conn, catalog.assessment, period.since, period.until, scope, grid)
    if fmt == "json":
        # The database builds the ranking (~100,000 grid workers in a city) as JSON text.
        head = json.dumps({**_head(period), "rules": catalog.assessment.points})
        return RawJSONResponse(f'{head[:-1]}, "ranking": {service.points_json(*args)}}}')
    return _table({}, service.points(*args), fmt, "积分排名")


@router.get(
    "/volunteers",
    summary="志愿服务 per area: service orders, hours, volunteers, party members",
    responses=_FILES,
    response_model=None,
)
def assess_volunteers(
    conn: Conn,
    period: PeriodDep,
    principal: Annotated[Principal, Depends(STAFF)],
    fmt: FmtQuery = "json",
    level: Annotated[
        Literal["street", "community", "grid"], Query(description="The areas compared.")
    ] = "community",
) -> Response | dict:
    """三单制 orders placed in the period per area: orders, done, 志愿服务时长 (hours),
    volunteers and party members who served, and the residents' satisfaction."""
    scope, grid = _scope(conn, principal, period)
    rows = orders_service.volunteer_stats(conn, period.since, period.until, level, scope, grid)
    return _table({**_head(period), "level": level, "areas": rows}, rows, fmt, "志愿服务")


@router.get(
    "/cases",
    summary="The cases behind a figure",
    responses={404: _FILES[404], 422: _FILES[422]},
)
def assess_cases(
    conn: Conn,
    catalog: CatalogDep,
    period: PeriodDep,
    page: PageDep,
    principal: Annotated[Principal, Depends(STAFF)],
    indicator: Annotated[
        Literal[service.FLAGS],  # type: ignore[valid-type]
        Query(description="The flag counted: reported, accepted, on_time_handle, overdue, …"),
    ],
    # Three parameters, each with its own type, rather than by= and key= (by=person needed
    # a key, and a numeric one: rules between parameters no document can state).
    area: Annotated[int | None, id_query("Only cases in this area (a grid id).")] = None,
    department: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only cases assigned to this department (its code).",
            json_schema_extra={X_DECLARED: "code:departments"},
        ),
    ] = None,
    person: Annotated[int | None, id_query("Only cases assigned to this person (id).")] = None,
) -> dict:
    """Each figure of the tables counts cases with a flag; this lists them (narrowed to an
    area, a department and a person when given: all that are given hold)."""
    if department is not None and department not in catalog.departments:
        raise Invalid(f"No department has the code {department!r}.", department=department)
    scope, grid = _scope(conn, principal, period)
    return {
        **_head(period),
        **service.cases(
            conn,
            period.since,
            period.until,
            scope,
            grid,
            indicator,
            service.Narrow(area, department, person),
            page.limit,
            page.offset,
        ),
    }
