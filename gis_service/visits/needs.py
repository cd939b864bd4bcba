"""Where a service need raised on a visit goes (the hook).

The seeds' 三单制 (居民点单 → 社区派单 → 党员接单) belongs to issue 15's service orders, which
are not on main yet. Until they are, a need raised on a visit is kept on the visit itself
(``visits.service_need``, status ``raised``), where the community finds it. When service
orders exist, this one function creates an order and keeps its reference in ``order``;
nothing else of the visit changes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.visits import sql


def raise_service_need(
    conn: Connection,
    *,
    visit_id: int,
    person_id: int,
    grid_id: int | None,
    note: str,
    principal: Principal,
) -> dict[str, Any]:
    """Raise a service need for a person under care, in the visit's transaction; returns
    what was recorded on the visit."""
    need = {
        "note": note,
        "status": "raised",
        "person_id": person_id,
        "grid_id": grid_id,
        "raised_by": principal.name,
        "order": None,
    }
    conn.execute(
        sql.SET_SERVICE_NEED, {"id": visit_id, "need": json.dumps(need, ensure_ascii=False)}
    )
    return need
