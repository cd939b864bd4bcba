"""What an admin manages, with no HTTP: user accounts (create, disable, unlock, set a
password), API keys (create, list, revoke) and the audit log. The CLI and the routes share it;
every write records its audit row in the same transaction."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gis_service.auth import audit, sql
from gis_service.auth.passwords import (
    hash_password,
    password_problem,
)
from gis_service.auth.principal import Principal
from gis_service.auth.roles import KEY_SCOPES, ROLES
from gis_service.auth.tokens import (
    digest,
    new_api_key,
)
from gis_service.db.transaction import transaction
from gis_service.errors import (
    Conflict,
    Invalid,
    NotFound,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


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
