"""A clock the tests move by hand, so time-bound rules (login slowdown and lock, rate-limit
windows, session and token expiry) are tested without sleeping:
``create_app(settings, clock=ManualClock(...))``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """A gis_service.clock.Clock that stands still until ``advance`` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        """The instant the clock shows."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)
