"""Export the audit log of a date range as CSV or JSON lines, streamed in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis_service.instants import clip_span
from gis_service.ops.localtime import parse_local

COLUMNS = (
    "id",
    "at",
    "principal_kind",
    "principal_id",
    "principal_name",
    "action",
    "object_type",
    "object_id",
    "grid_id",
    "ip",
    "before",
    "after",
)
# Oldest first: an export reads as a ledger.
EXPORT = text(
    f"""
    SELECT {", ".join(COLUMNS)}
      FROM audit_log
     WHERE at >= :since AND at < :until
     ORDER BY at, id
    """
)
# The most one export may span; a longer range is exported in parts.
MAX_DAYS = 3660


def parse_range(since: str, until: str | None, tz_name: str) -> tuple[datetime, datetime]:
    """[since, until) from local dates or times; until defaults to now."""
    start = parse_local(since, tz_name)
    end = parse_local(until, tz_name) if until else datetime.now(UTC)
    return start, clip_span(start, end, timedelta(days=MAX_DAYS))


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def export_rows(
    conn: Connection, since: datetime, until: datetime, fmt: str, chunk_rows: int = 1000
) -> Iterator[str]:
    """The export as text chunks: a CSV header then rows, or one JSON object a line."""
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
        EXPORT, {"since": since, "until": until}
    )
    buf = io.StringIO()
    writer = csv.writer(buf)
    if fmt == "csv":
        writer.writerow(COLUMNS)
    for partition in result.mappings().partitions():
        for row in partition:
            if fmt == "csv":
                writer.writerow([_cell(row[c]) for c in COLUMNS])
            else:
                record = {c: row[c] if c in ("before", "after") else _cell(row[c]) for c in COLUMNS}
                buf.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    tail = buf.getvalue()
    if tail:
        yield tail
