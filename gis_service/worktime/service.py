"""The working calendar with no HTTP: sync it into the database, list its days, and compute a
deadline (the arithmetic is SQL: one rule for moves, lists and statistics)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from gis_service.instants import clip_span
from gis_service.worktime import sql
from gis_service.worktime.calendar import special_days
from gis_service.worktime.schemas import UNIT_NAMES_ZH, CalendarDef, TimeLimit

MAX_LISTED_DAYS = 366
WEEKDAY_NAMES_ZH = ("", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


def sync_calendar(conn: Connection, cal: CalendarDef, tz: str) -> dict[str, int]:
    """Replace the special days and the schedule, in the caller's transaction."""
    rules = special_days(cal)
    conn.execute(sql.CLEAR_DAYS)
    if rules:
        conn.execute(
            sql.INSERT_DAYS,
            {
                "days": [r.day for r in rules],
                "workdays": [r.workday for r in rules],
                "names": [r.name for r in rules],
                "sources": [r.source for r in rules],
            },
        )
    conn.execute(
        sql.SET_SCHEDULE,
        {
            "tz": tz,
            "weekend": list(cal.weekend),
            "periods": [list(p) for p in cal.periods],
            "day_seconds": cal.day_seconds,
            "first_year": cal.first_year,
            "last_year": cal.last_year,
        },
    )
    return {"work_days": len(rules)}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def schedule(conn: Connection) -> dict[str, Any]:
    """The schedule as synced: time zone, weekend, periods, the length of a 工作日."""
    row = conn.execute(sql.SCHEDULE).one()
    return {
        "timezone": row.tz,
        "weekend": list(row.weekend),
        "working_hours": [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in row.periods],
        "work_day_hours": row.day_seconds / 3600,
        "years": [row.first_year, row.last_year],
    }


def calendar_days(conn: Connection, first: date, last: date) -> dict[str, Any]:
    """Every day from ``first`` to ``last`` (at most a year) with whether it is worked."""
    last = clip_span(first, last, timedelta(days=MAX_LISTED_DAYS - 1))
    rows = conn.execute(sql.DAYS, {"first": first, "last": last}).all()
    sched = schedule(conn)
    days = [
        {
            "date": r.day.isoformat(),
            "weekday": WEEKDAY_NAMES_ZH[r.weekday],
            "workday": r.workday,
            "name": r.name,
            "source": r.source,
        }
        for r in rows
    ]
    return {
        **sched,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "working_days": sum(1 for d in days if d["workday"]),
        "days": days,
        "outside_years": not (sched["years"][0] <= first.year <= last.year <= sched["years"][1]),
    }


def due(conn: Connection, start: datetime, limit: TimeLimit) -> dict[str, Any]:
    """When a limit that starts at ``start`` runs out, in working time."""
    row = conn.execute(sql.DUE, {"start": start, "lim": json.dumps(limit.as_json())}).one()
    return {
        "start": start.isoformat(),
        "limit": limit.text,
        "unit_name": UNIT_NAMES_ZH[limit.unit],
        "working_seconds": row.seconds,
        "due": row.due.isoformat(),
    }


def work_seconds(conn: Connection, a: datetime, b: datetime) -> float:
    """Working seconds from ``a`` to ``b`` (negative when b is earlier)."""
    return float(conn.execute(sql.WORK_SECONDS, {"a": a, "b": b}).scalar_one())
