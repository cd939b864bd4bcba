"""Duties today and the offline pack, with no HTTP: they gather what the other domains give
(my hazard tasks, people under care due for a visit, my patrols) for one field worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.care import service as care
from gis_service.catalog.schemas import Catalog
from gis_service.field import sql
from gis_service.geo.datums import Datum
from gis_service.hazards.supervision import my_tasks
from gis_service.patrols import service as patrols

# A phone keeps at most this much of an area offline (a grid leader's grid has tens).
PACK_LIMIT = 2000


def _tasks(
    conn: Connection, principal: Principal, near: tuple[float, float] | None, crs: Datum
) -> list[dict[str, Any]]:
    if principal.person_id is None:
        return []
    return my_tasks(conn, principal.person_id, near, crs, 200)["features"]


def duties(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    near: tuple[float, float] | None,
    crs: Datum,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """One screen of the day: hazards assigned to me (nearest first), people of my area due
    for a visit today or overdue (nearest first; audited), and my patrols of the day."""
    due = care.people(
        conn,
        principal,
        catalog,
        grid=None,
        categories=None,
        due=["overdue", "today"],
        q=None,
        near=near,
        crs=crs,
        limit=200,
        offset=0,
        ip=ip,
        via=via,
    )
    items = due["items"]
    return {
        "date": datetime.now(UTC).isoformat(),
        "linked_person": principal.person_id is not None,
        "tasks": _tasks(conn, principal, near, crs),
        "visits": {
            "today": [p for p in items if p["due_status"] == "today"],
            "overdue": [p for p in items if p["due_status"] == "overdue"],
            "number_matched": due["number_matched"],
        },
        "patrol": patrols.today(conn, principal),
    }


def offline_pack(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    crs: Datum,
    ip: str | None,
    via: str,
) -> str:
    """What the phone keeps to work offline: my scope's micro-grids (tinted by due visits),
    its people under care (audited), my open tasks, and the categories and needs lists."""
    scope = principal.scope_filter()
    body, count = conn.execute(
        sql.MICRO_GRIDS, {"scope": scope, "limit": PACK_LIMIT, "crs": crs.value}
    ).one()
    people = care.people(
        conn,
        principal,
        catalog,
        grid=None,
        categories=None,
        due=None,
        q=None,
        near=None,
        crs=crs,
        limit=PACK_LIMIT,
        offset=0,
        ip=ip,
        via=via,
    )
    grid = None
    if principal.grid_id is not None:
        row = conn.execute(sql.SCOPE_GRID, {"id": principal.grid_id}).first()
        if row is not None:
            grid = {"id": row.id, "code": row.code, "name": row.name, "level": row.level}
    head = {
        "generated_at": datetime.now(UTC).isoformat(),
        "crs": crs.value,
        "user": {"id": principal.id, "name": principal.name, "role": principal.role},
        "grid": grid,
        "truncated": count >= PACK_LIMIT or people["number_matched"] > PACK_LIMIT,
        "people": people["items"],
        "tasks": _tasks(conn, principal, None, crs),
        **care.categories_json(catalog),
    }
    text = care.dump(head)
    # The micro-grids arrive as GeoJSON text from PostgreSQL: spliced in, never parsed.
    return text[:-1] + f', "micro_grids": {body}}}'
