"""Sessions and tokens with no HTTP: log in (with brute-force slowdown and lock), issue,
list and revoke session and bearer tokens. The CLI and the routes share it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from gis_service.auth import audit, sql
from gis_service.auth.admin import get_user
from gis_service.auth.passwords import (
    hash_password,
    needs_rehash,
    verify_password,
)
from gis_service.auth.principal import Principal
from gis_service.auth.tokens import (
    BEARER_PREFIX,
    SESSION_PREFIX,
    digest,
    new_secret,
)
from gis_service.clock import DATABASE_CLOCK, Clock
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import (
    DomainError,
    Forbidden,
    Locked,
    NotFound,
    TooMany,
    Unauthorized,
)


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
    clock: Clock = DATABASE_CLOCK,
) -> tuple[int, str, str | None, datetime, datetime]:
    """Insert a session or bearer token (inside the caller's transaction), valid from the
    clock's now for ``ttl_seconds``."""
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
            "now": clock.now(),
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
                    clock=clock,
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
    clock: Clock = DATABASE_CLOCK,
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
            clock=clock,
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


def list_tokens(
    conn: Connection, user_id: int, include_revoked: bool = False, clock: Clock = DATABASE_CLOCK
) -> list[dict]:
    """A user's tokens and sessions (never the secrets); unexpired by the clock's now."""
    rows = conn.execute(
        sql.LIST_TOKENS,
        {"user_id": user_id, "include_revoked": include_revoked, "now": clock.now()},
    ).mappings()
    return [dict(r) for r in rows]
