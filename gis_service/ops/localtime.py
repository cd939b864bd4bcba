"""Times typed by people in the office: local wall-clock time unless an offset is given."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gis_service.ops.pgtools import OpsError

FORMATS = "YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' or ISO 8601 with an offset"


def parse_local(raw: str, tz_name: str) -> datetime:
    """A date (local midnight) or a datetime; naive ones are in ``tz_name`` (the office's zone)."""
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OpsError(f"GIS_LOCAL_TIMEZONE={tz_name!r} is not a known time zone.") from exc
    value = raw.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=tz)
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise OpsError(f"{raw!r} is not a time; write {FORMATS}.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
