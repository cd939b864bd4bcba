"""The one parser of dates and times that requests and commands carry.

A date (``2026-01-01``) names midnight UTC, or the whole UTC day where a span is wanted
(OGC ``datetime``); an ISO 8601 / RFC 3339 date-time keeps its offset and is taken as UTC
when it names none. Callers wrap the ``ValueError`` in the error their protocol wants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

# The last moment of a day that has a successor; the day 9999-12-31 ends at datetime.max.
_LAST_MOMENT = datetime.max.replace(tzinfo=UTC)


def _is_date(raw: str) -> bool:
    return len(raw) == 10


def parse_date(raw: str, zone: tzinfo = UTC) -> datetime:
    """A date (YYYY-MM-DD) as its midnight in ``zone`` (UTC unless the caller says)."""
    return datetime.combine(date.fromisoformat(raw), time(), tzinfo=zone)


def parse_instant(raw: str, zone: tzinfo = UTC) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it names no zone).

    People in the office type local wall-clock times (``restore --until``, audit export):
    those callers pass their ``zone``, which then stands in for UTC in both rules."""
    if _is_date(raw):
        return parse_date(raw, zone)
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


# How far ahead of the server's clock a phone's clock may run (minutes of drift are common).
CLOCK_SKEW = timedelta(minutes=10)


def check_recorded(t: datetime, now: datetime, max_age: timedelta) -> None:
    """A time a device recorded (work done offline and sent later): not ahead of ``now`` by
    more than the clock skew, not older than ``max_age``; ValueError saying which."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if t > now + CLOCK_SKEW:
        raise ValueError(f"{t.isoformat()} lies in the future; check the device's clock")
    if t < now - max_age:
        raise ValueError(
            f"{t.isoformat()} is more than {max_age.days} days ago; work kept offline longer "
            "than that is not accepted"
        )


def instant_span(raw: str) -> tuple[datetime, datetime]:
    """The first and last moment ``raw`` names: a whole day for a date, else (t, t)."""
    start = parse_instant(raw)
    if not _is_date(raw):
        return start, start
    try:
        return start, start + timedelta(days=1) - timedelta(microseconds=1)
    except OverflowError:
        return start, _LAST_MOMENT
