"""The care registry with no HTTP: lists and records of people under care and households,
scoped to the caller's subtree and written to the audit log as they are read, and counts
(categories, coverage per grid, the overdue tint of micro-grids) that name nobody."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, Row

from gis_service.auth.audit import record_reads
from gis_service.auth.principal import Principal
from gis_service.care import sql
from gis_service.catalog.schemas import Catalog
from gis_service.db.transaction import transaction
from gis_service.errors import Forbidden, Invalid, NotFound
from gis_service.geo.areas import BBox, bbox_params
from gis_service.geo.datums import Datum
from gis_service.hazards.supervision import amap_marker_url, scoped_grid
from gis_service.visits import sql as visit_sql

DUE_STATES = ("overdue", "today", "later", "none")
DUE_NAMES_ZH = {"overdue": "逾期未访", "today": "今日待访", "later": "未到期", "none": "不定期"}
READ_ACTION = "care.read"


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def person_json(row: Row, catalog: Catalog) -> dict[str, Any]:
    """One roster row as the API shows it (private: only for staff in scope)."""
    names = {c.code: c.name_zh for c in catalog.care.categories}
    item: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "gender": row.gender,
        "birth_year": row.birth_year,
        "phone": row.phone,
        "categories": list(row.categories),
        "category_names": [names.get(c, c) for c in row.categories],
        "note": row.note,
        "care_since": _iso(row.care_since),
        "last_visit_at": _iso(row.last_visit_at),
        "visit_every_days": row.every_days,
        "next_due": _iso(row.next_due),
        "due_status": row.due_status,
        "due_status_name": DUE_NAMES_ZH[row.due_status],
        "days_overdue": max(0, row.days_overdue) if row.days_overdue is not None else None,
        "household": {
            "id": row.household_id,
            "code": row.household_code,
            "address": row.address,
            "phone": row.household_phone,
        },
        "grid": {"id": row.grid_id, "code": row.grid_code, "name": row.grid_name},
        "location": None,
        "url": f"/api/v1/care/people/{row.id}",
    }
    if row.lon is not None:
        item["location"] = [round(row.lon, 7), round(row.lat, 7)]
        item["navigation_url"] = amap_marker_url(
            row.gcj_lon, row.gcj_lat, f"{row.address} {row.name}"
        )
    if "distance_m" in row._fields and row.distance_m is not None:
        item["distance_m"] = round(float(row.distance_m), 1)
    return item


def _require_private(principal: Principal) -> None:
    if not principal.has("read_private"):
        raise Forbidden(
            "People under care are personal data: reading them needs the read_private scope.",
            needs_scope="read_private",
        )


def audit_reads(
    conn: Connection,
    principal: Principal,
    people: list[tuple[int, int | None]],
    via: str,
    ip: str | None,
    context: dict[str, Any] | None = None,
) -> None:
    """The audit trail of a read: one row per person (id, grid) whose record the caller
    received, saying through which request."""
    record_reads(
        conn, principal, READ_ACTION, "care_person", people, {"via": via, **(context or {})}, ip
    )


def _audit(
    conn: Connection,
    principal: Principal,
    rows: list[Row],
    via: str,
    ip: str | None,
    query: dict[str, Any] | None = None,
) -> None:
    audit_reads(
        conn,
        principal,
        [(r.id, r.grid_id) for r in rows],
        via,
        ip,
        {"query": query} if query else None,
    )


def _params(principal: Principal, grid: int | None, crs: Datum) -> dict[str, Any]:
    return {"scope": principal.scope_filter(), "grid": grid, "crs": crs.value}


def people(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    *,
    grid: int | None,
    categories: list[str] | None,
    due: list[str] | None,
    q: str | None,
    near: tuple[float, float] | None,
    crs: Datum,
    limit: int,
    offset: int,
    ip: str | None,
    via: str,
    household: int | None = None,
) -> dict[str, Any]:
    """People under care of the caller's subtree (or of ``grid`` in it), soonest due first
    or nearest first; each one returned is audited as read."""
    _require_private(principal)
    if grid is not None:
        scoped_grid(principal, grid, conn)
    params = {
        **_params(principal, grid, crs),
        "categories": categories,
        "due": due,
        "q": q,
        "household": household,
        "near_lon": near[0] if near else None,
        "near_lat": near[1] if near else None,
        "limit": limit,
        "offset": offset,
    }
    with transaction(conn):
        rows = conn.execute(sql.PEOPLE, params).all()
        _audit(
            conn,
            principal,
            rows,
            via,
            ip,
            {"grid": grid, "categories": categories, "due": due, "q": q, "offset": offset},
        )
    return {
        "number_matched": rows[0].matched if rows else 0,
        "number_returned": len(rows),
        "items": [person_json(r, catalog) for r in rows],
    }


def _person_row(conn: Connection, principal: Principal, person_id: int, crs: Datum) -> Row:
    row = conn.execute(sql.PERSON, {"id": person_id, "crs": crs.value}).first()
    # Outside the caller's scope reads as missing: a private record is not confirmed.
    if row is None or not principal.in_scope(list(row.grid_path)):
        raise NotFound(f"No person under care has the id {person_id} in your area.", id=person_id)
    return row


def person(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    person_id: int,
    crs: Datum,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """One person under care with their latest visits; audited as read."""
    _require_private(principal)
    with transaction(conn):
        row = _person_row(conn, principal, person_id, crs)
        visits = conn.execute(visit_sql.VISITS_OF_PERSON, {"person": person_id, "limit": 20}).all()
        _audit(conn, principal, [row], via, ip)
    item = person_json(row, catalog)
    item["visits"] = [
        {
            "id": v.id,
            "visited_at": _iso(v.visited_at),
            "visitor_name": v.visitor_name,
            "findings": v.findings,
            "needs": list(v.needs),
            "hazard_id": v.hazard_id,
            "photos": v.photos,
            "url": f"/api/v1/visits/{v.id}",
        }
        for v in visits
    ]
    return item


def households(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    *,
    grid: int | None,
    q: str | None,
    crs: Datum,
    limit: int,
    offset: int,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """Households of the subtree with their people under care; each person is audited."""
    _require_private(principal)
    if grid is not None:
        scoped_grid(principal, grid, conn)
    params = {**_params(principal, grid, crs), "q": q, "limit": limit, "offset": offset}
    with transaction(conn):
        found = conn.execute(sql.HOUSEHOLDS, params).all()
        # The page's heads and people in two statements, not two per household.
        ids = {"ids": [h.household_id for h in found], "crs": crs.value}
        heads = {r.id: r for r in conn.execute(sql.HOUSEHOLD, ids)}
        members: dict[int, list[Row]] = {h.household_id: [] for h in found}
        read = conn.execute(sql.HOUSEHOLD_PEOPLE, ids).all()
        for person in read:
            members[person.household_id].append(person)
        items = [
            _household_json(heads[h.household_id], members[h.household_id], catalog) for h in found
        ]
        _audit(conn, principal, read, via, ip, {"grid": grid, "q": q, "offset": offset})
    return {
        "number_matched": found[0].matched if found else 0,
        "number_returned": len(items),
        "items": items,
    }


def _household_json(head: Row, members: list[Row], catalog: Catalog) -> dict[str, Any]:
    return {
        "id": head.id,
        "code": head.code,
        "address": head.address,
        "phone": head.phone,
        "grid": {"id": head.grid_id, "code": head.grid_code, "name": head.grid_name},
        "location": None if head.lon is None else [round(head.lon, 7), round(head.lat, 7)],
        "attributes": head.attributes,
        "people": [person_json(m, catalog) for m in members],
        "url": f"/api/v1/care/households/{head.id}",
    }


def household(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    household_id: int,
    crs: Datum,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """One household with its people under care; audited as read."""
    _require_private(principal)
    with transaction(conn):
        ids = {"ids": [household_id], "crs": crs.value}
        head = conn.execute(sql.HOUSEHOLD, ids).first()
        if head is None or not principal.in_scope(list(head.grid_path)):
            raise NotFound(f"No household has the id {household_id} in your area.", id=household_id)
        members = conn.execute(sql.HOUSEHOLD_PEOPLE, ids).all()
        _audit(conn, principal, members, via, ip)
    return _household_json(head, members, catalog)


def counts(conn: Connection, principal: Principal, grid: int | None) -> dict[str, Any]:
    """How many people of each category the subtree has, overdue and due today (no names)."""
    root = scoped_grid(principal, grid, conn)
    rows = conn.execute(sql.COUNTS, {"scope": principal.scope_filter(), "grid": grid}).all()
    return {
        "grid": root,
        "categories": [
            {
                "code": r.code,
                "name": r.name_zh,
                "visit_every_days": r.visit_every_days,
                "people": r.people,
                "overdue": r.overdue,
                "due_today": r.due_today,
            }
            for r in rows
        ],
    }


def parse_month(raw: str | None, today: date) -> date | None:
    """'YYYY-MM' → its first day; None for the current month; 422 when malformed or far."""
    if raw is None:
        return None
    try:
        year, month = (int(x) for x in raw.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise Invalid("month must look like YYYY-MM, e.g. 2026-11.", month=raw) from None
    if first < date(2000, 1, 1) or first > today:
        raise Invalid(
            f"month {raw} is outside 2000-01 … this month; coverage is counted for months "
            "that have begun.",
            month=raw,
        )
    return first


def coverage(
    conn: Connection, principal: Principal, grid: int | None, first_day: date | None
) -> dict[str, Any]:
    """Visit coverage per child grid for a month (counts only): people, visited on time,
    visited at all, visits, overdue now and due today; with the total of the grid."""
    root = scoped_grid(principal, grid, conn)
    brief = conn.execute(sql.GRID_BRIEF, {"id": root}).first() if root is not None else None
    rows = conn.execute(sql.COVERAGE, {"grid": root, "first_day": first_day}).all()
    total = {k: 0 for k in ("people", "on_time", "visited", "visits", "overdue", "due_today")}
    items = []
    for r in rows:
        item = {
            "id": r.id,
            "code": r.code,
            "name": r.name,
            "level": r.level,
            "people": r.people,
            "on_time": r.on_time,
            "visited": r.visited,
            "visits": int(r.visits),
            "overdue": r.overdue,
            "due_today": r.due_today,
            "on_time_pct": round(100.0 * r.on_time / r.people, 1) if r.people else None,
        }
        for k in total:
            total[k] += item[k]
        items.append(item)
    total_pct = round(100.0 * total["on_time"] / total["people"], 1) if total["people"] else None
    month = rows[0].first_day if rows else first_day
    return {
        "grid": {"id": brief.id, "code": brief.code, "name": brief.name, "level": brief.level}
        if brief
        else {"id": None, "code": None, "name": "全辖区", "level": None},
        "month": month.strftime("%Y-%m") if month else None,
        "definition": "on_time: people whose next-due day never passed without a visit during "
        "the month (up to now); visited: people visited at least once in the month.",
        "total": {**total, "on_time_pct": total_pct},
        "grids": items,
    }


def overdue_map(
    conn: Connection, principal: Principal, grid: int | None, bbox: BBox | None, crs: Datum
) -> str:
    """Micro-grids of the subtree holding people under care, with counts (no names), as a
    GeoJSON FeatureCollection built by PostgreSQL: the map tints them by overdue visits."""
    scoped_grid(principal, grid, conn)
    params = {
        **_params(principal, grid, crs),
        **bbox_params(bbox),
        "limit": 5000,
        "offset": 0,
    }
    body = conn.execute(sql.OVERDUE_MAP, params).scalar_one()
    return body


def categories_json(catalog: Catalog) -> dict[str, Any]:
    """The categories under care with their visit frequency, and the tick list of needs."""
    return {
        "categories": [
            {
                "code": c.code,
                "name": c.name_zh,
                "name_en": c.name_en,
                "visit_every_days": c.visit_every_days,
                "aliases": list(c.aliases),
            }
            for c in catalog.care.categories
        ],
        "needs": [{"code": n.code, "name": n.name_zh} for n in catalog.care.needs],
    }


def dump(value: Any) -> str:
    """JSON text with Chinese kept readable."""
    return json.dumps(value, ensure_ascii=False, default=_iso)
