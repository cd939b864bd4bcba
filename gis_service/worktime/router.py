"""Thin HTTP routes of the working calendar: its days, and a deadline computed in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError

from gis_service.auth.deps import PUBLIC_READ
from gis_service.errors import Invalid
from gis_service.http.deps import (
    ASSESSED_INSTANT_PATTERN,
    Conn,
    instant_param,
    reject_unknown_query,
)
from gis_service.worktime import service
from gis_service.worktime.schemas import LIMIT_PATTERN, TimeLimit

router = APIRouter(
    prefix="/api/v1/calendar",
    tags=["calendar"],
    dependencies=[Depends(reject_unknown_query), Depends(PUBLIC_READ)],
)


def _bounded(raw: str, name: str) -> datetime:
    """An instant of the years the calendar covers (their pattern, ASSESSED_INSTANT_PATTERN,
    is in the document: a far date, which would overflow the arithmetic, is refused there)."""
    value = instant_param(raw, name)
    assert value is not None
    return value


@router.get(
    "",
    summary="Working days (工作日) of a span: holidays, 调休 and the office's own days",
    responses={422: {"description": "A bad or far date, or a span longer than a year."}},
)
def calendar_days(
    conn: Conn,
    first: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=ASSESSED_INSTANT_PATTERN,
            description="First day (YYYY-MM-DD); default: today.",
        ),
    ] = None,
    last: Annotated[
        str | None,
        Query(
            alias="to",
            pattern=ASSESSED_INSTANT_PATTERN,
            description="Last day; default: 30 days after 'from'. At most a year is listed "
            "(the answer's 'to' says the last day listed); a 'to' before 'from' lists none.",
        ),
    ] = None,
) -> dict:
    """Each day with whether it is worked, and the name of a holiday or 调休 working day and
    where it comes from (package: China's public calendar; office: layers/calendar.yaml);
    the working hours and the length of a 工作日."""
    start = _bounded(first, "from").date() if first else datetime.now(UTC).date()
    end = _bounded(last, "to").date() if last else start + timedelta(days=30)
    return service.calendar_days(conn, start, end)


@router.get(
    "/due",
    summary="When a time limit (e.g. 2 工作日) that starts at an instant runs out",
    responses={422: {"description": "A bad or far start, or a limit not like '2 工作日'."}},
)
def due(
    conn: Conn,
    start: Annotated[
        str,
        Query(
            pattern=ASSESSED_INSTANT_PATTERN,
            description="ISO 8601 instant the clock starts (a date alone is midnight UTC).",
            examples=["2026-09-30T10:00:00+08:00"],
        ),
    ],
    limit: Annotated[
        str,
        Query(
            max_length=32,
            pattern=LIMIT_PATTERN,
            description="'<n> 工作时', '<n> 工作日' (working time) or '<n> 小时' (calendar).",
            examples=["2 工作日"],
        ),
    ],
) -> dict:
    """The deadline in working time: nights, weekends and public holidays are skipped and 调休
    working weekends count, as for every case's 立案, 处置 and 结案 deadline."""
    begin = _bounded(start, "start")
    try:
        lim = TimeLimit.model_validate(limit)
    except ValidationError as exc:
        raise Invalid(
            f"'limit' must look like '2 工作日', '4 工作时' or '1 小时', not {limit!r}.",
            limit=limit,
        ) from exc
    return service.due(conn, begin, lim)
