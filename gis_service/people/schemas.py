"""Request and response bodies of the people API: people, their roles on grids, and the
changes that keep "who is responsible here" current."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gis_service.catalog.schemas import X_DECLARED
from gis_service.db.limits import BIGINT_MAX
from gis_service.instants import INSTANT_PATTERN, parse_instant
from gis_service.patches import (
    check_exactly_one,
    check_patch,
    exactly_one_schema,
    patch_schema,
)
from gis_service.people.phones import MAX_LENGTH, PHONE_PATTERN, normalize_phone
from gis_service.plaintext import Documented, Line, Paragraph, clean_text


def _phone(value: str) -> str:
    return normalize_phone(clean_text(value))


def _instant(value: str) -> datetime:
    try:
        if not re.search(INSTANT_PATTERN, value):  # as the document states it
            raise ValueError(value)
        return parse_instant(clean_text(value))
    except (ValueError, OverflowError) as exc:
        raise ValueError(
            "must be a date (YYYY-MM-DD) or an ISO 8601 time (2026-12-01T09:00:00+08:00)"
        ) from exc


Phone = Annotated[
    str, Field(max_length=MAX_LENGTH), AfterValidator(_phone), Documented(PHONE_PATTERN)
]
Instant = Annotated[
    str, Field(max_length=40), AfterValidator(_instant), Documented(INSTANT_PATTERN)
]
PersonId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
RoleCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*$",
        json_schema_extra={X_DECLARED: "code:assignment_roles"},
    ),
]
GridRef = Annotated[
    int | str,
    Field(description="Grid id or code.", examples=["410103001001"]),
]
Reason = Annotated[
    Line,
    Field(
        max_length=500,
        description="Why: kept in the audit log with who made the change.",
        examples=["换届选举"],
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPerson(_Body):
    """A person to create on the way (name and phones; the grid keeps the record)."""

    name: Line = Field(max_length=50, examples=["王芳"])
    work_phone: Phone | None = Field(
        default=None, description="Public: on the grid's notice board and the map."
    )
    mobile_phone: Phone | None = Field(default=None, description="Private: staff in scope only.")
    party_member: bool = Field(default=False, description="党员.")


class PersonIn(NewPerson):
    """A new person."""

    notes: Paragraph | None = Field(default=None, max_length=2000, description="Private.")
    grid: GridRef | None = Field(
        default=None,
        description="The grid whose staff keep the record (default: your scope's root grid).",
    )
    reason: Reason


_PERSON_NOT_NULL = ("name", "party_member", "active")
_PERSON_FIELDS = ("name", "work_phone", "mobile_phone", "party_member", "notes", "grid", "active")


class PersonPatch(_Body):
    """Fields to change; null clears a phone, the notes or the record's grid."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=patch_schema(_PERSON_NOT_NULL, _PERSON_FIELDS)
    )

    name: Line | None = Field(default=None, max_length=50)
    work_phone: Phone | None = None
    mobile_phone: Phone | None = None
    party_member: bool | None = None
    notes: Paragraph | None = Field(default=None, max_length=2000)
    grid: GridRef | None = None
    active: bool | None = Field(default=None, description="false: no longer in service.")
    reason: Reason

    @model_validator(mode="after")
    def _something(self) -> PersonPatch:
        check_patch(self, _PERSON_NOT_NULL, _PERSON_FIELDS)
        return self


_WHO = ("person_id", "person")


class _WhoIn(_Body):
    """Who takes the role: an existing person (id) or a new one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one_schema(_WHO))

    person_id: PersonId | None = Field(
        default=None, description="An existing person (find them with GET /api/v1/people)."
    )
    person: NewPerson | None = Field(
        default=None, description="Or a new person, kept by this grid's staff."
    )

    @model_validator(mode="after")
    def _one_person(self) -> _WhoIn:
        check_exactly_one(
            self, _WHO, "give either person_id (an existing person) or person (a new one)"
        )
        return self


class AssignmentIn(_WhoIn):
    """A role on a grid from a date (and, if known, until a date)."""

    role: RoleCode = Field(description="A role code from GET /api/v1/assignment-roles.")
    valid_from: Instant | None = Field(
        default=None, description="Date or time it starts (default: now).", examples=["2026-12-01"]
    )
    valid_to: Instant | None = Field(default=None, description="Date or time it ends, if known.")
    reason: Reason


class LeaderIn(_WhoIn):
    """The grid's new primary person (网格长 of a grid, 微网格员 of a micro-grid …)."""

    role: RoleCode | None = Field(
        default=None, description="Default: the role that leads grids of this level."
    )
    valid_from: Instant | None = Field(
        default=None, description="When the change takes effect (default: now)."
    )
    reason: Reason


class AssignmentEnd(_Body):
    """When an assignment ends."""

    valid_to: Instant | None = Field(default=None, description="Date or time (default: now).")
    reason: Reason


# ---- responses (for the OpenAPI document; bodies are built by PostgreSQL) -------------------
class GridRefOut(BaseModel):
    """A grid named in a person's record."""

    id: int
    code: str
    name: str
    level: str | None = None


class AssignmentOut(BaseModel):
    """A role a person holds (or held) on a grid, with who made and ended it and why."""

    id: int
    grid: GridRefOut
    person_id: int
    person_name: str
    work_phone: str | None = None
    mobile_phone: str | None = None
    party_member: bool = False
    role: str
    role_name: str
    is_primary: bool
    valid_from: datetime
    valid_to: datetime | None
    state: str = Field(description="current, past or future.")
    started_by: dict[str, Any] | None = None
    ended_by: dict[str, Any] | None = None


class PersonOut(BaseModel):
    """A person with their phones, record grid, account link and assignments."""

    id: int
    name: str
    work_phone: str | None
    mobile_phone: str | None
    party_member: bool
    notes: str | None
    active: bool
    grid: GridRefOut | None
    account: dict[str, Any] | None
    assignments: list[AssignmentOut]
    created_at: datetime
    updated_at: datetime


class PersonList(BaseModel):
    """A page of people in the caller's scope."""

    people: list[PersonOut]
    matched: int
    limit: int
    offset: int


class GridPeople(BaseModel):
    """A grid's people by role now, its leader (or the gap), and its history."""

    grid: dict[str, Any]
    leader_role: dict[str, Any] | None
    leader: AssignmentOut | None
    gap: bool = Field(description="True when the grid needs a leader and has none now.")
    current: list[AssignmentOut]
    future: list[AssignmentOut]
    past: list[AssignmentOut]


class ChangeOut(BaseModel):
    """What a change did, and the grid's people after it."""

    ended: list[int] = Field(description="Ids of the assignments it ended.")
    started: list[int] = Field(description="Ids of the assignments it started.")
    grid: GridPeople


class RosterEntry(BaseModel):
    """A grid in the tree of the 人员 screen, with its leader and the gaps below it."""

    id: int
    code: str
    name: str
    level: str
    level_name: str
    children: int
    needs_leader: bool
    leader: dict[str, Any] | None
    gaps: int = Field(description="Grids below this one that need a leader and have none.")


class Roster(BaseModel):
    """The children of a grid (or the caller's scope roots)."""

    parent: dict[str, Any] | None
    grids: list[RosterEntry]


class RoleOut(BaseModel):
    """A role of the catalogue (layers/assignment_roles.yaml)."""

    code: str
    name_zh: str
    name_en: str
    rank: int
    leader: bool
    levels: list[str]
    primary_for: list[str]
