"""Reports (上报) with no HTTP: route a point to its finest grid, snapshot the grid chain and
responsible person, snap to a facility, store photos, suggest duplicates, and recognise a
retry by its idempotency key; one transaction with the event and the audit row."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import Catalog, HazardCategoryDef
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import Forbidden, Invalid
from gis_service.geo.datums import to_wgs84
from gis_service.hazards import photos as photo_store
from gis_service.hazards import receipts, sql
from gis_service.hazards.history import record_event, store_photos
from gis_service.hazards.photos import Photo
from gis_service.hazards.policy import principal_tag
from gis_service.hazards.schemas import OFFLINE_FIELDS, ReportIn
from gis_service.hazards.states import SOURCE_NOTES, STATUS_NAMES_ZH
from gis_service.idempotency import fingerprint as body_fingerprint
from gis_service.instants import check_recorded


@dataclass
class ReportResult:
    """What a report did: the hazard, whether it is new, the snap and the suggestions."""

    hazard_id: int
    created: bool
    facility: dict[str, Any] | None = None
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    photo_ids: list[str] = field(default_factory=list)
    # The reporter's receipt token (回执): shown once; a retry gets a fresh one.
    receipt: str | None = None


def _deg(metres: float, lat: float) -> float:
    """A radius in metres as degrees of longitude at ``lat`` (never smaller than in latitude),
    padded, for an index-friendly box around a point."""
    return metres / (111_320.0 * max(math.cos(math.radians(lat)), 0.01)) * 1.05 + 1e-6


def fingerprint(report: ReportIn, photos: list[Photo], submitter: str) -> str:
    """SHA-256 of what a report says (key excluded) and who sent it, to recognise a retry."""
    absent = {f for f in OFFLINE_FIELDS if getattr(report, f) is None}
    body = report.model_dump(mode="json", exclude={"idempotency_key", *absent})
    return body_fingerprint(body, [p.sha256 for p in photos], submitter)


def _category(catalog: Catalog, code: str) -> HazardCategoryDef:
    cat = catalog.hazard_categories.get(code)
    if cat is None:
        raise Invalid(
            f"Unknown hazard category {code!r}; GET /api/v1/layers or /open311/v2/services.json "
            "lists them.",
            category=code,
            known=sorted(catalog.hazard_categories),
        )
    return cat


def _source(report: ReportIn, principal: Principal) -> str:
    if principal.kind == "anonymous":
        if report.source not in (None, "resident"):
            raise Invalid(
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
            raise Invalid(
                f"No facility has the code {report.facility_code!r}.",
                facility_code=report.facility_code,
            )
        if cat.facility_types and row.type_code not in cat.facility_types:
            raise Invalid(
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


def _outside(conn: Connection, lon: float, lat: float, report: ReportIn) -> Invalid:
    """The error for a point in no grid, naming the nearest grid and the distance to it."""
    near = conn.execute(sql.NEAREST_GRID, {"lon": lon, "lat": lat}).first()
    point = {"lon": report.lon, "lat": report.lat, "crs": report.crs.value}
    if near is None:
        return Invalid(
            "The point lies in no grid, and no grid exists yet to route it to.",
            code="outside_grids",
            point=point,
        )
    dist = float(near.distance_m)
    return Invalid(
        f"The point lies outside every grid; the nearest is {near.name} ({near.code}, "
        f"{near.level}), {dist:,.0f} m away. Check the coordinates and their datum (crs).",
        code="outside_grids",
        point=point,
        nearest_grid={"id": near.id, "code": near.code, "name": near.name, "level": near.level},
        distance_m=dist,
    )


def scoped_key(key: str, principal: Principal, ip: str | None, scope: str) -> str:
    """An idempotency key as stored: in its caller's namespace, so that a key reused by
    somebody else never finds (or names) their report. Open311 tokens have a namespace of
    their own: GET /open311/v2/tokens/{token} finds those and nothing else."""
    if scope == "open311":
        return f"open311|{key}"
    if principal.kind == "anonymous":
        return f"anonymous@{ip or 'unknown'}|{key}"
    return f"{principal_tag(principal)}|{key}"


def _replay(
    conn: Connection, key: str, fp: str, report: ReportIn, cat: HazardCategoryDef
) -> ReportResult | None:
    """The earlier hazard of a retried report, with a fresh receipt; 422 when the key came
    with another body."""
    row = conn.execute(sql.SELECT_BY_IDEMPOTENCY_KEY, {"key": key}).first()
    if row is None:
        return None
    if row.idempotency_fingerprint != fp:
        raise Invalid(
            "This Idempotency-Key was already used for a different report. A retry must "
            "send exactly the same report; a new report needs a new key.",
            code="idempotency_key_reused",
            idempotency_key=key.partition("|")[2],  # as the caller sent it
            hazard_id=row.id,
        )
    lon, lat = (float(v) for v in to_wgs84(report.lon, report.lat, report.crs))
    return ReportResult(
        hazard_id=row.id,
        created=False,
        duplicates=duplicate_suggestions(
            conn, cat.code, cat.duplicate_radius_m, lon, lat, exclude=row.id
        ),
        receipt=receipts.issue(conn, row.id),  # the first receipt was shown once; a fresh one
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
    written: list[Path] = []
    try:
        with transaction(conn):
            return write_report(
                conn,
                settings=settings,
                catalog=catalog,
                principal=principal,
                report=report,
                photos=photos,
                ip=ip,
                written=written,
                idempotency_key=idempotency_key,
                scope=scope,
                event_data=event_data,
            )
    except BaseException:
        photo_store.discard(written)
        raise


def write_report(
    conn: Connection,
    *,
    settings: Settings,
    catalog: Catalog,
    principal: Principal,
    report: ReportIn,
    photos: list[Photo],
    ip: str | None,
    written: list[Path],
    idempotency_key: str | None = None,
    scope: str = "report",
    event_data: dict[str, Any] | None = None,
) -> ReportResult:
    """The body of :func:`report_hazard` inside the caller's transaction (a visit raises a
    hazard in its own); the photo folders it writes are appended to ``written``, for the
    caller to remove if the transaction does not commit."""
    if not principal.has(scope):
        raise Forbidden(f"This caller may not submit hazard reports (scope '{scope}').")
    key = idempotency_key or report.idempotency_key
    if idempotency_key and report.idempotency_key and idempotency_key != report.idempotency_key:
        raise Invalid(
            "The Idempotency-Key header and the idempotency_key field differ; send one.",
            header=idempotency_key,
            field=report.idempotency_key,
        )
    cat = _category(catalog, report.category)
    lon, lat = (float(v) for v in to_wgs84(report.lon, report.lat, report.crs))
    submitter = principal_tag(principal)
    if key:
        key = scoped_key(key, principal, ip, scope)
    fp = fingerprint(report, photos, submitter)
    source = _source(report, principal)
    if key:
        replay = _replay(conn, key, fp, report, cat)
        if replay is not None:
            return replay
    if report.observed_at is not None:
        try:
            check_recorded(
                report.observed_at,
                datetime.now(UTC),
                timedelta(days=settings.field_max_age_days),
            )
        except ValueError as exc:
            raise Invalid(f"observed_at: {exc}.", code="bad_recorded_time") from None
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
            "observed_at": report.observed_at,
            "patrol_ref": str(report.patrol_ref) if report.patrol_ref else None,
        },
    ).scalar()
    if hazard_id is None:
        if key:
            # A concurrent request with the same key committed first: ON CONFLICT waited
            # for it, so its row is visible now.
            replay = _replay(conn, key, fp, report, cat)
            if replay is not None:
                return replay
        raise _outside(conn, lon, lat, report)
    hazard = conn.execute(sql.NEW_HAZARD, {"id": hazard_id}).one()
    note = SOURCE_NOTES[source]
    event_id = record_event(
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
        report.observed_at,
    )
    photo_ids, folders = store_photos(conn, settings, hazard_id, event_id, photos, submitter)
    written.extend(folders)
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
            **({"observed_at": report.observed_at} if report.observed_at else {}),
        },
        hazard.grid_id,
        ip,
    )
    duplicates = duplicate_suggestions(
        conn, cat.code, cat.duplicate_radius_m, lon, lat, exclude=hazard_id
    )
    receipt = receipts.issue(conn, hazard_id)
    return ReportResult(hazard_id, True, facility, duplicates, photo_ids, receipt)
