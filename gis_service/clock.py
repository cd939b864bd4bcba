"""Where "now" comes from for the rules that count time: login slowdown and lock, rate limits,
the expiry of sessions and bearer tokens.

The real clock is PostgreSQL's: ``DatabaseClock.now()`` is None, and each statement then
reads the database's own ``now()`` or ``clock_timestamp()``, so every worker and host keeps
one time. Another clock (the tests' ``ManualClock``) gives explicit instants, which the same
statements use instead; the app takes one in ``create_app(settings, clock=...)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """A source of the current instant; None means "ask the database"."""

    def now(self) -> datetime | None:
        """The current instant (timezone-aware), or None for the database's clock."""
        ...


class DatabaseClock:
    """The real clock: PostgreSQL's, read by each statement."""

    def now(self) -> None:
        """None: the statement reads the database's clock itself."""
        return None


DATABASE_CLOCK = DatabaseClock()
