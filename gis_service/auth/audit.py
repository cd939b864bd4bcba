"""The audit log: every write records who, what (before and after), when and from where.

``record`` runs on the caller's connection, inside the caller's transaction, so the audit row
and the change it describes commit or roll back together.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from gis_service.auth import sql
from gis_service.auth.principal import Principal

# Never copied into the audit log, whatever object is written.
REDACTED_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "key_hash", "csrf"})


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return "<binary>"
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def _clean(snapshot: dict[str, Any] | None) -> str | None:
    if snapshot is None:
        return None
    cleaned = {k: ("<redacted>" if k in REDACTED_KEYS else v) for k, v in snapshot.items()}
    return json.dumps(cleaned, default=_default, ensure_ascii=False)


def _who(principal: Principal | None) -> tuple[str, int | None, str]:
    if principal is None:
        return "system", None, "system"
    return principal.kind, principal.id, principal.audit_name()


def record(
    conn: Connection,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    grid_id: int | None,
    ip: str | None,
    reason: str | None = None,
) -> int:
    """Insert one audit row in the caller's transaction and return its id.

    ``principal`` None means the system itself (a CLI command run on the server); ``reason``
    is why the change was made, in its author's words.
    """
    kind, pid, name = _who(principal)
    return conn.execute(
        sql.INSERT_AUDIT,
        {
            "kind": kind,
            "principal_id": pid,
            "name": name,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "before": _clean(before),
            "after": _clean(after),
            "grid_id": grid_id,
            "ip": ip,
            "reason": reason,
        },
    ).scalar_one()


def record_reads(
    conn: Connection,
    principal: Principal | None,
    action: str,
    object_type: str,
    reads: list[tuple[int, int | None]],
    context: dict[str, Any] | None,
    ip: str | None,
) -> int:
    """One audit row per object read, ``reads`` being (object id, grid id) pairs, in the
    caller's transaction (a read of personal data leaves its trace, as a write does)."""
    if not reads:
        return 0
    kind, pid, name = _who(principal)
    done = conn.execute(
        sql.INSERT_AUDIT_READS,
        {
            "kind": kind,
            "principal_id": pid,
            "name": name,
            "action": action,
            "object_type": object_type,
            "ids": [r[0] for r in reads],
            "grid_ids": [r[1] for r in reads],
            "after": _clean(context),
            "ip": ip,
        },
    )
    return done.rowcount
