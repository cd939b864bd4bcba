"""Request body of a visit (走访): JSON, or the text fields of a multipart form with photos."""

from __future__ import annotations

import math
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gis_service.catalog.schemas import CODE_PATTERN
from gis_service.db.limits import BIGINT_MAX
from gis_service.geo.datums import Datum
from gis_service.hazards.schemas import Severity
from gis_service.patches import check_needs, needs_schema

# (field, the field it needs, why): a point is lon and lat; a hazard is raised with its
# category and description; a service type names what the service need asks for.
_NEEDS = (
    ("lon", "lat", "give lon and lat together, or neither"),
    ("lat", "lon", "give lon and lat together, or neither"),
    (
        "hazard_category",
        "hazard_description",
        "a hazard needs hazard_category and hazard_description",
    ),
    (
        "hazard_description",
        "hazard_category",
        "a hazard needs hazard_category and hazard_description",
    ),
    ("hazard_severity", "hazard_category", "hazard_severity without hazard_category"),
    ("service_type", "service_need", "service_type without service_need (what the person needs)"),
)


class VisitIn(BaseModel):
    """One visit to a person under care, and what it raised."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=needs_schema(_NEEDS)
    )

    person_id: int = Field(ge=1, le=BIGINT_MAX, description="The person under care visited.")
    visited_at: datetime | None = Field(
        default=None,
        description="When, as the phone recorded it (a visit logged offline arrives later); "
        "default: now. Never in the future, at most the configured number of days old.",
    )
    lon: float | None = Field(default=None, ge=-180, le=180, description="Where (GPS), `crs`.")
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: Datum = Field(default=Datum.wgs84, description="wgs84 (GPS), gcj02 (AMap) or bd09.")
    accuracy_m: float | None = Field(default=None, ge=0, le=10000, description="GPS accuracy.")
    findings: str | None = Field(default=None, max_length=4000, description="What was found.")
    needs: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Codes from the tick list of needs (GET /api/v1/care/categories); in a "
        "form, comma-separated.",
    )
    hazard_category: str | None = Field(
        default=None,
        max_length=64,
        description="Raise a hazard (上报) in the same step: its category code …",
    )
    hazard_description: str | None = Field(default=None, max_length=4000)
    hazard_severity: Severity | None = None
    service_need: str | None = Field(
        default=None,
        max_length=2000,
        description="Raise a service need (居民点单) for the community, in words.",
    )
    service_type: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        description="With service_need: a service of layers/services.yaml; the need becomes a "
        "service order (三单制) for the person, at their household, in the same step.",
    )
    patrol_ref: UUID | None = Field(default=None, description="The patrol it was made on.")

    @field_validator("lon", "lat", "accuracy_m")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("needs", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator(
        "findings",
        "hazard_category",
        "hazard_description",
        "service_need",
        "service_type",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        # blank once stripped is absent, as the document's rules between fields read it
        return (v.strip() if isinstance(v, str) else v) or None

    @model_validator(mode="after")
    def _pairs(self) -> VisitIn:
        check_needs(self, _NEEDS)
        return self
