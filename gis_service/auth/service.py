"""Accounts with no HTTP: log in (with brute-force slowdown and lock), issue and revoke
tokens, manage users and API keys, read the audit log. The CLI and the routes share it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gis_service.auth import audit, sql
from gis_service.auth.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from gis_service.auth.principal import Principal
from gis_service.auth.roles import KEY_SCOPES, ROLES
from gis_service.auth.tokens import (
    BEARER_PREFIX,
    SESSION_PREFIX,
    digest,
    new_api_key,
    new_secret,
)
from gis_service.clock import DATABASE_CLOCK, Clock
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Locked,
    NotFound,
    TooMany,
    Unauthorized,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


# ---- login -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued session or bearer token; the secrets are shown only now."""

    id: int
    kind: Literal["session", "bearer"]
    token: str
    csrf_token: str | None
    created_at: datetime
    expires_at: datetime
    user: dict[str, Any]


def _wait_seconds(settings: Settings, failures: int) -> float:
    """How long after the last failure the next try must wait (0 before the slowdown)."""
    if failures < settings.login_slowdown_after:
        return 0.0
    steps = min(failures - settings.login_slowdown_after, 16)  # cap: 2**16 × base
    return settings.login_delay_seconds * (2**steps)


def _refusal_after_failure(settings: Settings, failures: int, locked_until: Any) -> DomainError:
    if locked_until is not None:
        return Locked(
            f"Too many failed logins ({failures}); the account is locked for "
            f"{settings.login_lock_minutes:g} minutes. Ask an administrator to unlock it "
            "(gis-service users unlock) if you cannot wait.",
            code="account_locked",
            locked_until=locked_until.isoformat(),
        )
    left = settings.login_max_failures - failures
    return Unauthorized(
        "Wrong username or password."
        + (f" {left} more failed attempt(s) will lock the account." if left <= 3 else ""),
        code="login_failed",
        challenge=False,
    )


def issue_token(
    conn: Connection,
    settings: Settings,
    user_id: int,
    kind: Literal["session", "bearer"],
    *,
    name: str | None = None,
    ttl_seconds: float | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[int, str, str | None, datetime, datetime]:
    """Insert a session or bearer token (inside the caller's transaction)."""
    token = new_secret(SESSION_PREFIX if kind == "session" else BEARER_PREFIX)
    csrf = new_secret("csrf") if kind == "session" else None
    if ttl_seconds is None:
        ttl_seconds = (
            settings.session_ttl_hours * 3600
            if kind == "session"
            else settings.bearer_ttl_days * 86400
        )
    row = conn.execute(
        sql.INSERT_TOKEN,
        {
            "user_id": user_id,
            "kind": kind,
            "name": name,
            "token_hash": digest(token),
            "csrf_hash": digest(csrf) if csrf else None,
            "ttl_seconds": float(ttl_seconds),
            "ip": ip,
            "user_agent": user_agent,
        },
    ).one()
    return row.id, token, csrf, row.created_at, row.expires_at


def login(
    conn: Connection,
    settings: Settings,
    username: str,
    password: str,
    *,
    kind: Literal["session", "bearer"] = "session",
    token_name: str | None = None,
    ttl_seconds: float | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    clock: Clock = DATABASE_CLOCK,
) -> IssuedToken:
    """Check a password and issue a token; 401 wrong, 429 too soon after failures, 423 locked.

    Failures are counted per account (and committed even though the call then raises): after
    ``login_slowdown_after`` failures each further try must wait ``login_delay_seconds``,
    doubling each time; after ``login_max_failures`` the account locks for
    ``login_lock_minutes``. While a wait or lock runs, the password is not even checked.
    """
    username = username.strip().lower()
    refusal: DomainError | None = None
    issued: IssuedToken | None = None
    with transaction(conn):
        row = conn.execute(sql.USER_FOR_LOGIN, {"username": username, "now": clock.now()}).first()
        if row is None:
            verify_password(None, password)  # same cost as a real check: no user enumeration
            refusal = Unauthorized(
                "Wrong username or password.", code="login_failed", challenge=False
            )
        elif row.locked_until is not None and row.locked_until > row.now:
            seconds = (row.locked_until - row.now).total_seconds()
            refusal = Locked(
                f"The account is locked after {row.failed_logins} failed logins; try again in "
                f"{int(seconds // 60) + 1} minute(s) or ask an administrator to unlock it.",
                code="account_locked",
                retry_after=int(seconds) + 1,
                locked_until=row.locked_until.isoformat(),
            )
        else:
            failures = row.failed_logins
            if row.locked_until is not None:  # a lock that has run out starts a fresh count
                failures = 0
            wait = _wait_seconds(settings, failures)
            since = (row.now - row.last_failed_at).total_seconds() if row.last_failed_at else 1e9
            if wait > 0 and since < wait:
                refusal = TooMany(
                    f"Too many failed logins ({failures}); wait {wait - since:.0f} s before the "
                    "next try. Each further failure doubles the wait, and "
                    f"{settings.login_max_failures} in a row lock the account.",
                    retry_after=wait - since,
                    failed_logins=failures,
                )
            elif not verify_password(row.password_hash, password):
                if row.locked_until is not None:
                    conn.execute(sql.UNLOCK_USER, {"id": row.id})
                failed = conn.execute(
                    sql.LOGIN_FAILED,
                    {
                        "id": row.id,
                        "max_failures": settings.login_max_failures,
                        "lock_seconds": settings.login_lock_minutes * 60,
                        "now": clock.now(),
                    },
                ).one()
                action = "lock" if failed.locked_until is not None else "login_failed"
                audit.record(
                    conn,
                    None,
                    action,
                    "user",
                    row.id,
                    None,
                    {"username": row.username, "failed_logins": failed.failed_logins},
                    None,
                    ip,
                )
                refusal = _refusal_after_failure(
                    settings, failed.failed_logins, failed.locked_until
                )
            elif not row.active:
                refusal = Forbidden(
                    "This account is disabled; ask an administrator.", code="account_disabled"
                )
            else:
                rehash = hash_password(password) if needs_rehash(row.password_hash) else None
                conn.execute(sql.LOGIN_OK, {"id": row.id, "rehash": rehash})
                token_id, token, csrf, created, expires = issue_token(
                    conn,
                    settings,
                    row.id,
                    kind,
                    name=token_name,
                    ttl_seconds=ttl_seconds,
                    ip=ip,
                    user_agent=user_agent,
                )
                user = get_user(conn, row.id)
                principal = principal_of(user)
                audit.record(
                    conn,
                    principal,
                    "login" if kind == "session" else "token_create",
                    "auth_token",
                    token_id,
                    None,
                    {"kind": kind, "name": token_name, "expires_at": expires},
                    None,
                    ip,
                )
                issued = IssuedToken(token_id, kind, token, csrf, created, expires, user)
    if refusal is not None:
        raise refusal
    assert issued is not None
    return issued


def principal_of(user: dict[str, Any]) -> Principal:
    """A minimal principal for a user row (audit names; scope is not needed there)."""
    from gis_service.auth.roles import ROLE_SCOPES

    return Principal(
        kind="user",
        id=user["id"],
        name=user["display_name"],
        role=user["role"],
        scopes=ROLE_SCOPES[user["role"]],
        grid_id=user["grid_id"],
        grid_path=(),
        person_id=user["person_id"],
    )


def create_bearer_for(
    conn: Connection,
    settings: Settings,
    principal: Principal,
    *,
    name: str | None,
    ttl_seconds: float | None,
    ip: str | None,
    user_agent: str | None,
) -> IssuedToken:
    """A bearer token for an already authenticated user."""
    assert principal.kind == "user" and principal.id is not None
    with transaction(conn):
        token_id, token, _, created, expires = issue_token(
            conn,
            settings,
            principal.id,
            "bearer",
            name=name,
            ttl_seconds=ttl_seconds,
            ip=ip,
            user_agent=user_agent,
        )
        audit.record(
            conn,
            principal,
            "token_create",
            "auth_token",
            token_id,
            None,
            {"kind": "bearer", "name": name, "expires_at": expires},
            None,
            ip,
        )
        user = get_user(conn, principal.id)
    return IssuedToken(token_id, "bearer", token, None, created, expires, user)


def revoke_token(
    conn: Connection, principal: Principal | None, token_id: int, ip: str | None
) -> dict[str, Any]:
    """Revoke a token; a user may revoke only their own (others' ids are 404)."""
    owner = None if principal is None or principal.is_admin else principal.id
    with transaction(conn):
        found = conn.execute(sql.TOKEN_OWNER, {"id": token_id, "user_id": owner}).first()
        if found is None:
            raise NotFound(f"Token {token_id} does not exist.", id=token_id)
        row = conn.execute(sql.REVOKE_TOKEN, {"id": token_id, "user_id": owner}).first()
        if row is not None:
            audit.record(
                conn,
                principal,
                "token_revoke",
                "auth_token",
                token_id,
                {"kind": row.kind, "name": row.name, "user_id": row.user_id},
                {"revoked": True},
                None,
                ip,
            )
    return {"id": token_id, "revoked": True}


def list_tokens(conn: Connection, user_id: int, include_revoked: bool = False) -> list[dict]:
    """A user's tokens and sessions (never the secrets)."""
    rows = conn.execute(
        sql.LIST_TOKENS, {"user_id": user_id, "include_revoked": include_revoked}
    ).mappings()
    return [dict(r) for r in rows]


# ---- users -------------------------------------------------------------------------------
def resolve_grid(conn: Connection, ref: int | str | None) -> dict[str, Any] | None:
    """The current grid with this id or code; 422 when there is none."""
    if ref is None or ref == "":
        return None
    as_id = int(ref) if isinstance(ref, int) or str(ref).isdigit() else None
    if as_id is not None and as_id > 2**63 - 1:
        as_id = None
    row = conn.execute(sql.GRID_BY_REF, {"id": as_id, "code": str(ref)}).mappings().first()
    if row is None:
        raise Invalid(f"No current grid has the id or code {ref!r}.", grid=str(ref))
    return dict(row)


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """One user (no password hash); 404 when missing."""
    row = conn.execute(sql.GET_USER, {"id": user_id}).mappings().first()
    if row is None:
        raise NotFound(f"User {user_id} does not exist.", id=user_id)
    return dict(row)


def find_user(conn: Connection, ref: str | int) -> dict[str, Any]:
    """A user by id or username; 404 when missing."""
    if isinstance(ref, int) or (str(ref).isdigit() and len(str(ref)) <= 18):
        return get_user(conn, int(ref))
    row = conn.execute(sql.GET_USER_BY_NAME, {"username": str(ref).lower()}).mappings().first()
    if row is None:
        raise NotFound(f"User {ref!r} does not exist.", username=str(ref))
    return dict(row)


def list_users(
    conn: Connection,
    role: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Users by username."""
    rows = conn.execute(
        sql.LIST_USERS, {"role": role, "active": active, "limit": limit, "offset": offset}
    ).mappings()
    return [dict(r) for r in rows]


def create_user(
    conn: Connection,
    principal: Principal | None,
    *,
    username: str,
    display_name: str,
    password: str,
    role: str,
    grid: int | str | None = None,
    person_id: int | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Create a user; 422 with the reason for a bad field, 409 for a taken username."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise Invalid(
            "The username must be 2–64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            username=username,
        )
    if role not in ROLES:
        raise Invalid(f"Unknown role {role!r}. Roles: {', '.join(ROLES)}.", role=role)
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    display_name = display_name.strip()
    if not display_name or len(display_name) > 100:
        raise Invalid("The display name must be 1–100 characters.")
    with transaction(conn):
        scope = resolve_grid(conn, grid)
        if scope is None and role != "admin":
            raise Invalid(
                f"A {role} user needs a grid (their scope is that grid's subtree); "
                "give --grid with a grid id or code.",
                role=role,
            )
        if (
            person_id is not None
            and conn.execute(sql.PERSON_EXISTS, {"id": person_id}).first() is None
        ):
            raise Invalid(f"Person {person_id} does not exist.", person_id=person_id)
        try:
            with conn.begin_nested():
                user_id = conn.execute(
                    sql.INSERT_USER,
                    {
                        "username": username,
                        "display_name": display_name,
                        "password_hash": hash_password(password),
                        "role": role,
                        "grid_id": scope["id"] if scope else None,
                        "person_id": person_id,
                    },
                ).scalar_one()
        except IntegrityError as exc:
            raise Conflict(f"The username {username!r} is taken.", username=username) from exc
        user = get_user(conn, user_id)
        audit.record(
            conn,
            principal,
            "create",
            "user",
            user_id,
            None,
            _user_snapshot(user),
            user["grid_id"],
            ip,
        )
    return user


def _user_snapshot(user: dict[str, Any]) -> dict[str, Any]:
    keys = ("username", "display_name", "role", "grid_id", "person_id", "active")
    return {k: user[k] for k in keys}


def set_active(
    conn: Connection, principal: Principal | None, ref: str | int, active: bool, ip: str | None
) -> dict[str, Any]:
    """Disable (and log out everywhere) or re-enable a user."""
    with transaction(conn):
        user = find_user(conn, ref)
        if principal is not None and principal.id == user["id"] and not active:
            raise Conflict("You cannot disable your own account.")
        conn.execute(sql.SET_USER_ACTIVE, {"id": user["id"], "active": active})
        if not active:
            conn.execute(sql.REVOKE_USER_TOKENS, {"user_id": user["id"]})
        after = get_user(conn, user["id"])
        audit.record(
            conn,
            principal,
            "enable" if active else "disable",
            "user",
            user["id"],
            _user_snapshot(user),
            _user_snapshot(after),
            user["grid_id"],
            ip,
        )
    return after


def unlock(
    conn: Connection, principal: Principal | None, ref: str | int, ip: str | None
) -> dict[str, Any]:
    """Clear a user's failed-login count and lock."""
    with transaction(conn):
        user = find_user(conn, ref)
        conn.execute(sql.UNLOCK_USER, {"id": user["id"]})
        audit.record(
            conn,
            principal,
            "unlock",
            "user",
            user["id"],
            {"failed_logins": user["failed_logins"], "locked_until": user["locked_until"]},
            {"failed_logins": 0, "locked_until": None},
            user["grid_id"],
            ip,
        )
        return get_user(conn, user["id"])


def set_password(
    conn: Connection, principal: Principal | None, ref: str | int, password: str, ip: str | None
) -> dict[str, Any]:
    """Set a new password, unlock, and end every session and token of the user."""
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    with transaction(conn):
        user = find_user(conn, ref)
        conn.execute(sql.SET_PASSWORD, {"id": user["id"], "password_hash": hash_password(password)})
        conn.execute(sql.REVOKE_USER_TOKENS, {"user_id": user["id"]})
        audit.record(
            conn,
            principal,
            "set_password",
            "user",
            user["id"],
            None,
            {"password": "changed"},
            user["grid_id"],
            ip,
        )
    return user


# ---- API keys ----------------------------------------------------------------------------
def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """Known, de-duplicated key scopes; 422 naming the unknown ones."""
    cleaned = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in cleaned if s not in KEY_SCOPES]
    if unknown or not cleaned:
        raise Invalid(
            f"Unknown or missing scope(s): {', '.join(unknown) or 'none given'}. "
            f"Scopes: {', '.join(KEY_SCOPES)}.",
            scopes=unknown,
        )
    return cleaned


def create_key(
    conn: Connection,
    principal: Principal | None,
    *,
    name: str,
    scopes: list[str],
    grid: int | str | None = None,
    ip: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create an API key; returns its row and the secret (shown once, stored hashed)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("The key name must be 1–100 characters.")
    cleaned = check_scopes(scopes)
    secret, prefix = new_api_key()
    with transaction(conn):
        scope = resolve_grid(conn, grid)
        created_by = principal.id if principal is not None and principal.kind == "user" else None
        row = conn.execute(
            sql.INSERT_KEY,
            {
                "name": name,
                "prefix": prefix,
                "key_hash": digest(secret),
                "scopes": cleaned,
                "grid_id": scope["id"] if scope else None,
                "created_by": created_by,
            },
        ).one()
        key = get_key(conn, row.id)
        audit.record(
            conn,
            principal,
            "create",
            "api_key",
            row.id,
            None,
            {"name": name, "prefix": prefix, "scopes": cleaned, "grid_id": key["grid_id"]},
            key["grid_id"],
            ip,
        )
    return key, secret


def get_key(conn: Connection, ref: int | str) -> dict[str, Any]:
    """One API key by id or prefix (never its hash); 404 when missing."""
    as_id = int(ref) if isinstance(ref, int) or str(ref).isdigit() else None
    if as_id is not None and as_id > 2**63 - 1:
        as_id = None
    row = conn.execute(sql.GET_KEY, {"id": as_id, "prefix": str(ref)}).mappings().first()
    if row is None:
        raise NotFound(f"API key {ref} does not exist.", key=str(ref))
    return dict(row)


def list_keys(
    conn: Connection, include_revoked: bool = False, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """API keys, newest first."""
    rows = conn.execute(
        sql.LIST_KEYS, {"include_revoked": include_revoked, "limit": limit, "offset": offset}
    ).mappings()
    return [dict(r) for r in rows]


def revoke_key(
    conn: Connection, principal: Principal | None, ref: int | str, ip: str | None
) -> dict[str, Any]:
    """Revoke an API key at once (idempotent)."""
    with transaction(conn):
        key = get_key(conn, ref)
        if conn.execute(sql.REVOKE_KEY, {"id": key["id"]}).first() is not None:
            audit.record(
                conn,
                principal,
                "revoke",
                "api_key",
                key["id"],
                {"name": key["name"], "scopes": key["scopes"], "revoked_at": None},
                {"revoked": True},
                key["grid_id"],
                ip,
            )
        return get_key(conn, key["id"])


# ---- audit -------------------------------------------------------------------------------
def list_audit(conn: Connection, **filters: Any) -> list[dict[str, Any]]:
    """Audit rows, newest first; filters: grid, object_type, object_id, user_id, action,
    since, until, limit, offset."""
    params = {
        "grid": None,
        "object_type": None,
        "object_id": None,
        "user_id": None,
        "action": None,
        "since": None,
        "until": None,
        "limit": 100,
        "offset": 0,
        **filters,
    }
    return [dict(r) for r in conn.execute(sql.LIST_AUDIT, params).mappings()]
