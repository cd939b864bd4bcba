"""The working calendar pinned on real dates: a Friday-evening report, the 2026 National Day
and Mid-Autumn holidays and the Spring Festival with their 调休 working Saturdays and Sunday,
the office's own overrides, and the calendar routes with hostile input.

Expected instants are worked out by hand from layers/calendar.yaml (08:30-12:00 and
13:30-18:00, so one 工作日 is 8 工作时) and the State Council's 2026 arrangement:
元旦 1.1-1.3 (1.4 Sun worked); 春节 2.15-2.23 (2.14 Sat and 2.28 Sat worked); 劳动节 5.1-5.5
(5.9 Sat worked); 中秋 9.25; 国庆 10.1-10.7 (9.20 Sun and 10.10 Sat worked).
"""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.catalog import load_catalog
from gis_service.catalog.schemas import Catalog
from gis_service.config import PROJECT_ROOT
from gis_service.worktime.calendar import special_days
from gis_service.worktime.schemas import CalendarDef, TimeLimit
from gis_service.worktime.service import sync_calendar

CASES = [
    # Friday evening: nothing counts until Monday 08:30; 3.5 h before lunch, 0.5 h after.
    ("2026-11-27T19:00:00+08:00", "4 工作时", "2026-11-30T14:00:00+08:00"),
    # Friday afternoon: 2 h on Friday, 2 h on Monday morning.
    ("2026-11-27T16:00:00+08:00", "4 工作时", "2026-11-30T10:30:00+08:00"),
    # Saturday noon: the weekend does not count at all.
    ("2026-11-28T12:00:00+08:00", "1 工作时", "2026-11-30T09:30:00+08:00"),
    # A case reported on 30 September with 2 工作日: 6.5 h on the 30th, the holiday 1-7 Oct,
    # 8 h on Thursday 8 Oct, 1.5 h on Friday 9 Oct: the second working day after National Day.
    ("2026-09-30T10:00:00+08:00", "2 工作日", "2026-10-09T10:00:00+08:00"),
    ("2026-09-30T17:00:00+08:00", "1 工作日", "2026-10-08T17:00:00+08:00"),
    # Friday 9 Oct 17:00: the 调休 Saturday 10 Oct is a working day.
    ("2026-10-09T17:00:00+08:00", "2 工作时", "2026-10-10T09:30:00+08:00"),
    # Friday 18 Sep 17:00: Saturday 19 is off, the 调休 Sunday 20 Sep is worked.
    ("2026-09-18T17:00:00+08:00", "2 工作时", "2026-09-20T09:30:00+08:00"),
    # Thursday 24 Sep 17:00: Mid-Autumn Friday 25 Sep and the weekend are off.
    ("2026-09-24T17:00:00+08:00", "2 工作时", "2026-09-28T09:30:00+08:00"),
    # Spring Festival: Friday 13 Feb 17:00 runs into the 调休 Saturday 14 Feb.
    ("2026-02-13T17:00:00+08:00", "2 工作时", "2026-02-14T09:30:00+08:00"),
    # Saturday 14 Feb 17:00 (worked) + 1 工作日: 1 h that day, 15-23 Feb off, 7 h on the 24th.
    ("2026-02-14T17:00:00+08:00", "1 工作日", "2026-02-24T17:00:00+08:00"),
    # Friday 27 Feb 17:00: the 调休 Saturday 28 Feb is worked.
    ("2026-02-27T17:00:00+08:00", "2 工作时", "2026-02-28T09:30:00+08:00"),
    # A limit in 小时 is calendar time: the holiday does not stop it.
    ("2026-10-01T10:00:00+08:00", "1 小时", "2026-10-01T11:00:00+08:00"),
    # Exactly at the end of the morning: due at 12:00, not after lunch.
    ("2026-11-30T08:30:00+08:00", "3.5 工作时", "2026-11-30T12:00:00+08:00"),
]


@pytest.mark.parametrize(("start", "limit", "expected"), CASES)
def test_due_on_real_dates(demo_client: TestClient, start: str, limit: str, expected: str) -> None:
    r = demo_client.get("/api/v1/calendar/due", params={"start": start, "limit": limit})
    assert r.status_code == 200, r.text
    from datetime import datetime

    assert datetime.fromisoformat(r.json()["due"]) == datetime.fromisoformat(expected), r.json()


def test_working_seconds_between(demo_engine: Engine) -> None:
    with demo_engine.connect() as conn:

        def hours(a: str, b: str) -> float:
            return (
                conn.execute(
                    text(
                        "SELECT gis_work_seconds(CAST(:a AS timestamptz), CAST(:b AS timestamptz))"
                    ),
                    {"a": a, "b": b},
                ).scalar_one()
                / 3600
            )

        # 30 Sep (8 h) and 8 Oct (8 h); 1-7 Oct off.
        assert hours("2026-09-30T08:00:00+08:00", "2026-10-09T08:00:00+08:00") == 16
        assert hours("2026-10-09T08:00:00+08:00", "2026-09-30T08:00:00+08:00") == -16
        # Friday 16:00 to Monday 10:30: 2 h + 2 h.
        assert hours("2026-11-27T16:00:00+08:00", "2026-11-30T10:30:00+08:00") == 4
        # The lunch break does not count.
        assert hours("2026-11-30T11:00:00+08:00", "2026-11-30T14:30:00+08:00") == 2
        # A whole Spring Festival week: 14 Feb (Sat, worked) 8 h, 15-23 Feb nothing.
        assert hours("2026-02-14T00:00:00+08:00", "2026-02-24T00:00:00+08:00") == 8


def test_calendar_lists_holidays_and_adjusted_days(demo_client: TestClient) -> None:
    r = demo_client.get("/api/v1/calendar", params={"from": "2026-09-28", "to": "2026-10-11"})
    assert r.status_code == 200, r.text
    body = r.json()
    days = {d["date"]: d for d in body["days"]}
    worked = sorted(k for k, d in days.items() if d["workday"])
    assert worked == [
        "2026-09-28",
        "2026-09-29",
        "2026-09-30",
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
    ]
    assert body["working_days"] == 6
    assert days["2026-10-10"]["name"] == "调休上班" and days["2026-10-10"]["source"] == "package"
    assert days["2026-10-01"]["name"] == "国庆节"
    assert "调休" in days["2026-10-07"]["name"]  # the day off given for 10 Oct
    assert days["2026-10-11"]["weekday"] == "星期日" and not days["2026-10-11"]["workday"]
    assert body["working_hours"] == ["08:30-12:00", "13:30-18:00"]
    assert body["work_day_hours"] == 8


def test_spring_festival_2026_from_the_package() -> None:
    cal = CalendarDef(working_hours=["08:30-12:00"], first_year=2026, last_year=2026)
    rules = {r.day: r for r in special_days(cal)}
    assert rules[date(2026, 2, 14)].workday and rules[date(2026, 2, 28)].workday
    for d in range(16, 21):  # 16-20 Feb are weekdays off (15 and 21-22 are weekend days)
        assert not rules[date(2026, 2, d)].workday
    assert not rules[date(2026, 2, 23)].workday  # Monday, given for the 28th
    assert date(2026, 2, 24) not in rules  # an ordinary Tuesday
    assert rules[date(2026, 9, 20)].workday and rules[date(2026, 10, 10)].workday
    assert rules[date(2026, 1, 4)].workday and rules[date(2026, 5, 9)].workday


def test_office_overrides_win(engine: Engine) -> None:
    cal = CalendarDef(
        working_hours=["09:00-12:00", "14:00-17:00"],
        first_year=2026,
        last_year=2026,
        days_off={date(2026, 12, 24): "街道停电检修"},
        workdays={date(2026, 10, 3): "防汛值守"},
    )
    with engine.connect() as conn, conn.begin() as tx:
        sync_calendar(conn, cal, "Asia/Shanghai")

        def due(start: str, limit: str) -> str:
            lim = TimeLimit.model_validate(limit).as_json()
            return conn.execute(
                text(
                    "SELECT to_char(gis_work_due(CAST(:s AS timestamptz), CAST(:l AS jsonb))"
                    " AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')"
                ),
                {"s": start, "l": __import__("json").dumps(lim)},
            ).scalar_one()

        # Wednesday 23 Dec 16:00 + 2 工作时 (6-hour days): 1 h, Thursday 24 off, Friday 1 h.
        assert due("2026-12-23T16:00:00+08:00", "2 工作时") == "2026-12-25 10:00"
        # The office works Saturday 3 Oct in the middle of National Day.
        assert due("2026-09-30T16:00:00+08:00", "2 工作时") == "2026-10-03 10:00"
        # A 工作日 is now 6 hours long.
        assert due("2026-11-30T09:00:00+08:00", "1 工作日") == "2026-11-30 17:00"
        tx.rollback()


def test_shipped_categories_state_three_limits() -> None:
    catalog: Catalog = load_catalog(PROJECT_ROOT / "layers")
    for cat in catalog.hazard_categories.values():
        limits = cat.time_limits.as_json()
        assert set(limits) == {"accept", "handle", "close"}, cat.code
    assert catalog.hazard_categories["illegal_construction"].time_limits.handle.text == "15 工作日"
    assert catalog.hazard_categories["clutter"].time_limits.handle.text == "4 工作时"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        # far years: refused by the documented pattern (2000-2100)
        ({"start": "9999-12-31", "limit": "2 工作日"}, "start"),
        ({"start": "0001-01-01T00:00:00", "limit": "1 工作时"}, "start"),
        ({"start": "2026-09-30\x00", "limit": "2 工作日"}, "start"),
        ({"start": "2026-09-30", "limit": "two days"}, "limit"),
        ({"start": "2026-09-30", "limit": "99999 工作日"}, "limit"),
        ({"start": "2026-09-30", "limit": "1\x00 工作日"}, "limit"),
        ({"start": "2026-09-30"}, "limit"),
    ],
)
def test_due_refuses_bad_input(demo_client: TestClient, params: dict, fragment: str) -> None:
    r = demo_client.get("/api/v1/calendar/due", params=params)
    # A NUL is refused at the edge (400 nul_character), the rest by the route's own checks.
    assert r.status_code == (400 if "\x00" in "".join(params.values()) else 422), r.text
    assert fragment in r.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "99999-01-01"},
        {"from": "2026-13-01"},
        {"from": "2026-10-01", "bogus": "1"},
    ],
)
def test_calendar_refuses_bad_spans(demo_client: TestClient, params: dict) -> None:
    r = demo_client.get("/api/v1/calendar", params=params)
    assert r.status_code in (400, 422), r.text
    assert r.json()["code"]


def test_calendar_answers_reversed_and_long_spans(demo_client: TestClient) -> None:
    """A 'to' before 'from' lists no day and a span over a year is cut at a year, the answer's
    'to' saying so: the document cannot state a rule between two parameters, so neither is
    refused (issue 11, finding 12)."""
    r = demo_client.get("/api/v1/calendar", params={"from": "2026-10-10", "to": "2026-10-01"})
    assert r.status_code == 200 and r.json()["days"] == [], r.text
    r = demo_client.get("/api/v1/calendar", params={"from": "2026-01-01", "to": "2027-06-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["to"] == "2027-01-01" and len(body["days"]) == 366
