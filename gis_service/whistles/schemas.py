"""Request bodies of 吹哨报到: calling parties in, and a called party's move."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gis_service.catalog.schemas import CODE_PATTERN, X_DECLARED
from gis_service.db.limits import BIGINT_MAX
from gis_service.patches import check_exactly_one, exactly_one_schema
from gis_service.plaintext import Documented
from gis_service.whistles.workflow import WHISTLE_ACTIONS
from gis_service.worktime.schemas import LIMIT_PATTERN

_PARTY = ("department", "partner_id")

# A time limit as sent: at most 32 characters counted before the model strips it (the
# document's maxLength is read on the text as sent), stripped after; TimeLimit reads it.
Limit = Annotated[
    str,
    StringConstraints(strip_whitespace=False, max_length=32),
    AfterValidator(str.strip),
    Documented(LIMIT_PATTERN),
]


class Party(BaseModel):
    """One called party: a department (code) or a partner unit (id)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one_schema(_PARTY))

    department: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        max_length=64,
        json_schema_extra={X_DECLARED: "code:departments"},
    )
    partner_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)

    @model_validator(mode="after")
    def _one(self) -> Party:
        check_exactly_one(self, _PARTY, "name either department (a code) or partner_id, not both")
        return self


class WhistleIn(BaseModel):
    """社区吹哨: call one or more parties in, with a report-in and an act deadline."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    parties: list[Party] = Field(min_length=1, max_length=10)
    # Read by TimeLimit (whistles.service._limit), whose pattern the document states.
    report_in: Limit = Field(
        default="2 工作时", description="Time to report in (报到), e.g. '2 工作时'."
    )
    act: Limit = Field(default="3 工作日", description="Time to act, e.g. '3 工作日'.")
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("parties")
    @classmethod
    def _distinct(cls, v: list[Party]) -> list[Party]:
        keys = [(p.department, p.partner_id) for p in v]
        if len(set(keys)) != len(keys):
            raise ValueError("a party is listed twice")
        return v


class WhistleActionIn(BaseModel):
    """A called party's move: 报到, 报告进展, 办结, or the community's 撤回."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal[WHISTLE_ACTIONS] = Field(  # type: ignore[valid-type]
        description="report_in (报到), progress (报告进展), finish (办结) or withdraw (撤回)."
    )
    note: str | None = Field(default=None, max_length=4000)
    version: int = Field(ge=1, le=2**31 - 1, description="The call's version you read.")
