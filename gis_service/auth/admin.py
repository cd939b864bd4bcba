"""What an admin (or a street's staff, within their street) manages, with no HTTP: user
accounts (create, change, link to a person, disable, unlock, set a password), API keys
(create, list, revoke) and the audit log. The CLI and the routes share it; every write checks
the caller's grants and records its audit row in the same transaction."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gis_service.auth import audit, grants, sql
from gis_service.auth.passwords import hash_password, password_problem, temporary_password
from gis_service.auth.principal import Principal
from gis_service.auth.roles import KEY_SCOPES, ROLES
from gis_service.auth.schemas import USERNAME
from gis_service.auth.tokens import digest, new_api_key
from gis_service.db.transaction import transaction
from gis_service.errors import Conflict, Invalid, NotFound
from gis_service.people.scope import readable, serves_within
from gis_service.plaintext import clean_text, decimal_id, like_literal


# ---- users -------------------------------------------------------------------------------
def resolve_grid(conn: Connection, ref: int | str | None) -> dict[str, Any] | None:
    """The current grid with this id or code; 404 when there is none (what the document
    says a 404 means: nothing with this id or code exists)."""
    if ref is None or ref == "":
        return None
    if isinstance(ref, str):
        try:
            ref = clean_text(ref)[:100]
        except ValueError as exc:
            raise Invalid(f"The grid {exc}.", code="invalid_parameter") from exc
    row = (
        conn.execute(sql.GRID_BY_REF, {"id": decimal_id(ref), "code": str(ref)}).mappings().first()
    )
    if row is None:
        raise NotFound(f"No current grid has the id or code {ref!r}.", grid=str(ref))
    return dict(row)


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """One user (no password hash); 404 when missing."""
    row = conn.execute(sql.GET_USER, {"id": user_id}).mappings().first()
    if row is None:
        raise NotFound(f"User {user_id} does not exist.", id=user_id)
    return dict(row)


def find_user(conn: Connection, ref: str | int) -> dict[str, Any]:
    """A user by id or username; 404 when missing."""
    as_id = decimal_id(ref)
    if as_id is not None:
        return get_user(conn, as_id)
    row = conn.execute(sql.GET_USER_BY_NAME, {"username": str(ref).lower()}).mappings().first()
    if row is None:
        raise NotFound(f"User {ref!r} does not exist.", username=str(ref))
    return dict(row)


def get_managed_user(conn: Connection, principal: Principal | None, ref: str | int) -> dict:
    """A user the caller manages; 404 outside their subtree, 403 above their role."""
    user = find_user(conn, ref)
    grants.manageable(principal, user, "account")
    return user


def list_users(
    conn: Connection,
    role: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    principal: Principal | None = None,
    q: str | None = None,
    grid: int | str | None = None,
) -> list[dict[str, Any]]:
    """Users by username: the caller's subtree, by role, state, name or grid subtree."""
    try:
        q = clean_text(q) if q else None
    except ValueError as exc:
        raise Invalid(f"The search term {exc}.") from exc
    within = None
    if grid is not None:
        found = resolve_grid(conn, grid)
        assert found is not None
        within = conn.execute(sql.GRID_VERSIONS, {"code": found["code"]}).scalar_one()
    params = {
        "role": role,
        "active": active,
        "limit": limit,
        "offset": offset,
        "scope": None if principal is None or principal.is_admin else principal.scope_filter(),
        "within": within,
        "q": like_literal(q) if q else None,
    }
    return [dict(r) for r in conn.execute(sql.LIST_USERS, params).mappings()]


def _check_person_link(
    conn: Connection,
    principal: Principal | None,
    person_id: int,
    scope: dict[str, Any] | None,
    user_id: int | None,
) -> None:
    """The person exists, the caller sees them, they serve in the account's scope and have
    no other account; 404, 422 or 409 saying which (an unknown person is 404, as an unknown
    grid is: the document cannot know which ids exist)."""
    if conn.execute(sql.PERSON_EXISTS, {"id": person_id}).first() is None:
        raise NotFound(f"Person {person_id} does not exist.", person_id=person_id)
    readable(conn, principal, person_id)
    if scope is not None:
        roots = conn.execute(sql.GRID_VERSIONS, {"code": scope["code"]}).scalar_one()
        if not serves_within(conn, person_id, roots):
            raise Invalid(
                f"Person {person_id} does not belong to grid {scope['code']} "
                f"({scope['name']}), the account's scope: link a person kept by or serving in "
                "that grid's subtree (find them with `gis-service people find`).",
                code="person_outside_scope",
                person_id=person_id,
                grid=scope["code"],
            )
    other = conn.execute(
        sql.ACCOUNT_OF_PERSON, {"person_id": person_id, "user_id": user_id}
    ).first()
    if other is not None:
        raise Conflict(
            f"Person {person_id} is linked to the account {other.username} already; a person "
            "has one account. Unlink it there first.",
            code="person_already_linked",
            person_id=person_id,
            user_id=other.id,
        )


def check_account_person(
    conn: Connection,
    principal: Principal | None,
    person_id: int,
    grid: int | str | None,
    user_id: int | None = None,
) -> None:
    """Whether ``person_id`` may be linked to an account scoped to ``grid``: 422, 404 or
    409 when not (see _check_person_link)."""
    _check_person_link(conn, principal, person_id, resolve_grid(conn, grid), user_id)


def _clean_display_name(display_name: str) -> str:
    try:
        display_name = clean_text(display_name)
    except ValueError as exc:
        raise Invalid(f"The display name {exc}.") from exc
    if not display_name or len(display_name) > 100 or "\n" in display_name:
        raise Invalid("The display name must be one line of 1–100 characters.")
    return display_name


def _linked_person(exc: IntegrityError) -> bool:
    return "users_person_key" in str(exc.orig)


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
    reason: str | None = None,
) -> dict[str, Any]:
    """Create a user; 422 with the reason for a bad field, 409 for a taken username or a
    person who has an account, 403 for a role or scope above the caller's."""
    username = username.strip()
    if not re.fullmatch(USERNAME, username):
        raise Invalid(
            "The username must be 2–64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            username=username,
        )
    username = username.lower()
    if role not in ROLES:
        raise Invalid(f"Unknown role {role!r}. Roles: {', '.join(ROLES)}.", role=role)
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    display_name = _clean_display_name(display_name)
    grants.role_allowed(principal, role)
    with transaction(conn):
        scope = resolve_grid(conn, grid)
        if scope is None and role != "admin":
            raise Invalid(
                f"A {role} user needs a grid (their scope is that grid's subtree); "
                "give --grid with a grid id or code.",
                role=role,
            )
        grants.scope_allowed(principal, scope["path"] if scope else None)
        if person_id is not None:
            _check_person_link(conn, principal, person_id, scope, None)
        # ON CONFLICT rather than a savepoint: the user row and its audit row then carry
        # the one transaction id, which the audit test checks. A person linked by someone
        # else meanwhile (checked above) still breaks users_person_key: the write is then
        # refused as a whole.
        try:
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
            ).scalar()
        except IntegrityError as exc:
            if _linked_person(exc):
                raise Conflict(
                    f"Person {person_id} got an account meanwhile; a person has one account.",
                    code="person_already_linked",
                ) from exc
            raise
        if user_id is None:
            raise Conflict(f"The username {username!r} is taken.", username=username)
        user = get_user(conn, user_id)
        grants.manageable(principal, user, "account")
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
            reason=reason,
        )
    return user


def _user_snapshot(user: dict[str, Any]) -> dict[str, Any]:
    keys = ("username", "display_name", "role", "grid_id", "person_id", "active")
    return {k: user[k] for k in keys}


USER_FIELDS = frozenset({"display_name", "role", "grid", "person_id"})


def update_user(
    conn: Connection,
    principal: Principal | None,
    ref: str | int,
    changes: dict[str, Any],
    ip: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Change a user's display name, role, scope grid or linked person (None unlinks).

    The account must be the caller's to manage before and after; the new role and scope may
    not exceed the caller's own, and nobody changes their own role or scope.
    """
    unknown = set(changes) - USER_FIELDS
    if unknown or not changes:
        raise Invalid(
            f"Give what to change: {', '.join(sorted(USER_FIELDS))}.", unknown=sorted(unknown)
        )
    with transaction(conn):
        user = get_managed_user(conn, principal, ref)
        values = {k: user[k] for k in ("display_name", "role", "grid_id", "person_id")}
        scope = resolve_grid(conn, user["grid_id"]) if user["grid_id"] else None
        if "display_name" in changes:
            values["display_name"] = _clean_display_name(changes["display_name"] or "")
        if "role" in changes and changes["role"] != user["role"]:
            if changes["role"] not in ROLES:
                raise Invalid(f"Unknown role {changes['role']!r}. Roles: {', '.join(ROLES)}.")
            grants.not_self(principal, user["id"], "role")
            grants.role_allowed(principal, changes["role"])
            values["role"] = changes["role"]
        if "grid" in changes:
            scope = resolve_grid(conn, changes["grid"])
            if (scope["id"] if scope else None) != user["grid_id"]:
                grants.not_self(principal, user["id"], "scope")
                grants.scope_allowed(principal, scope["path"] if scope else None)
            values["grid_id"] = scope["id"] if scope else None
        if values["grid_id"] is None and values["role"] != "admin":
            raise Invalid(
                f"A {values['role']} user needs a grid (their scope is that grid's subtree).",
                role=values["role"],
            )
        if "person_id" in changes:
            values["person_id"] = changes["person_id"]
        moved = values["grid_id"] != user["grid_id"] or values["person_id"] != user["person_id"]
        if values["person_id"] is not None and moved:
            _check_person_link(conn, principal, values["person_id"], scope, user["id"])
        if values == {k: user[k] for k in values}:
            return user
        # No savepoint, as in create_user: the user row and its audit row then carry the
        # one transaction id. A person linked elsewhere meanwhile (checked above) still
        # breaks users_person_key: the write is then refused as a whole.
        try:
            conn.execute(sql.UPDATE_USER, {**values, "id": user["id"]})
        except IntegrityError as exc:
            if not _linked_person(exc):
                raise
            raise Conflict(
                f"Person {values['person_id']} is linked to another account; a person has one "
                "account.",
                code="person_already_linked",
            ) from exc
        after = get_user(conn, user["id"])
        grants.manageable(principal, after, "account")
        audit.record(
            conn,
            principal,
            "update",
            "user",
            user["id"],
            _user_snapshot(user),
            _user_snapshot(after),
            after["grid_id"],
            ip,
            reason=reason,
        )
    return after


def set_active(
    conn: Connection,
    principal: Principal | None,
    ref: str | int,
    active: bool,
    ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Disable (and log out everywhere) or re-enable a user."""
    with transaction(conn):
        user = get_managed_user(conn, principal, ref)
        if principal is not None and principal.id == user["id"] and not active:
            raise Conflict("You cannot disable your own account.", code="own_account")
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
            reason=reason,
        )
    return after


def unlock(
    conn: Connection,
    principal: Principal | None,
    ref: str | int,
    ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Clear a user's failed-login count and lock."""
    with transaction(conn):
        user = get_managed_user(conn, principal, ref)
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
            reason=reason,
        )
        return get_user(conn, user["id"])


def set_password(
    conn: Connection,
    principal: Principal | None,
    ref: str | int,
    password: str,
    ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Set a new password, unlock, and end every session and token of the user."""
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    with transaction(conn):
        user = get_managed_user(conn, principal, ref)
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
            reason=reason,
        )
    return user


def reset_password(
    conn: Connection,
    principal: Principal | None,
    ref: str | int,
    password: str | None,
    ip: str | None,
    reason: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Set the given password, or make a temporary one (returned, shown once)."""
    made = temporary_password() if password is None else None
    user = set_password(conn, principal, ref, password or made or "", ip, reason)
    return get_user(conn, user["id"]), made


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
    reason: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create an API key; returns its row and the secret (shown once, stored hashed)."""
    try:
        name = clean_text(name)
    except ValueError as exc:
        raise Invalid(f"The key name {exc}.") from exc
    if not name or len(name) > 100:
        raise Invalid("The key name must be 1–100 characters.")
    cleaned = check_scopes(scopes)
    grants.key_scopes_allowed(principal, cleaned)
    secret, prefix = new_api_key()
    with transaction(conn):
        scope = resolve_grid(conn, grid)
        grants.scope_allowed(principal, scope["path"] if scope else None)
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
        grants.manageable(principal, key, "API key")
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
            reason=reason,
        )
    return key, secret


def get_key(conn: Connection, ref: int | str) -> dict[str, Any]:
    """One API key by id or prefix (never its hash); 404 when missing."""
    row = conn.execute(sql.GET_KEY, {"id": decimal_id(ref), "prefix": str(ref)}).mappings().first()
    if row is None:
        raise NotFound(f"API key {ref} does not exist.", key=str(ref))
    return dict(row)


def list_keys(
    conn: Connection,
    include_revoked: bool = False,
    limit: int = 100,
    offset: int = 0,
    *,
    principal: Principal | None = None,
) -> list[dict[str, Any]]:
    """API keys, newest first: all of them, or those bound inside the caller's subtree."""
    scope = None if principal is None or principal.is_admin else principal.scope_filter()
    rows = conn.execute(
        sql.LIST_KEYS,
        {"include_revoked": include_revoked, "limit": limit, "offset": offset, "scope": scope},
    ).mappings()
    return [dict(r) for r in rows]


def revoke_key(
    conn: Connection,
    principal: Principal | None,
    ref: int | str,
    ip: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Revoke an API key at once (idempotent)."""
    with transaction(conn):
        key = get_key(conn, ref)
        grants.manageable(principal, key, "API key")
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
                reason=reason,
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
