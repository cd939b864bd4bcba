"""Request body of a patrol track recorded on the phone."""

from __future__ import annotations

import math
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gis_service.geo.datums import Datum


class PatrolIn(BaseModel):
    """A patrol: its client ref, and its points [lon, lat, t] or [lon, lat, t, accuracy_m],
    t in seconds since 1970-01-01 UTC, in the order they were recorded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ref: UUID = Field(
        description="The phone's id of the patrol (links hazards reported on it; a second "
        "upload of the same ref by the same caller is refused)."
    )
    points: list[list[float]] = Field(
        min_length=2,
        description="[lon, lat, t] or [lon, lat, t, accuracy_m] in the datum crs; t in seconds "
        "since 1970-01-01 UTC, never decreasing.",
    )
    crs: Datum = Field(default=Datum.wgs84, description="wgs84 (GPS), gcj02 (AMap) or bd09.")
    started_at: datetime | None = Field(default=None, description="Default: the first point.")
    ended_at: datetime | None = Field(default=None, description="Default: the last point.")
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("points")
    @classmethod
    def _shape(cls, v: list[list[float]]) -> list[list[float]]:
        for i, p in enumerate(v):
            if len(p) not in (3, 4):
                raise ValueError(f"point {i} must be [lon, lat, t] or [lon, lat, t, accuracy_m]")
            if not all(math.isfinite(x) for x in p):
                raise ValueError(f"point {i} holds a number that is not finite")
        return v
