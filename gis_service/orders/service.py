"""Service orders and their registries with no HTTP: 点单 (routed to a grid like a report),
the moves of the order machine, lists as GeoJSON, volunteers and partner units, and the
volunteer-service figures per community. Each write is one transaction with its audit row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gis_service.assessment.service import rate, table
from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.auth.visibility import private_params
from gis_service.cases.machine import check_move
from gis_service.catalog.schemas import Catalog
from gis_service.db.transaction import transaction
from gis_service.errors import Conflict, Forbidden, Invalid, NotFound
from gis_service.geo.datums import Datum, to_wgs84
from gis_service.orders import sql
from gis_service.orders.schemas import (
    OrderActionIn,
    OrderIn,
    PartnerIn,
    PartnerPatch,
    VolunteerIn,
    VolunteerPatch,
)
from gis_service.orders.workflow import ORDER_MACHINE, ORDER_STATUSES


def check_service(catalog: Catalog, code: str) -> None:
    """422 for a service type layers/services.yaml does not list."""
    if code not in catalog.services:
        raise Invalid(
            f"Unknown service {code!r}; layers/services.yaml lists them.",
            service_type=code,
            known=sorted(catalog.services),
        )


def place(
    conn: Connection,
    catalog: Catalog,
    principal: Principal,
    body: OrderIn,
    tz: str,
    ip: str | None,
) -> dict[str, Any]:
    """群众点单: route the order to the finest grid at its point."""
    if not principal.has("report"):
        raise Forbidden("This caller may not place service orders (scope 'report').")
    with transaction(conn):
        return write_order(conn, catalog, principal, body, tz, ip)


def write_order(
    conn: Connection,
    catalog: Catalog,
    principal: Principal,
    body: OrderIn,
    tz: str,
    ip: str | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of :func:`place` inside the caller's transaction (a visit places an order in
    its own); ``data`` goes into the order event (e.g. the visit it came from)."""
    check_service(catalog, body.service_type)
    lon, lat = (float(v) for v in to_wgs84(body.lon, body.lat, body.crs))
    row = conn.execute(
        sql.INSERT_ORDER,
        {
            "lon": lon,
            "lat": lat,
            "tz": tz,
            "service_type": body.service_type,
            "description": body.description,
            "address": body.address,
            "resident_name": body.resident_name,
            "resident_phone": body.resident_phone,
        },
    ).first()
    if row is None:
        raise Invalid("The point lies in no grid; check the coordinates and their crs.",
                      code="outside_grids")  # fmt: skip
    _event(conn, row.id, "order", None, "ordered", principal, body.description, data or {})
    after = {"service_type": body.service_type, "grid_id": row.grid_id, **(data or {})}
    record(conn, principal, "order.place", "service_order", row.id, None, after,
           row.grid_id, ip)  # fmt: skip
    return {"id": row.id, "public_code": row.public_code, "status": row.status,
            "version": row.version, "url": f"/api/v1/orders/{row.id}"}  # fmt: skip


def _event(
    conn: Connection,
    order_id: int,
    action: str,
    from_status: str | None,
    to_status: str | None,
    principal: Principal,
    note: str | None,
    data: dict[str, Any],
) -> None:
    conn.execute(
        sql.INSERT_EVENT,
        {
            "order_id": order_id,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "actor_name": principal.name,
            "note": note,
            "data": json.dumps(data, ensure_ascii=False, default=str),
        },
    )


def _assignee(conn: Connection, body: OrderActionIn, path: list[int]) -> dict[str, Any]:
    """The volunteer or partner an order is dispatched to; it must serve the order's area."""
    if (body.volunteer_id is None) == (body.partner_id is None):
        raise Invalid("dispatch needs volunteer_id or partner_id (one of them).")
    stmt, key = (
        (sql.VOLUNTEER, body.volunteer_id)
        if body.volunteer_id is not None
        else (sql.PARTNER, body.partner_id)
    )
    row = conn.execute(stmt, {"id": key}).first()
    what = "volunteer" if body.volunteer_id is not None else "partner unit"
    if row is None or not row.active:
        raise Invalid(f"No active {what} has the id {key}.")
    # The order's community (the second grid of its path, street first) must be theirs.
    community = path[1] if len(path) > 1 else (path[0] if path else None)
    if community not in (row.grid_path or ()):
        raise Invalid(
            f"The {what} {row.name} serves another community; dispatch within the order's "
            "community.",
            code="assignee_out_of_area",
        )
    return {
        "volunteer_id": body.volunteer_id,
        "partner_id": body.partner_id,
        "name": row.name,
    }


def act(
    conn: Connection, principal: Principal, order_id: int, body: OrderActionIn, ip: str | None
) -> dict[str, Any]:
    """One move of the order machine, compare-and-set on the order's version."""
    with transaction(conn):
        order = conn.execute(sql.LOCK_ORDER, {"id": order_id}).first()
        path = list(order.grid_path or ()) if order is not None else []
        if order is None or not principal.in_scope(path):
            raise NotFound(f"Service order {order_id} does not exist or is outside your scope.")
        move = ORDER_MACHINE.move(body.action)
        if not principal.can(move.scope, path):
            raise Forbidden(
                f"You may not '{body.action}' this order: it needs the '{move.scope}' scope.",
                needs_scope=move.scope,
            )
        check_move(ORDER_MACHINE, body.action, order.status, body.version, order.version,
                   f"Order {order.public_code}")  # fmt: skip
        cols: dict[str, Any] = {}
        data: dict[str, Any] = {}
        now: datetime = order.now
        if body.action == "dispatch":
            who = _assignee(conn, body, path)
            cols.update(volunteer_id=who["volunteer_id"], partner_id=who["partner_id"])
            cols["dispatched_at"] = now
            data["assignee"] = who
        elif body.action == "take":
            cols["taken_at"] = now
        elif body.action in ("decline", "cancel") and not body.note:
            raise Invalid(f"'{body.action}' needs a note saying why.")
        elif body.action == "decline":
            cols.update(volunteer_id=None, partner_id=None, dispatched_at=None)
        elif body.action == "finish":
            if body.hours is None:
                raise Invalid("finish needs hours: the time the service took (志愿服务时长).")
            cols.update(done_at=now, hours=body.hours)
            data["hours"] = body.hours
        elif body.action == "rate":
            if body.rating is None:
                raise Invalid("rate needs rating: satisfied, basically_satisfied, dissatisfied.")
            cols.update(rated_at=now, rating=body.rating)
            data["rating"] = body.rating
        elif body.action == "comment" and not body.note:
            raise Invalid("A comment needs a note.")
        to_status = ORDER_MACHINE.target(body.action, order.status)
        version = conn.execute(
            sql.update_order(list(cols)),
            {"status": to_status, "id": order.id, "version": order.version,
             **{f"c_{k}": v for k, v in cols.items()}},
        ).scalar_one()  # fmt: skip
        _event(conn, order.id, body.action, order.status, to_status, principal, body.note, data)
        record(conn, principal, f"order.{body.action}", "service_order", order.id,
               {"status": order.status, "version": order.version},
               {"status": to_status, "version": version, **data}, order.grid_id, ip)  # fmt: skip
    return {"id": order.id, "status": to_status, "status_name": ORDER_STATUSES[to_status],
            "version": version}  # fmt: skip


def orders(
    conn: Connection,
    principal: Principal,
    *,
    crs: Datum,
    status: str | None,
    grid: int | None,
    order_id: int | None,
    limit: int,
    offset: int,
) -> str:
    """Orders of the caller's scope as GeoJSON FeatureCollection text; with ``order_id``
    that one order, or NotFound."""
    row = conn.execute(
        sql.ORDER_FEATURES,
        {
            "scope": principal.scope_filter(),
            "status": status,
            "grid": grid,
            "id": order_id,
            "crs": crs.value,
            "limit": limit,
            "offset": offset,
            **private_params(principal),
        },
    ).one()
    if order_id is not None and not row.returned:
        raise NotFound(f"Service order {order_id} does not exist or is outside your scope.")
    return row.body


def _grid_in_scope(conn: Connection, principal: Principal, grid: int) -> Any:
    row = conn.execute(sql.GRID, {"id": grid}).first()
    if row is None or not principal.can("dispatch", list(row.path)):
        raise NotFound(f"Grid {grid} does not exist or is outside your scope.", grid=grid)
    return row


# The registries: their INSERT, audit name and where a new row is read back.
_REGISTRIES = {
    "volunteers": (sql.INSERT_VOLUNTEER, "volunteer", "/api/v1/volunteers"),
    "partner_units": (sql.INSERT_PARTNER, "partner_unit", "/api/v1/partners"),
}


def register(
    conn: Connection,
    principal: Principal,
    table: str,
    body: VolunteerIn | PartnerIn,
    ip: str | None,
) -> dict[str, Any]:
    """Register a volunteer or partner unit (共建单位) of a grid in the caller's scope."""
    insert, kind, url = _REGISTRIES[table]
    with transaction(conn):
        grid = _grid_in_scope(conn, principal, body.grid)
        new_id = conn.execute(
            insert,
            {**body.model_dump(exclude={"grid"}), "grid_id": grid.id, "grid_path": list(grid.path)},
        ).scalar()
        if new_id is None:  # ON CONFLICT (name) DO NOTHING of partner units
            raise Conflict(f"A partner unit is already called {body.name!r}.", code="name_taken")
        # phones stay out of the audit log, like every personal field
        record(conn, principal, f"{kind}.create", kind, new_id, None,
               body.model_dump(exclude={"phone", "contact_phone"}), grid.id, ip)  # fmt: skip
    return {"id": new_id, "url": f"{url}?id={new_id}"}


def patch(
    conn: Connection,
    principal: Principal,
    table: str,
    row_id: int,
    body: VolunteerPatch | PartnerPatch,
    ip: str | None,
) -> dict[str, Any]:
    """Change a volunteer or partner unit inside the caller's scope."""
    lookup = sql.VOLUNTEER if table == "volunteers" else sql.PARTNER
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise Invalid("Send at least one field to change.")
    with transaction(conn):
        row = conn.execute(lookup, {"id": row_id}).first()
        if row is None or not principal.can("dispatch", list(row.grid_path or ())):
            raise NotFound(f"No {table[:-1]} {row_id} in your scope.")
        conn.execute(sql.patch_statement(table, sorted(changes)), {**changes, "id": row_id})
        private = ("phone", "contact_phone")
        after = {k: v for k, v in changes.items() if k not in private}
        record(conn, principal, f"{table[:-1]}.update", table[:-1], row_id, None, after, None,
               ip)  # fmt: skip
    return {"id": row_id, "changed": sorted(changes)}


def _listing(rows: list[Any]) -> dict[str, Any]:
    items = [dict(r._mapping) for r in rows]
    for item in items:
        if "hours" in item:
            item["hours"] = float(item["hours"])
    return {"number_returned": len(items), "items": items}


def volunteers(
    conn: Connection,
    principal: Principal,
    skill: str | None,
    party: bool | None,
    vid: int | None,
    grid: int | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Volunteers of the caller's scope (of a grid's subtree) with done orders and hours."""
    rows = conn.execute(
        sql.VOLUNTEERS,
        {"scope": principal.scope_filter(), "skill": skill, "party": party, "id": vid,
         "grid": grid, "limit": limit, "offset": offset, **private_params(principal)},
    ).all()  # fmt: skip
    return _listing(rows)


def partners(
    conn: Connection, principal: Principal, offer: str | None, pid: int | None,
    grid: int | None, limit: int, offset: int,
) -> dict[str, Any]:  # fmt: skip
    """Partner units of the caller's scope (of a grid's subtree) and what they offer."""
    rows = conn.execute(
        sql.PARTNERS,
        {"scope": principal.scope_filter(), "offer": offer, "id": pid, "grid": grid,
         "limit": limit, "offset": offset},
    ).all()  # fmt: skip
    return _listing(rows)


def volunteer_stats(
    conn: Connection,
    since: datetime,
    until: datetime,
    level: str,
    scope: list[int] | None,
    grid: int | None,
) -> list[dict[str, Any]]:
    """志愿服务 per area: orders, done, hours, volunteers, party members, satisfaction."""
    result = conn.execute(
        sql.VOLUNTEER_STATS,
        {"since": since, "until": until, "level": level, "scope": scope, "grid": grid},
    )

    def shape(item: dict[str, Any]) -> dict[str, Any]:
        item["hours"] = float(item["hours"])
        item["satisfaction_rate"] = rate(item["satisfied"], item["rated"])
        return item

    return table(result, shape)
