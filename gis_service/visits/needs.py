"""Where a service need raised on a visit goes.

A need is kept on the visit (``visits.service_need``). With a service type of
layers/services.yaml it also becomes a service order of the 三单制 (居民点单 → 社区派单 →
党员接单) for the person under care, at their household, in the visit's transaction; its
reference is kept in ``order``. Without one (the visitor could not tell which service fits),
it stays ``raised`` on the visit, where the community finds it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import Catalog
from gis_service.errors import Invalid
from gis_service.orders.schemas import OrderIn
from gis_service.orders.service import write_order
from gis_service.visits import sql


def raise_service_need(
    conn: Connection,
    *,
    catalog: Catalog,
    tz: str,
    visit_id: int,
    person: Any,
    where: tuple[float, float] | None,
    note: str,
    service_type: str | None,
    principal: Principal,
    ip: str | None,
) -> dict[str, Any]:
    """Raise a service need for a person under care in the visit's transaction (an order when
    the service type is known); returns what was recorded on the visit."""
    order = None
    if service_type:
        if where is None:
            raise Invalid(
                "A service order raised on a visit needs a place: send lon and lat, or visit "
                "a household that has a location.",
                code="order_needs_location",
            )
        placed = write_order(
            conn,
            catalog,
            principal,
            OrderIn(
                service_type=service_type,
                lon=where[0],
                lat=where[1],
                description=note,
                address=person.address,
                resident_name=person.name,
            ),
            tz,
            ip,
            {"visit_id": visit_id},
        )
        order = {"id": placed["id"], "public_code": placed["public_code"]}
    need = {
        "note": note,
        "status": "ordered" if order else "raised",
        "service_type": service_type,
        "person_id": person.id,
        "grid_id": person.grid_id,
        "raised_by": principal.name,
        "order": order,
    }
    conn.execute(
        sql.SET_SERVICE_NEED, {"id": visit_id, "need": json.dumps(need, ensure_ascii=False)}
    )
    return need
