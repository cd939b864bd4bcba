"""Visits with no HTTP: record one (scope, original time, photos, a hazard or service need
raised in the same transaction, the person's last visit moved forward, the audit row and the
idempotency key), and read them back (audited: a visit names the person visited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row

from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.care import sql as care_sql
from gis_service.care.service import audit_reads
from gis_service.catalog.schemas import Catalog
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import Forbidden, Invalid, NotFound
from gis_service.geo.datums import Datum, to_wgs84
from gis_service.hazards import photos as photo_store
from gis_service.hazards import reporting
from gis_service.hazards.photos import Photo
from gis_service.hazards.schemas import ReportIn
from gis_service.hazards.supervision import scoped_grid
from gis_service.idempotency import earlier, fingerprint, remember
from gis_service.instants import check_recorded
from gis_service.orders.service import check_service
from gis_service.visits import needs, sql
from gis_service.visits.schemas import VisitIn

OPERATION = "visit.create"
PHOTO_OWNER = "visits"


@dataclass
class VisitResult:
    """A visit recorded (or the first one, for a retry), and what it raised."""

    visit_id: int
    created: bool
    hazard_id: int | None = None
    photo_ids: list[str] = field(default_factory=list)


class _KeyTaken(Exception):
    """A concurrent request with the same key committed first: answer with its result."""


def _check(body: VisitIn, catalog: Catalog, settings: Settings) -> datetime:
    """The visit's time, and 422 for needs or a hazard category the catalog does not know."""
    known = {n.code for n in catalog.care.needs}
    unknown = [n for n in body.needs if n not in known]
    if unknown:
        raise Invalid(
            f"Unknown needs: {', '.join(unknown)}; GET /api/v1/care/categories lists them.",
            needs=unknown,
            known=sorted(known),
        )
    if body.service_type:
        check_service(catalog, body.service_type)
    if body.hazard_category and body.hazard_category not in catalog.hazard_categories:
        raise Invalid(
            f"Unknown hazard category {body.hazard_category!r}.",
            hazard_category=body.hazard_category,
        )
    now = datetime.now(UTC)
    at = body.visited_at or now
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        check_recorded(at, now, timedelta(days=settings.field_max_age_days))
    except ValueError as exc:
        raise Invalid(f"visited_at: {exc}.", code="bad_recorded_time") from None
    return at


def _person(conn: Connection, principal: Principal, person_id: int) -> Row:
    row = conn.execute(care_sql.PERSON_PLACE, {"id": person_id}).first()
    if row is None:
        raise NotFound(f"No person under care has the id {person_id}.", id=person_id)
    if not principal.can("write", list(row.grid_path)):
        raise Forbidden(
            f"Person {person_id} lives outside your area: visits are logged by the staff of "
            "the grid that covers the household.",
            code="outside_scope",
            id=person_id,
        )
    return row


def _raise_hazard(
    conn: Connection,
    settings: Settings,
    catalog: Catalog,
    principal: Principal,
    body: VisitIn,
    where: tuple[float, float] | None,
    at: datetime,
    ip: str | None,
    written: list[Path],
) -> int:
    if where is None:
        raise Invalid(
            "A hazard raised on a visit needs a place: send lon and lat, or visit a household "
            "whose location is on record.",
            code="hazard_needs_location",
        )
    report = ReportIn(
        category=body.hazard_category,
        lon=where[0],
        lat=where[1],
        accuracy_m=body.accuracy_m,
        description=body.hazard_description,
        severity=body.hazard_severity,
        source="patrol",
        observed_at=at if body.visited_at else None,
        patrol_ref=body.patrol_ref,
    )
    result = reporting.write_report(
        conn,
        settings=settings,
        catalog=catalog,
        principal=principal,
        report=report,
        photos=[],
        ip=ip,
        written=written,
        event_data={"raised_on": "visit"},
    )
    return result.hazard_id


def record_visit(
    conn: Connection,
    *,
    settings: Settings,
    catalog: Catalog,
    principal: Principal,
    body: VisitIn,
    photos: list[Photo],
    ip: str | None,
    idempotency_key: str | None = None,
) -> VisitResult:
    """Record a visit in one transaction with its photos, the hazard and service need it
    raises, the person's last visit and the audit row; a retry (same caller, key and body)
    returns the first visit."""
    at = _check(body, catalog, settings)
    caller = principal.tag()
    fp = fingerprint(body.model_dump(mode="json"), [p.sha256 for p in photos], caller)
    written: list[Path] = []
    try:
        with transaction(conn):
            first = earlier(conn, caller, idempotency_key, OPERATION, fp)
            if first is not None:
                return VisitResult(int(first.object_id), False, **first.result)
            person = _person(conn, principal, body.person_id)
            where = None
            if body.lon is not None and body.lat is not None:
                where = tuple(float(v) for v in to_wgs84(body.lon, body.lat, body.crs))
            home = (person.lon, person.lat) if person.lon is not None else None
            hazard_id = None
            if body.hazard_category:
                hazard_id = _raise_hazard(
                    conn, settings, catalog, principal, body, where or home, at, ip, written
                )
            visit = conn.execute(
                sql.INSERT_VISIT,
                {
                    "person_id": person.id,
                    "household_id": person.household_id,
                    "grid_id": person.grid_id,
                    "grid_path": list(person.grid_path),
                    "user_id": principal.id if principal.kind == "user" else None,
                    "visitor_person_id": principal.person_id,
                    "visitor_name": principal.name,
                    "principal": caller,
                    "visited_at": at,
                    "lon": where[0] if where else None,
                    "lat": where[1] if where else None,
                    "accuracy": body.accuracy_m,
                    "findings": body.findings,
                    "needs": body.needs,
                    "hazard_id": hazard_id,
                    "service_need": None,
                    "patrol_ref": str(body.patrol_ref) if body.patrol_ref else None,
                },
            ).one()
            need = None
            if body.service_need:
                need = needs.raise_service_need(
                    conn,
                    catalog=catalog,
                    tz=settings.local_timezone,
                    visit_id=visit.id,
                    person=person,
                    where=home or where,
                    note=body.service_need,
                    service_type=body.service_type,
                    principal=principal,
                    ip=ip,
                )
            conn.execute(sql.TOUCH_PERSON, {"id": person.id, "visited_at": at})
            photo_ids, folders = photo_store.store(
                conn,
                settings,
                sql.INSERT_PHOTO,
                {"visit_id": visit.id},
                visit.id,
                photos,
                caller,
                PHOTO_OWNER,
            )
            written.extend(folders)
            record(
                conn,
                principal,
                "visit.create",
                "visit",
                visit.id,
                None,
                {
                    "person_id": person.id,
                    "visited_at": at,
                    "needs": body.needs,
                    "hazard_id": hazard_id,
                    "service_need": need,
                    "photos": photo_ids,
                },
                person.grid_id,
                ip,
            )
            result = {"hazard_id": hazard_id, "photo_ids": photo_ids}
            if not remember(
                conn, caller, idempotency_key, OPERATION, fp, "visit", visit.id, result
            ):
                raise _KeyTaken
    except _KeyTaken:
        photo_store.discard(written)
        with transaction(conn):
            first = earlier(conn, caller, idempotency_key, OPERATION, fp)
        assert first is not None
        return VisitResult(int(first.object_id), False, **first.result)
    except BaseException:
        photo_store.discard(written)
        raise
    return VisitResult(visit.id, True, hazard_id, photo_ids)


def visit_json(row: Row, catalog: Catalog) -> dict[str, Any]:
    """One visit as the API shows it (private: staff in scope only)."""
    names = {n.code: n.name_zh for n in catalog.care.needs}
    cats = {c.code: c.name_zh for c in catalog.care.categories}
    return {
        "id": row.id,
        "person": {
            "id": row.person_id,
            "name": row.person_name,
            "categories": list(row.categories),
            "category_names": [cats.get(c, c) for c in row.categories],
        },
        "household": {"id": row.household_id, "address": row.address},
        "grid": {"id": row.grid_id, "name": row.grid_name},
        "visitor": {"name": row.visitor_name, "person_id": row.visitor_person_id},
        "visited_at": row.visited_at.isoformat(),
        "received_at": row.received_at.isoformat(),
        "location": None if row.lon is None else [round(row.lon, 7), round(row.lat, 7)],
        "accuracy_m": row.accuracy_m,
        "findings": row.findings,
        "needs": list(row.needs),
        "need_names": [names.get(n, n) for n in row.needs],
        "hazard": None
        if row.hazard_id is None
        else {
            "id": row.hazard_id,
            "public_code": row.hazard_code,
            "url": f"/api/v1/hazards/{row.hazard_id}",
        },
        "service_need": row.service_need,
        "patrol_ref": str(row.patrol_ref) if row.patrol_ref else None,
        "photos": row.photos,
        "url": f"/api/v1/visits/{row.id}",
    }


def _audit(
    conn: Connection, principal: Principal, rows: list[Row], via: str, ip: str | None
) -> None:
    """A visit names the person visited: reading it is a read of their record."""
    audit_reads(
        conn,
        principal,
        [(r.person_id, r.grid_id) for r in rows],
        via,
        ip,
        {"visits": [r.id for r in rows][:200]},
    )


def get_visit(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    visit_id: int,
    crs: Datum,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """One visit, for staff whose scope covers it (404 otherwise); audited."""
    with transaction(conn):
        row = conn.execute(sql.VISIT, {"id": visit_id, "crs": crs.value}).first()
        if row is None or not principal.can("read_private", list(row.grid_path)):
            raise NotFound(f"No visit has the id {visit_id} in your area.", id=visit_id)
        _audit(conn, principal, [row], via, ip)
    return visit_json(row, catalog)


def list_visits(
    conn: Connection,
    principal: Principal,
    catalog: Catalog,
    *,
    grid: int | None,
    person: int | None,
    visitor: int | None,
    since: datetime | None,
    until: datetime | None,
    crs: Datum,
    limit: int,
    offset: int,
    ip: str | None,
    via: str,
) -> dict[str, Any]:
    """Visits of the caller's subtree, newest first; audited."""
    if not principal.has("read_private"):
        raise Forbidden("Visits name people under care: reading them needs read_private.")
    if grid is not None:
        scoped_grid(principal, grid, conn)
    params = {
        "scope": principal.scope_filter(),
        "grid": grid,
        "person": person,
        "visitor": visitor,
        "since": since,
        "until": until,
        "crs": crs.value,
        "limit": limit,
        "offset": offset,
    }
    with transaction(conn):
        rows = conn.execute(sql.VISITS, params).all()
        _audit(conn, principal, rows, via, ip)
    return {
        "number_matched": rows[0].matched if rows else 0,
        "number_returned": len(rows),
        "items": [visit_json(r, catalog) for r in rows],
    }


def photo_file(
    conn: Connection,
    settings: Settings,
    principal: Principal,
    visit_id: int,
    photo_id: str,
    variant: str,
) -> tuple[Path, str]:
    """The file of a visit photo, for staff whose scope covers the visit (404 otherwise)."""
    missing = NotFound(f"Visit {visit_id} has no photo {photo_id}.", photo_id=photo_id)
    try:
        photo = str(uuid.UUID(photo_id))
    except ValueError:
        raise missing from None
    row = conn.execute(sql.PHOTO, {"visit": visit_id, "photo": photo}).first()
    if row is None or not principal.can("read_private", list(row.grid_path)):
        raise missing
    path, media = photo_store.file_for(
        settings, visit_id, str(row.id), row.content_type, variant, PHOTO_OWNER
    )
    if not path.is_file():
        raise NotFound(f"The file of photo {photo_id} is missing on the server.")
    return path, media
