"""Times typed by people in the office: local wall-clock time unless an offset is given."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gis_service.instants import parse_instant
from gis_service.ops.pgtools import OpsError

FORMATS = "YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' or ISO 8601 with an offset"


def parse_local(raw: str, tz_name: str) -> datetime:
    """A date (local midnight) or a datetime; naive ones are in ``tz_name`` (the office's zone)."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OpsError(f"GIS_LOCAL_TIMEZONE={tz_name!r} is not a known time zone.") from exc
    try:
        return parse_instant(raw.strip(), zone)
    except ValueError as exc:
        raise OpsError(f"{raw!r} is not a time; write {FORMATS}.") from exc
