"""Check the credentials a caller presents: an API key, or a session or bearer token.

Each check is one lookup by the secret's SHA-256 digest; ``last_used_at`` is written at most
once a minute per key or token, so ordinary reads stay read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection

from gis_service.auth import sql
from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLE_SCOPES
from gis_service.auth.tokens import MAX_SECRET_LENGTH, digest
from gis_service.clock import DATABASE_CLOCK, Clock
from gis_service.db.transaction import transaction
from gis_service.errors import Unauthorized

# last_used_at is written at most this often per token or key, so reads stay read-only.
TOUCH_EVERY_SECONDS = 60


def _scope_fields(row: Any) -> dict[str, Any]:
    path = tuple(int(x) for x in (row.scope_path or ()))
    ids = frozenset(int(x) for x in (row.scope_ids or ()))
    grid_id = row.scope_grid_id if row.scope_grid_id is not None else row.grid_id
    return {"grid_id": grid_id, "grid_path": path, "scope_ids": ids}


def _touch(conn: Connection, statement: Any, row_id: int, ip: str | None) -> None:
    conn.execute(statement, {"id": row_id, "ip": ip, "every": TOUCH_EVERY_SECONDS})


def _stale(last_used_at: datetime | None) -> bool:
    """True when last_used_at is due to be written again (the UPDATE checks once more)."""
    if last_used_at is None:
        return True
    return (datetime.now(UTC) - last_used_at).total_seconds() >= TOUCH_EVERY_SECONDS


def authenticate_api_key(conn: Connection, raw_key: str, ip: str | None) -> Principal:
    """The principal of an API key; 401 when it is unknown or revoked."""
    if not raw_key or len(raw_key) > MAX_SECRET_LENGTH:
        raise Unauthorized("The API key is not valid.")
    with transaction(conn):
        row = conn.execute(sql.KEY_PRINCIPAL, {"hash": digest(raw_key)}).first()
        if row is None:
            raise Unauthorized("The API key is not valid or has been revoked.")
        if _stale(row.last_used_at):
            _touch(conn, sql.TOUCH_KEY, row.id, ip)
    return Principal(
        kind="api_key",
        id=row.id,
        name=row.name,
        role=None,
        scopes=frozenset(row.scopes),
        person_id=None,
        via="api_key",
        **_scope_fields(row),
    )


def authenticate_token(
    conn: Connection,
    raw: str,
    kind: Literal["session", "bearer"],
    ip: str | None,
    clock: Clock = DATABASE_CLOCK,
) -> tuple[Principal, bytes | None] | None:
    """The user principal of a session or bearer token unexpired by the clock's now and its
    CSRF digest, or None."""
    if not raw or len(raw) > MAX_SECRET_LENGTH:
        return None
    with transaction(conn):
        row = conn.execute(
            sql.TOKEN_PRINCIPAL, {"hash": digest(raw), "kind": kind, "now": clock.now()}
        ).first()
        if row is None:
            return None
        if _stale(row.last_used_at):
            _touch(conn, sql.TOUCH_TOKEN, row.token_id, ip)
    principal = Principal(
        kind="user",
        id=row.id,
        name=row.display_name,
        role=row.role,
        scopes=ROLE_SCOPES[row.role],
        person_id=row.person_id,
        token_id=row.token_id,
        via=kind,
        **_scope_fields(row),
    )
    return principal, (bytes(row.csrf_hash) if row.csrf_hash is not None else None)
