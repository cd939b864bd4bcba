"""Request and response bodies of the account, token, key and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gis_service.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PASSWORD_PATTERN,
)
from gis_service.db.limits import BIGINT_MAX
from gis_service.patches import check_patch, patch_schema
from gis_service.plaintext import NAME_PATTERN, TEXT_PATTERN, Documented, Line

Role = Literal["admin", "street_staff", "community_staff", "grid_leader", "field_staff", "viewer"]
KeyScope = Literal[
    "read", "read_private", "report", "open311", "write", "dispatch", "export", "import"
]
Reason = Annotated[Line, Field(max_length=500, description="Why: kept in the audit log.")]

# A grid named by its id or its code (resolve_grid refuses control characters in a code).
GridRef = (
    Annotated[int, Field(ge=1, le=BIGINT_MAX)]
    | Annotated[str, Field(min_length=1, max_length=64), Documented(TEXT_PATTERN)]
)


# A username as create_user reads it: blanks around it dropped, then 2-64 ASCII letters,
# digits, '.', '_' or '-' starting with a letter or digit, kept in lower case. Checked on
# the text as sent, before lower-casing (which maps the Kelvin sign K to a k).
USERNAME = r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}"
USERNAME_PATTERN = rf"^\s*{USERNAME}\s*$"

# A password to set: its length and strength as the document states them and password_problem
# checks them (the check keeps its own message, naming the rule broken).
NewPassword = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    Documented(PASSWORD_PATTERN),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Body):
    """Username and password."""

    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserOut(BaseModel):
    """A user account (never the password hash)."""

    id: int
    username: str
    display_name: str
    role: Role
    grid_id: int | None
    grid_code: str | None = None
    grid_name: str | None = None
    person_id: int | None
    person_name: str | None = None
    active: bool
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class LoginResponse(BaseModel):
    """A logged-in session: the cookie is set; send csrf_token as X-CSRF-Token on writes."""

    user: UserOut
    csrf_token: str
    expires_at: datetime


# Sent together or not at all (then the caller's session or token is used): the rule the
# model checks and the OpenAPI document states (JSON Schema anyOf of required sets).
_CREDENTIALS = ("username", "password")


def _credentials_together(schema: dict[str, Any]) -> None:
    """The document's form of the rule: both given, or neither; a given one is a string."""
    for key in _CREDENTIALS:
        prop = schema["properties"][key]
        string = next(s for s in prop.pop("anyOf") if s.get("type") == "string")
        prop.update(string)
    neither = {"not": {"anyOf": [{"required": [key]} for key in _CREDENTIALS]}}
    schema["anyOf"] = [{"required": list(_CREDENTIALS)}, neither]


class TokenRequest(_Body):
    """A new bearer token: give username and password, or call with a session or token."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_credentials_together)

    username: str | None = Field(default=None, min_length=1, max_length=64)
    password: str | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH)
    name: str | None = Field(
        default=None, max_length=100, description="A label, e.g. the script or device."
    )
    # At least 0.001 day (86 s): a lifetime of 1e-308 days rounded to zero seconds and broke
    # the table's expires_at > created_at check with a 500 (found by test_fuzz).
    ttl_days: float | None = Field(
        default=None,
        ge=0.001,
        le=366,
        description="Lifetime in days (0.001 to 366); default from settings.",
    )

    @model_validator(mode="before")
    @classmethod
    def _together(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [key for key in _CREDENTIALS if key in data]
            if any(data[key] is None for key in given):
                raise ValueError("username and password are strings; leave them out instead")
            if len(given) == 1:
                raise ValueError("give both username and password, or neither (when logged in)")
        return data


class TokenCreated(BaseModel):
    """A bearer token: the secret is shown only now; send it as 'Authorization: Bearer …'."""

    id: int
    token: str
    token_type: Literal["bearer"] = "bearer"
    name: str | None
    created_at: datetime
    expires_at: datetime
    user: UserOut


class TokenOut(BaseModel):
    """A session or bearer token of the caller (never the secret)."""

    id: int
    kind: Literal["session", "bearer"]
    name: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    ip: str | None
    user_agent: str | None


class Revoked(BaseModel):
    """A revoked token."""

    id: int
    revoked: bool


class Me(BaseModel):
    """Who the caller is and what they may do."""

    kind: Literal["anonymous", "user", "api_key"]
    id: int | None
    name: str
    role: str | None
    scopes: list[str]
    grid_id: int | None
    grid_path: list[int]
    person_id: int | None
    via: str | None


def _grid_unless_admin(schema: dict[str, Any]) -> None:
    """States create_user's rule: every role but admin needs a grid."""
    schema.setdefault("allOf", []).append(
        {
            "if": {"properties": {"role": {"not": {"const": "admin"}}}},
            "then": {"required": ["grid"], "properties": {"grid": {"not": {"type": "null"}}}},
        }
    )


class UserCreate(_Body):
    """A new user; non-admin users need a grid (their scope root)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_grid_unless_admin)

    username: Annotated[str, Documented(USERNAME_PATTERN)] = Field(
        min_length=2, max_length=64, examples=["zhang.wei"]
    )
    display_name: Line = Field(max_length=100, examples=["张伟"])
    password: NewPassword
    role: Role
    grid: GridRef | None = Field(
        default=None, description="Id or code of the grid whose subtree is the user's scope."
    )
    person_id: int | None = Field(
        default=None,
        ge=1,
        le=BIGINT_MAX,
        description="The person this account belongs to (find them by name with "
        "GET /api/v1/people); a person has at most one account.",
    )
    reason: Reason | None = None


_USER_NOT_NULL = ("display_name", "role")
_USER_FIELDS = ("display_name", "role", "grid", "person_id")


class UserPatch(_Body):
    """What to change of an account; ``person_id`` null unlinks the person."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=patch_schema(_USER_NOT_NULL, _USER_FIELDS)
    )

    display_name: Line | None = Field(default=None, max_length=100)
    role: Role | None = None
    grid: int | str | None = Field(default=None, description="Id or code of the scope grid.")
    person_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    reason: Reason | None = None

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        check_patch(self, _USER_NOT_NULL, _USER_FIELDS)
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, by their service names."""
        return {k: getattr(self, k) for k in self.model_fields_set - {"reason"}}


class PasswordReset(_Body):
    """A new password for an account, or none to have one made (shown once)."""

    password: NewPassword | None = None
    reason: Reason | None = None


class PasswordResetOut(BaseModel):
    """The account after the reset; ``password`` only when the service made it."""

    user: UserOut
    password: str | None = None


class UserAction(_Body):
    """Why an account is disabled, enabled or unlocked (optional)."""

    reason: Reason | None = None


class UserList(BaseModel):
    """A page of users."""

    users: list[UserOut]
    limit: int
    offset: int


class KeyCreate(_Body):
    """A new API key for another system."""

    # Checked by auth.admin.create_key (clean_text, not blank), stated here.
    name: Annotated[str, Documented(NAME_PATTERN)] = Field(
        min_length=1, max_length=100, examples=["12345 热线平台"]
    )
    scopes: list[KeyScope] = Field(min_length=1, max_length=10, examples=[["read", "report"]])
    grid: GridRef | None = Field(
        default=None, description="Id or code of a grid: limit the key to its subtree."
    )
    reason: Reason | None = None


class KeyOut(BaseModel):
    """An API key (never the secret or its hash)."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    grid_id: int | None
    grid_code: str | None = None
    grid_name: str | None = None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None


class KeyCreated(KeyOut):
    """A new key: ``key`` is shown only now; send it as the X-API-Key header."""

    key: str


class KeyList(BaseModel):
    """A page of API keys."""

    keys: list[KeyOut]
    limit: int
    offset: int


class AuditEntry(BaseModel):
    """One write: who, what (before/after), when and from where."""

    id: int
    at: datetime
    principal_kind: str
    principal_id: int | None
    principal_name: str
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    grid_id: int | None
    ip: str | None
    reason: str | None = None


class AuditPage(BaseModel):
    """A page of the audit log, newest first."""

    entries: list[AuditEntry]
    limit: int
    offset: int
