"""Search with no HTTP: hazards by public code, grids by name or code, hazard addresses, and
people by name for staff whose scope covers them; each result with its 街道 › 社区 context."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.auth.visibility import private_params
from gis_service.search import sql


def _like_escaped(q: str) -> str:
    """The query with LIKE's wildcards taken literally (backslash is LIKE's escape)."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(conn: Connection, principal: Principal, q: str, limit: int) -> dict[str, Any]:
    """Everything matching ``q``, hazards first, then grids (exact names first), addresses
    and people; at most ``limit`` of each kind."""
    params = {
        "q": _like_escaped(q),
        "raw": q,
        "limit": limit,
        **private_params(principal),
    }
    rows = conn.execute(sql.SEARCH, params).mappings()
    items = [
        {
            "kind": r["kind"],
            "id": r["id"],
            "title": r["title"],
            "code": r["code"],
            "context": r["context"],
            "level": r["level"],
            "grid_id": r["grid_id"],
        }
        for r in rows
    ]
    return {"q": q, "items": items}
