"""Hazards with no HTTP: reads (lists, one hazard with its history), reports with routing,
snapping and duplicate suggestions, the moves of the closed loop with the one permission
rule, overdue work, statistics and a field worker's tasks."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Row, text

from gis_service.auth.audit import record
from gis_service.auth.deps import Principal
from gis_service.auth.visibility import private_params
from gis_service.config import Settings
from gis_service.deps import BBox, Near
from gis_service.errors import ApiError, forbidden, invalid, not_found, unauthorized
from gis_service.geo.datums import Datum, to_wgs84
from gis_service.hazards import photos as photo_store
from gis_service.hazards import sql
from gis_service.hazards.models import CLOSED_STATUSES, STATUS_NAMES_ZH
from gis_service.hazards.photos import Photo
from gis_service.hazards.schemas import ActionIn, ReportIn
from gis_service.hazards.workflow import MOVES, allowed_actions, is_allowed, target_status
from gis_service.layers.schemas import Catalog, HazardCategoryDef


@dataclass(frozen=True)
class HazardFilter:
    """What a hazard list may be filtered by; None switches a filter off."""

    statuses: list[str] | None = None
    categories: list[str] | None = None
    grid: int | None = None
    bbox: BBox | None = None
    near: Near | None = None
    since: datetime | None = None
    until: datetime | None = None
    overdue: bool | None = None

    def as_params(self) -> dict[str, Any]:
        """Bound parameters for the list statements."""
        box = (
            self.bbox.as_params() if self.bbox else dict.fromkeys(("minx", "miny", "maxx", "maxy"))
        )
        near = self.near
        return {
            "statuses": self.statuses,
            "categories": self.categories,
            "grid": self.grid,
            **box,
            "near_lon": near.lon if near else None,
            "near_lat": near.lat if near else None,
            "radius": near.radius_m if near else None,
            "since": self.since,
            "until": self.until,
            "overdue": self.overdue,
        }


def list_params(flt: HazardFilter, crs: Datum) -> dict[str, Any]:
    """Parameters for HAZARD_LIST / HAZARD_LIST_CSV."""
    return {**flt.as_params(), "crs": crs.value}


def hazard_feature_versioned(
    conn: Connection, hazard_id: int, principal: Principal, crs: Datum = Datum.wgs84
) -> tuple[str, int] | None:
    """One hazard as a GeoJSON Feature text with history and photos, and its version; the
    reporter and the history's actors and notes only for those who may read them."""
    params = {"id": hazard_id, "crs": crs.value, **private_params(principal)}
    row = conn.execute(sql.HAZARD_FEATURE_V, params).first()
    return None if row is None else (row[0], int(row[1]))


def etag(version: int) -> str:
    """The ETag of a hazard version (strong: the version names exactly one state)."""
    return f'"{version}"'


def parse_if_match(raw: str | None) -> int | None:
    """The version named by an If-Match header (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    if raw is None or not raw.strip():
        return None
    value = raw.split(",")[0].strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    try:
        version = int(value)
    except ValueError as exc:
        raise ApiError(
            400,
            "bad_if_match",
            f'If-Match must be the ETag of GET /api/v1/hazards/{{id}}, such as "3"; got {raw!r}.',
            {"if_match": raw},
        ) from exc
    if version < 1:
        raise ApiError(400, "bad_if_match", "If-Match names no version of this hazard.")
    return version


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """One transaction on the request's connection (the principal lookup left it idle)."""
    if not conn.in_transaction():
        with conn.begin():
            yield conn
        return
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def principal_tag(principal: Principal) -> str:
    """How a report records its submitter: 'user:12', 'api_key:3' or 'anonymous'."""
    return principal.kind if principal.id is None else f"{principal.kind}:{principal.id}"


def may_read_private(principal: Principal, grid_path: list[int] | tuple[int, ...] | None) -> bool:
    """Reporter contact and original photos: read_private inside the principal's subtree."""
    return principal.can("read_private", grid_path)


# ---- the one permission rule ------------------------------------------------------------------
def authorize_move(principal: Principal, hazard: Any, action: str) -> None:
    """May ``principal`` make ``action`` on ``hazard``? 401/403 if not; THE rule, used by every
    route and by the list of moves offered to a caller.

    - Decisions of the community (accept, reject, dispatch, verify, close, escalate, reopen,
      mark a duplicate) need the ``dispatch`` scope inside the caller's grid subtree: admins and
      street staff everywhere below them, community staff in their community.
    - The handler's own work (start, resolve, comment) needs ``write`` inside the subtree, or
      the hazard assigned to the caller's person: grid leaders and field staff.
    - The handler may also blow the whistle (escalate) on a case assigned to them.
    - Nobody verifies their own work (admins excepted).
    """
    if not principal.authenticated:
        raise unauthorized("Log in to work on hazards.")
    move = MOVES[action]
    path = list(hazard.grid_path or ())
    assigned = principal.person_id is not None and hazard.assignee_person_id == principal.person_id
    if move.scope == "dispatch":
        ok = principal.can("dispatch", path)
        if not ok and action == "escalate":
            ok = assigned and principal.has("write")
    else:
        ok = principal.can_work_on(path, hazard.assignee_person_id, "write")
    if not ok:
        where = (
            "inside your grid subtree"
            if move.scope == "dispatch"
            else "inside your grid subtree or assigned to you"
        )
        raise forbidden(
            f"You may not '{action}' hazard {hazard.public_code}: it needs the "
            f"'{move.scope}' scope on a hazard {where}.",
            action=action,
            needs_scope=move.scope,
        )
    if action in ("verify", "fail_verification") and assigned and not principal.is_admin:
        raise forbidden(
            "Nobody verifies their own work: another person must verify this hazard.",
            action=action,
        )


def moves_for(principal: Principal, hazard: Any) -> list[str]:
    """The moves the state allows and this principal may make, for clients' buttons."""
    out = []
    for action in allowed_actions(hazard.status):
        try:
            authorize_move(principal, hazard, action)
        except ApiError:
            continue
        out.append(action)
    return out


# ---- reports ----------------------------------------------------------------------------------
@dataclass
class ReportResult:
    """What a report did: the hazard, whether it is new, the snap and the suggestions."""

    hazard_id: int
    created: bool
    facility: dict[str, Any] | None = None
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    photo_ids: list[str] = field(default_factory=list)


def _deg(metres: float, lat: float) -> float:
    """A radius in metres as degrees of longitude at ``lat`` (never smaller than in latitude),
    padded, for an index-friendly box around a point."""
    return metres / (111_320.0 * max(math.cos(math.radians(lat)), 0.01)) * 1.05 + 1e-6


def fingerprint(report: ReportIn, photos: list[Photo], submitter: str) -> str:
    """SHA-256 of what a report says (key excluded) and who sent it, to recognise a retry."""
    body = report.model_dump(mode="json", exclude={"idempotency_key"})
    body["photos"] = [p.sha256 for p in photos]
    body["submitter"] = submitter
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _category(catalog: Catalog, code: str) -> HazardCategoryDef:
    cat = catalog.hazard_categories.get(code)
    if cat is None:
        raise invalid(
            f"Unknown hazard category {code!r}; GET /api/v1/layers or /open311/v2/services.json "
            "lists them.",
            category=code,
            known=sorted(catalog.hazard_categories),
        )
    return cat


def _source(report: ReportIn, principal: Principal) -> str:
    if principal.kind == "anonymous":
        if report.source not in (None, "resident"):
            raise invalid(
                "An anonymous report is always a resident's; log in to report as patrol, "
                "camera, hotline or superior.",
                source=report.source,
            )
        return "resident"
    if report.source:
        return report.source
    return "patrol" if principal.kind == "user" and principal.person_id else "resident"


def _facility(
    conn: Connection, report: ReportIn, cat: HazardCategoryDef, lon: float, lat: float
) -> dict[str, Any] | None:
    """The facility named, checked; or the nearest one of the category's types (snapped)."""
    if report.facility_code:
        row = conn.execute(
            sql.FACILITY_BY_CODE, {"code": report.facility_code, "lon": lon, "lat": lat}
        ).first()
        if row is None:
            raise invalid(
                f"No facility has the code {report.facility_code!r}.",
                facility_code=report.facility_code,
            )
        if cat.facility_types and row.type_code not in cat.facility_types:
            raise invalid(
                f"Facility {row.code} is a {row.type_code}; a {cat.code} report concerns "
                f"{', '.join(cat.facility_types)}.",
                facility_code=row.code,
                facility_type=row.type_code,
                category_facility_types=list(cat.facility_types),
            )
        return {
            "id": row.id,
            "code": row.code,
            "type": row.type_code,
            "distance_m": float(row.distance_m),
            "snapped": False,
        }
    if not cat.facility_types or cat.snap_radius_m <= 0:
        return None
    row = conn.execute(
        sql.SNAP_FACILITY,
        {
            "lon": lon,
            "lat": lat,
            "types": list(cat.facility_types),
            "radius": cat.snap_radius_m,
            "deg": _deg(cat.snap_radius_m, lat),
        },
    ).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "code": row.code,
        "type": row.type_code,
        "distance_m": float(row.distance_m),
        "snapped": True,
        "snap_radius_m": cat.snap_radius_m,
    }


def duplicate_suggestions(
    conn: Connection, category: str, radius_m: float, lon: float, lat: float, exclude: int | None
) -> list[dict[str, Any]]:
    """Open hazards of ``category`` within ``radius_m`` of a WGS84 point, nearest first."""
    rows = conn.execute(
        sql.DUPLICATE_SUGGESTIONS,
        {
            "category": category,
            "lon": lon,
            "lat": lat,
            "radius": radius_m,
            "deg": _deg(radius_m, lat),
            "exclude": exclude,
        },
    ).all()
    return [
        {
            "id": r.id,
            "public_code": r.public_code,
            "status": r.status,
            "status_name": STATUS_NAMES_ZH.get(r.status, r.status),
            "description": r.description,
            "facility_code": r.facility_code,
            "reported_at": r.reported_at.isoformat(),
            "distance_m": float(r.distance_m),
            "url": f"/api/v1/hazards/{r.id}",
        }
        for r in rows
    ]


def _outside(conn: Connection, lon: float, lat: float, report: ReportIn) -> ApiError:
    """The 422 for a point in no grid, naming the nearest grid and the distance to it."""
    near = conn.execute(sql.NEAREST_GRID, {"lon": lon, "lat": lat}).first()
    point = {"lon": report.lon, "lat": report.lat, "crs": report.crs.value}
    if near is None:
        return ApiError(
            422,
            "outside_grids",
            "The point lies in no grid, and no grid exists yet to route it to.",
            {"point": point},
        )
    dist = float(near.distance_m)
    return ApiError(
        422,
        "outside_grids",
        f"The point lies outside every grid; the nearest is {near.name} ({near.code}, "
        f"{near.level}), {dist:,.0f} m away. Check the coordinates and their datum (crs).",
        {
            "point": point,
            "nearest_grid": {
                "id": near.id,
                "code": near.code,
                "name": near.name,
                "level": near.level,
            },
            "distance_m": dist,
        },
    )


def _replay(
    conn: Connection, key: str, fp: str, report: ReportIn, cat: HazardCategoryDef
) -> ReportResult | None:
    """The earlier hazard of a retried report; 422 when the key came with another body."""
    row = conn.execute(sql.SELECT_BY_IDEMPOTENCY_KEY, {"key": key}).first()
    if row is None:
        return None
    if row.idempotency_fingerprint != fp:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different report. A retry must "
            "send exactly the same report; a new report needs a new key.",
            {"idempotency_key": key, "hazard_id": row.id},
        )
    lon, lat = (float(v) for v in to_wgs84(report.lon, report.lat, report.crs))
    return ReportResult(
        hazard_id=row.id,
        created=False,
        duplicates=duplicate_suggestions(
            conn, cat.code, cat.duplicate_radius_m, lon, lat, exclude=row.id
        ),
    )


def report_hazard(
    conn: Connection,
    *,
    settings: Settings,
    catalog: Catalog,
    principal: Principal,
    report: ReportIn,
    photos: list[Photo],
    ip: str | None,
    idempotency_key: str | None = None,
    scope: str = "report",
    event_data: dict[str, Any] | None = None,
) -> ReportResult:
    """Route, snapshot, snap and store a report with its photos, event and audit row, in one
    transaction; a retry with the same idempotency key returns the first hazard.

    ``scope`` is the one the caller needs ('open311' for Open311 POSTs); ``event_data`` goes
    into the private data of the report event (e.g. an Open311 e-mail or media URL)."""
    if not principal.has(scope):
        raise forbidden(f"This caller may not submit hazard reports (scope '{scope}').")
    key = idempotency_key or report.idempotency_key
    if idempotency_key and report.idempotency_key and idempotency_key != report.idempotency_key:
        raise invalid(
            "The Idempotency-Key header and the idempotency_key field differ; send one.",
            header=idempotency_key,
            field=report.idempotency_key,
        )
    cat = _category(catalog, report.category)
    lon, lat = (float(v) for v in to_wgs84(report.lon, report.lat, report.crs))
    submitter = principal_tag(principal)
    fp = fingerprint(report, photos, submitter)
    source = _source(report, principal)
    written: list[Path] = []
    try:
        with write_transaction(conn):
            if key:
                replay = _replay(conn, key, fp, report, cat)
                if replay is not None:
                    return replay
            facility = _facility(conn, report, cat, lon, lat)
            hazard_id = conn.execute(
                sql.INSERT_HAZARD,
                {
                    "lon": lon,
                    "lat": lat,
                    "tz": settings.local_timezone,
                    "category": cat.code,
                    "description": report.description,
                    "severity": report.severity or cat.default_severity,
                    "source": source,
                    "accuracy": report.accuracy_m,
                    "address": report.address,
                    "facility_id": facility["id"] if facility else None,
                    "facility_code": facility["code"] if facility else None,
                    "department": cat.default_department,
                    "reporter_name": report.reporter_name
                    or (principal.name if principal.kind == "user" else None),
                    "reporter_phone": report.reporter_phone,
                    "key": key,
                    "fingerprint": fp if key else None,
                    "principal": submitter,
                },
            ).scalar()
            if hazard_id is None:
                if key:
                    # A concurrent request with the same key committed first: ON CONFLICT
                    # waited for it, so its row is visible now.
                    replay = _replay(conn, key, fp, report, cat)
                    if replay is not None:
                        return replay
                raise _outside(conn, lon, lat, report)
            hazard = conn.execute(
                text("SELECT id, grid_id, grid_path, status, version FROM hazards WHERE id = :id"),
                {"id": hazard_id},
            ).one()
            note = SOURCE_NOTES[source]
            event_id = _event(
                conn,
                hazard_id,
                "report",
                None,
                "reported",
                principal,
                note,
                {
                    "source": source,
                    "facility": facility,
                    "principal": submitter,
                    **(event_data or {}),
                },
            )
            photo_ids, written = _store_photos(
                conn, settings, hazard_id, event_id, photos, submitter
            )
            record(
                conn,
                principal,
                "hazard.report",
                "hazard",
                hazard_id,
                None,
                {
                    "category": cat.code,
                    "status": "reported",
                    "grid_id": hazard.grid_id,
                    "source": source,
                    "facility": facility["code"] if facility else None,
                    "photos": photo_ids,
                },
                hazard.grid_id,
                ip,
            )
            duplicates = duplicate_suggestions(
                conn, cat.code, cat.duplicate_radius_m, lon, lat, exclude=hazard_id
            )
    except BaseException:
        photo_store.discard(written)
        raise
    return ReportResult(hazard_id, True, facility, duplicates, photo_ids)


SOURCE_NOTES = {
    "patrol": "网格员巡查发现上报",
    "resident": "群众上报",
    "camera": "视频监控发现上报",
    "hotline": "12345热线转办",
    "superior": "上级交办",
}


def _event(
    conn: Connection,
    hazard_id: int,
    action: str,
    from_status: str | None,
    to_status: str | None,
    principal: Principal,
    note: str | None,
    data: dict[str, Any],
) -> int:
    """Append one step to the hazard's history; returns the event id."""
    return conn.execute(
        sql.INSERT_EVENT,
        {
            "hazard_id": hazard_id,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "actor_person_id": principal.person_id,
            "actor_name": principal.name,
            "note": note,
            "data": json.dumps(data, ensure_ascii=False, default=str),
        },
    ).scalar_one()


def _store_photos(
    conn: Connection,
    settings: Settings,
    hazard_id: int,
    event_id: int,
    photos: list[Photo],
    uploaded_by: str,
) -> tuple[list[str], list[Path]]:
    """Rows and files of a step's photos; the folders are returned for cleanup on rollback."""
    ids: list[str] = []
    folders: list[Path] = []
    try:
        for position, photo in enumerate(photos):
            conn.execute(
                sql.INSERT_PHOTO,
                {
                    "id": photo.id,
                    "hazard_id": hazard_id,
                    "event_id": event_id,
                    "position": position,
                    "content_type": photo.content_type,
                    "bytes": len(photo.original),
                    "width": photo.width,
                    "height": photo.height,
                    "sha256": photo.sha256,
                    "original_name": photo.original_name,
                    "had_exif": photo.had_exif,
                    "had_gps": photo.had_gps,
                    "uploaded_by": uploaded_by,
                },
            )
            folders.append(photo_store.write(settings, hazard_id, photo))
            ids.append(str(photo.id))
    except BaseException:
        photo_store.discard(folders)
        raise
    return ids, folders


# ---- moves ------------------------------------------------------------------------------------
@dataclass
class MoveResult:
    """A move that was made: the hazard, its new state and version, the event."""

    hazard_id: int
    action: str
    from_status: str
    to_status: str
    version: int
    event_id: int
    photo_ids: list[str]


def lookup_ref(conn: Connection, ref: str) -> Row | None:
    """A hazard by id or public code (codes are matched case-insensitively)."""
    as_id = int(ref) if ref.isdigit() and len(ref) < 19 else None
    return conn.execute(sql.HAZARD_REF, {"id": as_id, "code": ref.upper()}).first()


def _unused_fields(action: str, body: ActionIn) -> None:
    """422 for fields that the action does not take (a typo must not pass silently)."""
    takes = {
        "dispatch": {"assignee_person_id", "assignee_department"},
        "escalate": {"assignee_department"},
        "mark_duplicate": {"duplicate_of"},
    }.get(action, set())
    sent = {
        f
        for f in ("assignee_person_id", "assignee_department", "duplicate_of")
        if getattr(body, f) is not None
    }
    extra = sorted(sent - takes)
    if extra:
        raise invalid(
            f"'{action}' does not take {', '.join(extra)}.", action=action, unexpected=extra
        )


def _department(conn: Connection, code: str) -> Row:
    row = conn.execute(sql.DEPARTMENT, {"code": code}).first()
    if row is None or not row.active:
        raise invalid(f"No active department has the code {code!r}.", assignee_department=code)
    return row


def _escalation_target(conn: Connection, hazard: Row) -> dict[str, Any]:
    """The leader of the grid above the level the case sits at now (吹哨 upwards)."""
    last = conn.execute(
        text(
            """
            SELECT (data ->> 'to_grid_id')::bigint FROM hazard_events
             WHERE hazard_id = :id AND action = 'escalate' AND data ? 'to_grid_id'
             ORDER BY id DESC LIMIT 1
            """
        ),
        {"id": hazard.id},
    ).scalar()
    grid = last or hazard.grid_id
    for _ in range(8):  # deeper than any hierarchy: street › community › grid › micro-grid
        if grid is None:
            break
        parent = conn.execute(sql.PARENT_LEADER, {"grid": grid}).first()
        if parent is None:
            break
        if parent.person_id is not None and parent.person_id != hazard.assignee_person_id:
            return {
                "to_grid_id": parent.grid_id,
                "to_grid": f"{parent.name} ({parent.code})",
                "assignee_person_id": parent.person_id,
                "assignee_name": parent.person_name,
            }
        grid = parent.grid_id
    raise ApiError(
        409,
        "nowhere_to_escalate",
        "There is no grid leader above this case to escalate to; name a department with "
        "assignee_department (社区吹哨、部门报到).",
        {"hazard_id": hazard.id},
    )


def _changes(
    conn: Connection, settings: Settings, hazard: Row, body: ActionIn, principal: Principal
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns a move sets and the event data it records; 4xx for a bad move body."""
    action = body.action
    now: datetime = hazard.now
    cols: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if action in ("reject", "fail_verification", "reopen") and not body.note:
        raise invalid(f"'{action}' needs a note saying why.", action=action)
    if action == "accept":
        cols["accepted_at"] = now
    elif action == "dispatch":
        if body.assignee_person_id is None and body.assignee_department is None:
            raise invalid(
                "dispatch needs assignee_person_id or assignee_department (or both).",
                action=action,
            )
        person_id = dept_id = None
        if body.assignee_person_id is not None:
            person = conn.execute(sql.PERSON, {"id": body.assignee_person_id}).first()
            if person is None or not person.active:
                raise invalid(
                    f"No active person has the id {body.assignee_person_id}.",
                    assignee_person_id=body.assignee_person_id,
                )
            person_id = person.id
            data["assignee"] = {"id": person.id, "name": person.name}
        if body.assignee_department is not None:
            dept = _department(conn, body.assignee_department)
            dept_id = dept.id
            data["assignee_department"] = {"code": dept.code, "name": dept.name_zh}
        cols["assignee_person_id"] = person_id
        cols["assignee_department_id"] = dept_id
        if hazard.status == "accepted":
            # The deadline clock starts at the first dispatch; a re-dispatch keeps it.
            cols["dispatched_at"] = now
            cols["due_at"] = now + timedelta(hours=hazard.sla_hours)
            data["due_at"] = cols["due_at"].isoformat()
    elif action == "escalate":
        if body.assignee_department is not None:
            dept = _department(conn, body.assignee_department)
            cols["assignee_department_id"] = dept.id
            cols["assignee_person_id"] = None
            data["assignee_department"] = {"code": dept.code, "name": dept.name_zh}
        else:
            target = _escalation_target(conn, hazard)
            cols["assignee_person_id"] = target["assignee_person_id"]
            cols["assignee_department_id"] = None
            data.update(target)
        if hazard.dispatched_at is None:
            cols["dispatched_at"] = now
        if hazard.due_at is None:
            cols["due_at"] = now + timedelta(hours=hazard.sla_hours)
    elif action == "resolve":
        cols["resolved_at"] = now
    elif action == "verify":
        cols["verified_at"] = now
    elif action == "fail_verification":
        cols["resolved_at"] = None
    elif action == "close":
        cols["closed_at"] = now
    elif action == "reopen":
        days = settings.hazard_reopen_days
        if hazard.closed_at is None or now - hazard.closed_at > timedelta(days=days):
            raise ApiError(
                409,
                "reopen_window_passed",
                f"A closed hazard may be reopened within {days} days of closing; this one was "
                f"closed on {hazard.closed_at:%Y-%m-%d}. Report it again instead.",
                {
                    "closed_at": hazard.closed_at.isoformat() if hazard.closed_at else None,
                    "reopen_days": days,
                },
            )
        cols.update(
            closed_at=None,
            verified_at=None,
            resolved_at=None,
            due_at=None,
            dispatched_at=None,
            assignee_person_id=None,
            assignee_department_id=None,
            duplicate_of_id=None,
        )
    elif action == "mark_duplicate":
        if body.duplicate_of is None:
            raise invalid("mark_duplicate needs duplicate_of: the id or code of the original.")
        other = lookup_ref(conn, body.duplicate_of)
        if other is None:
            raise invalid(
                f"No hazard {body.duplicate_of!r} to mark this one a duplicate of.",
                duplicate_of=body.duplicate_of,
            )
        if other.id == hazard.id:
            raise invalid("A hazard cannot be a duplicate of itself.", duplicate_of=other.id)
        if other.status in CLOSED_STATUSES:
            raise ApiError(
                409,
                "duplicate_target_closed",
                f"{other.public_code} is {other.status}; mark a duplicate of an open hazard.",
                {"duplicate_of": other.id, "status": other.status},
            )
        cols["duplicate_of_id"] = other.id
        cols["closed_at"] = now
        data["duplicate_of"] = {"id": other.id, "public_code": other.public_code}
    elif action == "comment":
        pass
    return cols, data


def apply_move(
    conn: Connection,
    *,
    settings: Settings,
    principal: Principal,
    hazard_id: int,
    body: ActionIn,
    if_match: int | None,
    photos: list[Photo],
    ip: str | None,
) -> MoveResult:
    """Make one move in one transaction: lock, authorise, check version and state, update
    (compare-and-set on version), record the event, its photos and the audit row."""
    action = body.action
    _unused_fields(action, body)
    written: list[Path] = []
    try:
        with write_transaction(conn):
            hazard = conn.execute(
                sql.LOCK_HAZARD,
                {"id": hazard_id},
            ).first()
            if hazard is None:
                raise not_found(f"Hazard {hazard_id} does not exist.", id=hazard_id)
            authorize_move(principal, hazard, action)
            expected = if_match if if_match is not None else body.version
            if expected is None:
                raise ApiError(
                    428,
                    "precondition_required",
                    "Send If-Match with the hazard's ETag (from GET /api/v1/hazards/{id}) or a "
                    "version field, so that two people cannot overwrite each other's moves.",
                    {"version": hazard.version, "etag": etag(hazard.version)},
                )
            if expected != hazard.version:
                raise ApiError(
                    412,
                    "version_mismatch",
                    f"Hazard {hazard.public_code} has changed since you loaded it (you sent "
                    f"version {expected}, it is now {hazard.version}). Reload it and decide "
                    "again.",
                    {"version": hazard.version, "etag": etag(hazard.version), "sent": expected},
                    headers={"ETag": etag(hazard.version)},
                )
            if not is_allowed(action, hazard.status):
                allowed = allowed_actions(hazard.status)
                raise ApiError(
                    409,
                    "move_not_allowed",
                    f"'{action}' is not possible while the hazard is {hazard.status} "
                    f"({STATUS_NAMES_ZH[hazard.status]}). Allowed now: {', '.join(allowed)}.",
                    {
                        "status": hazard.status,
                        "action": action,
                        "allowed": allowed,
                        "allowed_for_you": moves_for(principal, hazard),
                    },
                )
            if action == "comment" and not body.note and not photos:
                raise invalid("A comment needs a note or photos.")
            cols, data = _changes(conn, settings, hazard, body, principal)
            to_status = target_status(action, hazard.status)
            sets = "".join(f", {col} = :c_{col}" for col in cols)  # column names are ours
            new_version = conn.execute(
                text(
                    f"UPDATE hazards SET status = :status, version = version + 1,"
                    f" updated_at = now(){sets}"
                    " WHERE id = :id AND version = :version RETURNING version"
                ),
                {
                    "status": to_status,
                    "id": hazard.id,
                    "version": hazard.version,
                    **{f"c_{k}": v for k, v in cols.items()},
                },
            ).scalar()
            if new_version is None:  # pragma: no cover - the row lock makes this unreachable
                raise ApiError(412, "version_mismatch", "The hazard changed meanwhile; reload.")
            data["principal"] = principal_tag(principal)
            event_id = _event(
                conn, hazard.id, action, hazard.status, to_status, principal, body.note, data
            )
            photo_ids, written = _store_photos(
                conn, settings, hazard.id, event_id, photos, principal_tag(principal)
            )
            before = {"status": hazard.status, "version": hazard.version}
            before.update({k: getattr(hazard, k, None) for k in cols if hasattr(hazard, k)})
            after = {"status": to_status, "version": new_version, **cols}
            if photo_ids:
                after["photos"] = photo_ids
            record(
                conn,
                principal,
                f"hazard.{action}",
                "hazard",
                hazard.id,
                before,
                after,
                hazard.grid_id,
                ip,
            )
    except BaseException:
        photo_store.discard(written)
        raise
    return MoveResult(hazard.id, action, hazard.status, to_status, new_version, event_id, photo_ids)


# ---- overdue, statistics, tasks ---------------------------------------------------------------
def scoped_grid(principal: Principal, grid: int | None, conn: Connection) -> int | None:
    """The grid a supervisory read covers: the one asked for when it lies in the caller's
    subtree (404 otherwise, as for any private read), else the caller's scope root."""
    if not principal.authenticated:
        raise unauthorized("Log in to see overdue work and statistics.")
    if grid is None:
        return None if principal.whole_territory else principal.grid_id
    path = conn.execute(text("SELECT path FROM grids WHERE id = :id"), {"id": grid}).scalar()
    if path is None or not principal.in_scope(list(path)):
        raise not_found(f"Grid {grid} does not exist or is outside your scope.", grid=grid)
    return grid


def overdue_list(
    conn: Connection, grid: int | None, limit: int, offset: int, crs: Datum
) -> dict[str, Any]:
    """Overdue hazards of a grid subtree, longest overdue first."""
    rows = conn.execute(
        sql.OVERDUE_LIST,
        {"grid": grid, "limit": limit, "offset": offset, "crs": crs.value},
    ).all()
    matched = rows[0].matched if rows else 0
    items = []
    for r in rows:
        item = dict(r._mapping)
        item.pop("matched")
        for k in ("due_at", "dispatched_at", "reported_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["overdue_hours"] = float(item["overdue_hours"])
        item["url"] = f"/api/v1/hazards/{r.id}"
        items.append(item)
    return {
        "grid": grid,
        "crs": crs.value,
        "number_matched": matched if rows else _overdue_count(conn, grid),
        "number_returned": len(items),
        "items": items,
    }


def _overdue_count(conn: Connection, grid: int | None) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM hazards h WHERE "
            + sql._OVERDUE_H
            + " AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])"
        ),
        {"grid": grid},
    ).scalar_one()


def stats(
    conn: Connection, grid: int | None, since: datetime | None, until: datetime | None, top: int
) -> dict[str, Any]:
    """Counts by status and category, median report→close, overdue, top grids."""
    body = json.loads(
        conn.execute(
            sql.STATS, {"grid": grid, "since": since, "until": until, "top": top}
        ).scalar_one()
    )
    med = body.get("median_hours_to_close")
    body["median_hours_to_close"] = None if med is None else float(med)
    return {
        "grid": grid,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        **body,
    }


def amap_marker_url(gcj_lon: float, gcj_lat: float, name: str) -> str:
    """AMap's marker URI (opens the app or the web map); it takes GCJ-02 coordinates."""
    query = urlencode(
        {
            "position": f"{gcj_lon:.6f},{gcj_lat:.6f}",
            "name": name,
            "coordinate": "gaode",
            "src": "gis-service",
        },
        safe=",",
    )
    return f"https://uri.amap.com/marker?{query}"


def my_tasks(
    conn: Connection, person_id: int, near: tuple[float, float] | None, crs: Datum, limit: int
) -> dict[str, Any]:
    """Hazards waiting for one person, nearest first, each with an AMap navigation link."""
    rows = conn.execute(
        sql.MY_TASKS,
        {
            "person": person_id,
            "lon": near[0] if near else None,
            "lat": near[1] if near else None,
            "crs": crs.value,
            "limit": limit,
        },
    ).all()
    features = []
    for r in rows:
        name = f"{r.public_code} {r.category_name}"
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": {"type": "Point", "coordinates": [r.out_lon, r.out_lat]},
                "properties": {
                    "public_code": r.public_code,
                    "category": r.category_code,
                    "category_name": r.category_name,
                    "status": r.status,
                    "status_name": STATUS_NAMES_ZH.get(r.status, r.status),
                    "severity": r.severity,
                    "description": r.description,
                    "address": r.address,
                    "grid_name": r.grid_name,
                    "due_at": r.due_at.isoformat() if r.due_at else None,
                    "overdue": bool(r.overdue),
                    "version": r.version,
                    "distance_m": None if r.distance_m is None else float(r.distance_m),
                    "navigation_url": amap_marker_url(r.gcj_lon, r.gcj_lat, name),
                    "gcj02": [round(r.gcj_lon, 7), round(r.gcj_lat, 7)],
                    "url": f"/api/v1/hazards/{r.id}",
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "crs_name": crs.value,
        "person_id": person_id,
        "numberReturned": len(features),
        "features": features,
    }
