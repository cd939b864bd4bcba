"""The one parser of dates and times that requests and commands carry.

A date (``2026-01-01``) names midnight UTC, or the whole UTC day where a span is wanted
(OGC ``datetime``); an ISO 8601 / RFC 3339 date-time keeps its offset and is taken as UTC
when it names none. Every result is in UTC. Callers wrap the ``ValueError`` in the error
their protocol wants.

Two readings for clients as they are (issue 11, finding 13):
- RFC 3339 §5.6 allows the year 0000, and QGIS sends ``0000-01-01T00:00:00Z`` for "before
  <t>"; years outside Python's 1–9999 (0000, or five digits) read as the first or last
  representable moment, that is, as an open bound;
- a ``+`` pasted unescaped into a URL arrives as a space: ``…T08:00:00 08:00`` is read as
  ``+08:00``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TypeVar

_Day = TypeVar("_Day", date, datetime)
# Days of the Gregorian calendar, month by month (30 November exists, 31 November does not),
# and 29 February of the leap years only: documents state every real date and no other, so
# that a client or fuzzer never sends one the parser must refuse (issue 11, finding 12).
_MONTH_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
)
LEAP_YEARS = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)"


def date_pattern(years: str = "[0-9]{4}", leap_years: str = LEAP_YEARS) -> str:
    """An unanchored pattern of the real dates (YYYY-MM-DD) whose year matches ``years``."""
    return rf"({years}-{_MONTH_DAY}|{leap_years}-02-29)"


# A date or ISO 8601 date-time as the parameters that take one document it, so that clients
# and fuzzers send what instant_param reads: a date, or a date-time with an optional offset.
def instant_pattern(years: str = "[0-9]{4}", leap_years: str = LEAP_YEARS) -> str:
    """The pattern of a real date or date-time whose year matches ``years`` (``leap_years``
    those of them that have a 29 February)."""
    return (
        rf"^{date_pattern(years, leap_years)}"
        r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
        r"(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?)?$"
    )


INSTANT_PATTERN = instant_pattern()


# The first and last representable moments; the day 9999-12-31 ends at the last one.
_FIRST_MOMENT = datetime.min.replace(tzinfo=UTC)
_LAST_MOMENT = datetime.max.replace(tzinfo=UTC)
# A date-time whose offset lost its '+' to URL decoding: '… 08:00' at the end.
_SPACE_OFFSET = re.compile(
    r"^(\d{4,}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$"
)
# The year of a date or date-time, when it has four digits or more.
_YEAR = re.compile(r"^(\d{4,})(-\d{2}-\d{2}.*)$")


def _representable(raw: str) -> tuple[str, datetime | None]:
    """``raw`` with the '+' of its offset restored, and the bound it names when its year lies
    outside 1–9999 (None when the year is ordinary). ValueError when it is no date at all."""
    raw = raw.strip()
    spaced = _SPACE_OFFSET.match(raw)
    if spaced:
        raw = f"{spaced.group(1)}+{spaced.group(2)}"
    year = _YEAR.match(raw)
    if year is None or 1 <= int(year.group(1)) <= 9999:
        return raw, None
    # The rest must still be a valid date or date-time: check it on an ordinary leap year.
    _parse(f"2000{year.group(2)}")
    return raw, _FIRST_MOMENT if int(year.group(1)) == 0 else _LAST_MOMENT


def _parse(raw: str, zone: tzinfo = UTC) -> datetime:
    if _is_date(raw):
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=zone).astimezone(UTC)
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return as_utc(parsed)  # 0001-01-01 east of UTC, or 9999-12-31 west of it, are clamped


def as_utc(t: datetime) -> datetime:
    """An aware ``t`` in UTC, clamped to the calendar (9999-12-31 at -14:00 is past it)."""
    try:
        return t.astimezone(UTC)
    except OverflowError:
        return _FIRST_MOMENT if t.year == 1 else _LAST_MOMENT


def _is_date(raw: str) -> bool:
    return len(raw) == 10


def add_clamped(t: datetime, delta: timedelta) -> datetime:
    """``t + delta``, or the first or last moment where that leaves the calendar."""
    try:
        return t + delta
    except OverflowError:
        return _LAST_MOMENT if delta > timedelta(0) else _FIRST_MOMENT


def parse_date(raw: str, zone: tzinfo = UTC) -> datetime:
    """A date (YYYY-MM-DD) as its midnight in ``zone`` (UTC unless the caller says)."""
    return datetime.combine(date.fromisoformat(raw), time(), tzinfo=zone)


def parse_instant(raw: str, zone: tzinfo = UTC) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it names no zone), in UTC
    (or in ``zone`` when one is given).

    People in the office type local wall-clock times (``restore --until``, audit export):
    those callers pass their ``zone``, which then stands in for UTC in both rules."""
    raw, bound = _representable(raw)
    if bound is not None:
        return bound
    instant = _parse(raw, zone)
    try:  # shown back to the person in their own zone (a restore's recovered_to)
        return instant.astimezone(zone)
    except OverflowError:
        return instant


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
    raw, bound = _representable(raw)
    if bound is not None:
        return bound, bound
    start = _parse(raw)
    if not _is_date(raw):
        return start, start
    try:
        return start, start + timedelta(days=1) - timedelta(microseconds=1)
    except OverflowError:
        return start, _LAST_MOMENT


def clip_span(start: _Day, end: _Day, longest: timedelta) -> _Day:
    """The end of the span [start, end) cut at ``longest`` after its start: a span longer
    than a request may cover is answered for its first part (the answer names the end it
    used), and a reversed one holds nothing, rather than either being refused (a client
    cannot see such cross-parameter rules in the OpenAPI document; issue 11, finding 12)."""
    try:
        return min(end, start + longest)
    except OverflowError:  # the cut lies past 9999-12-31: end comes first
        return end
