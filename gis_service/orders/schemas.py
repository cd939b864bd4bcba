"""Request bodies of service orders and of the volunteer and partner registries."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from gis_service.catalog.schemas import CODE_PATTERN, PHONE_PATTERN, X_DECLARED
from gis_service.db.limits import BIGINT_MAX
from gis_service.geo.datums import Datum
from gis_service.orders.workflow import ORDER_ACTIONS
from gis_service.patches import check_patch, patch_schema
from gis_service.plaintext import Documented

Rating = Literal["satisfied", "basically_satisfied", "dissatisfied"]
# A skill or an offer: 1-40 characters once stripped (the model strips text), no NUL.
Skill = Annotated[str, Documented(r"^\s*[^\s\x00](?:[^\x00]{0,38}[^\s\x00])?\s*$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _skills(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    if any(not s or len(s) > 40 for s in v):
        raise ValueError("each skill or offer is 1-40 characters")
    return sorted(set(v))


class OrderIn(_In):
    """群众点单: a resident's service request, at a point."""

    service_type: str = Field(
        pattern=CODE_PATTERN,
        description="A code of layers/services.yaml.",
        json_schema_extra={X_DECLARED: "code:services"},
    )
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Datum = Datum.wgs84
    description: str = Field(min_length=1, max_length=4000)
    address: str | None = Field(default=None, max_length=500)
    resident_name: str | None = Field(default=None, max_length=100, description="Private.")
    resident_phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="Private.")

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class OrderActionIn(_In):
    """One move of a service order."""

    action: Literal[ORDER_ACTIONS] = Field(  # type: ignore[valid-type]
        description="dispatch (派单), take (接单), decline (拒单), finish (完成), rate (评价), "
        "cancel (取消) or comment."
    )
    note: str | None = Field(default=None, max_length=4000)
    volunteer_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    partner_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    hours: float | None = Field(default=None, gt=0, le=24, description="finish: 服务时长.")
    rating: Rating | None = None
    version: int = Field(ge=1, le=2**31 - 1, description="The order's version you read.")


class VolunteerIn(_In):
    """A volunteer (志愿者) of a grid: skills and party membership."""

    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    party_member: StrictBool = False  # as documented: "yes" or 1 is not a boolean
    grid: int = Field(ge=1, le=BIGINT_MAX, description="The grid the volunteer serves.")
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, v: list[str] | None) -> list[str] | None:
        return _skills(v)


_NOT_NULL = ("skills", "offers", "party_member", "active")


class _Patch(_In):
    """Absent fields stay; null clears a field only where the registry allows none; at least
    one field is sent (orders.service.patch_row refuses an empty change)."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=patch_schema(_NOT_NULL, ("*",))
    )

    @model_validator(mode="after")
    def _no_null_where_required(self) -> _Patch:
        check_patch(self, _NOT_NULL)
        return self


class VolunteerPatch(_Patch):
    """Changes to a volunteer; absent fields stay."""

    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    skills: list[Skill] | None = Field(default=None, max_length=20)
    party_member: StrictBool | None = None
    note: str | None = Field(default=None, max_length=1000)
    active: StrictBool | None = None

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, v: list[str] | None) -> list[str] | None:
        return _skills(v)


class PartnerIn(_In):
    """A partner unit (共建单位) and what it offers."""

    name: str = Field(min_length=1, max_length=200)
    offers: list[Skill] = Field(default_factory=list, max_length=30)
    contact_name: str | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    grid: int = Field(ge=1, le=BIGINT_MAX, description="The community it serves.")
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("offers")
    @classmethod
    def _check_offers(cls, v: list[str] | None) -> list[str] | None:
        return _skills(v)


class PartnerPatch(_Patch):
    """Changes to a partner unit; absent fields stay."""

    offers: list[Skill] | None = Field(default=None, max_length=30)
    contact_name: str | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    note: str | None = Field(default=None, max_length=1000)
    active: bool | None = None

    @field_validator("offers")
    @classmethod
    def _check_offers(cls, v: list[str] | None) -> list[str] | None:
        return _skills(v)
