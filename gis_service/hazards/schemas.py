"""Request bodies of the hazard write side: a report and a move (action)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gis_service.catalog.schemas import PHONE_PATTERN, X_DECLARED
from gis_service.db.limits import BIGINT_MAX, INTEGER_MAX
from gis_service.geo.datums import Datum
from gis_service.hazards.workflow import ACTIONS
from gis_service.idempotency import IdempotencyKeyText
from gis_service.text import printable

Source = Literal["patrol", "resident", "camera", "hotline", "superior"]
Severity = Literal["low", "medium", "high", "critical"]
# Fields a phone adds when it sends work it did offline; left out of a report's fingerprint
# when absent, so that the fingerprints of reports from before they existed stay the same.
OFFLINE_FIELDS = ("observed_at", "patrol_ref")


class ReportIn(BaseModel):
    """A hazard report (上报): JSON, or the text fields of a multipart form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: str = Field(
        min_length=1,
        max_length=64,
        description="Hazard-category code.",
        json_schema_extra={X_DECLARED: "code:hazard_categories"},
    )
    lon: float = Field(ge=-180, le=180, description="Longitude in the datum `crs`.")
    lat: float = Field(ge=-90, le=90, description="Latitude in the datum `crs`.")
    crs: Datum = Field(default=Datum.wgs84, description="wgs84 (GPS), gcj02 (AMap) or bd09.")
    accuracy_m: float | None = Field(
        default=None, ge=0, le=10000, description="GPS accuracy radius in metres."
    )
    description: str = Field(min_length=1, max_length=4000)
    severity: Severity | None = Field(default=None, description="Default: the category's.")
    source: Source | None = Field(
        default=None,
        description="patrol, resident, camera, hotline or superior; anonymous reports are "
        "always 'resident'. Default: patrol for staff, resident otherwise.",
    )
    address: str | None = Field(default=None, max_length=500)
    facility_code: str | None = Field(
        default=None,
        max_length=64,
        description="The facility (部件) concerned; when absent and the category attaches to "
        "facilities, the nearest one within the category's snap radius is taken.",
    )
    reporter_name: str | None = Field(default=None, max_length=100, description="Private.")
    reporter_phone: str | None = Field(
        default=None, pattern=PHONE_PATTERN, description="Private: never shown to the public."
    )
    idempotency_key: IdempotencyKeyText | None = Field(
        default=None,
        description="Same as the Idempotency-Key header (8-200 printable characters).",
    )
    observed_at: datetime | None = Field(
        default=None,
        description="When the reporter saw it, as the phone recorded it (a report made offline "
        "and sent later); at most the configured number of days old, never in the future.",
    )
    patrol_ref: UUID | None = Field(
        default=None,
        description="The patrol (its client ref) during which the report was made; links the "
        "two whichever arrives first.",
    )

    @field_validator("lon", "lat", "accuracy_m")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("description", "address", "facility_code", "reporter_name", mode="before")
    @classmethod
    def _printable(cls, v: object) -> object:
        # Control characters (a vertical tab) cannot be written in Open311's XML; dropped
        # before the length rules apply, so a description of only those is refused.
        return printable(v) if isinstance(v, str) else v

    @field_validator("address", "facility_code", "reporter_name", "reporter_phone")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None


class ActionIn(BaseModel):
    """One move of the closed loop (JSON, or the text fields of a multipart form)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal[ACTIONS] = Field(  # type: ignore[valid-type]
        description="One of the moves of GET /api/v1/hazards/workflow: accept, reject, "
        "dispatch, start, resolve, verify, fail_verification, close, escalate, reopen, "
        "mark_duplicate, the exception requests and decisions (request_extension, "
        "approve_extension, refuse_extension, request_suspension, approve_suspension, "
        "refuse_suspension, resume, send_back, approve_send_back, refuse_send_back, "
        "request_void, approve_void, refuse_void), callback, rework or comment."
    )
    note: str | None = Field(default=None, max_length=4000)
    assignee_person_id: int | None = Field(
        default=None, ge=1, le=BIGINT_MAX, description="dispatch: the person who handles it."
    )
    assignee_department: str | None = Field(
        default=None,
        max_length=64,
        description="dispatch or escalate: the department code that handles it.",
    )
    duplicate_of: str | None = Field(
        default=None,
        max_length=64,
        description="mark_duplicate: id or public code of the open hazard this one repeats.",
    )
    extension: str | None = Field(
        default=None,
        max_length=32,
        description="request_extension: the time asked for, e.g. '2 工作日' or '4 工作时'.",
    )
    extension_days: int | None = Field(
        default=None, ge=1, le=90, description="request_extension: whole 工作日 (1-90)."
    )
    rating: Literal["satisfied", "basically_satisfied", "dissatisfied"] | None = Field(
        default=None,
        description="callback: satisfied (满意), basically_satisfied (基本满意) or "
        "dissatisfied (不满意).",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=INTEGER_MAX,
        description="The version the move is based on, when the If-Match header cannot be sent.",
    )
    occurred_at: datetime | None = Field(
        default=None,
        description="When the step was done, as the phone recorded it (a move made offline and "
        "sent later); recorded on the step, deadlines still count from its arrival.",
    )

    @field_validator("note", mode="before")
    @classmethod
    def _printable(cls, v: object) -> object:
        return printable(v) if isinstance(v, str) else v

    @field_validator("note", "assignee_department", "duplicate_of", "extension")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("duplicate_of", mode="before")
    @classmethod
    def _number_as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v
