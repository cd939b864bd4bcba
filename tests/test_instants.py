"""The one parser of request dates and times (gis_service.instants), on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gis_service.instants import instant_span, parse_date, parse_instant

CST = timezone(timedelta(hours=8))


def test_a_date_is_its_midnight_utc() -> None:
    assert parse_instant("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_date("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_datetime_keeps_its_zone_and_is_utc_without_one() -> None:
    assert parse_instant("2026-01-01T08:00:00+08:00") == datetime(2026, 1, 1, 8, tzinfo=CST)
    assert parse_instant("2026-01-01T08:00:00Z") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert parse_instant("2026-01-01T08:00:00") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert parse_instant("2026-01-01 08:00") == datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_a_span_is_the_whole_day_for_a_date_and_one_moment_otherwise() -> None:
    start, end = instant_span("2026-01-01")
    assert start == datetime(2026, 1, 1, tzinfo=UTC)
    assert end == datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)
    moment = datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert instant_span("2026-01-01T08:00:00Z") == (moment, moment)


def test_the_last_day_of_the_calendar_ends_at_the_last_moment() -> None:
    assert instant_span("9999-12-31")[1] == datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["", "yesterday", "2026-13-01", "2026-02-30", "10000-01-01", "2026-01-01T25:00", "\x00"]
)
def test_anything_else_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(raw)
    with pytest.raises(ValueError):
        instant_span(raw)
