"""Fixed-window rate limits kept in PostgreSQL (table ``rate_limits``).

Why the database and not process memory: the service may run several uvicorn workers or
hosts, and a limit per worker would multiply by their number. One upsert per limited request
is cheap next to the write it guards. Each hit commits on its own connection, so a refused
or failed request still counts.
"""

from __future__ import annotations

import random

from sqlalchemy import Engine

from gis_service.auth import sql
from gis_service.clock import DATABASE_CLOCK, Clock
from gis_service.errors import TooMany


def hit(
    engine: Engine, bucket: str, limit: int, window_seconds: int, clock: Clock = DATABASE_CLOCK
) -> tuple[bool, float]:
    """Count one hit in ``bucket``; (allowed, seconds until the window ends)."""
    now = clock.now()
    with engine.begin() as conn:
        row = conn.execute(
            sql.RATE_HIT, {"bucket": bucket[:200], "window": window_seconds, "now": now}
        ).one()
        # Old windows are pruned now and then, by whoever happens to pass.
        if random.random() < 0.01:
            conn.execute(sql.RATE_PRUNE, {"now": now})
    return row.hits <= limit, float(row.seconds_left)


def enforce(
    engine: Engine,
    bucket: str,
    limit: int,
    window_seconds: int,
    what: str = "requests",
    clock: Clock = DATABASE_CLOCK,
) -> None:
    """Count a hit; 429 with Retry-After once ``limit`` is passed within the window."""
    allowed, seconds_left = hit(engine, bucket, limit, window_seconds, clock)
    if not allowed:
        raise TooMany(
            f"Too many {what} from this address: at most {limit} per "
            f"{_window_words(window_seconds)}. Try again in {int(seconds_left) + 1} s.",
            retry_after=seconds_left,
            limit=limit,
            window_seconds=window_seconds,
        )


def _window_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return "minute" if seconds == 60 else f"{seconds // 60} minutes"
    return f"{seconds} s"
