"""Patrols with no HTTP: check a track (order, place, times), store it as a line with its
times in one transaction with its audit row and idempotency key, read tracks back (as
GeoJSON and GPX), and count patrols per grid and period."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import Forbidden, Invalid, NotFound
from gis_service.geo.datums import Datum, to_wgs84
from gis_service.hazards.supervision import scoped_grid
from gis_service.idempotency import earlier, fingerprint, remember
from gis_service.instants import add_clamped, check_recorded
from gis_service.interchange.reader import CHINA_BOX
from gis_service.patrols import gpx, sql
from gis_service.patrols.schemas import PatrolIn


@dataclass(frozen=True)
class Track:
    """A checked track in WGS84: lon, lat and epoch seconds, and its start and end."""

    xs: list[float]
    ys: list[float]
    ms: list[float]
    started_at: datetime
    ended_at: datetime


@dataclass(frozen=True)
class PatrolResult:
    """A patrol stored (or the first one, for a retry)."""

    patrol_id: int
    created: bool


class _KeyTaken(Exception):
    """A concurrent request with the same key or ref committed first."""


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def check_track(
    points: list[tuple[float, float, float]],
    crs: Datum,
    settings: Settings,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> Track:
    """Order, place and times of a track's points; 422 naming the first bad point."""
    if len(points) > settings.patrol_max_points:
        raise Invalid(
            f"The track has {len(points):,} points; at most {settings.patrol_max_points:,} are "
            "accepted in one patrol. Split it.",
            code="too_many_points",
            max_points=settings.patrol_max_points,
        )
    if len(points) < 2:
        raise Invalid("A track needs at least two points.", code="track_too_short")
    arr = np.asarray(points, dtype=float)
    if not np.isfinite(arr).all():
        raise Invalid("The track holds a number that is not finite.", code="bad_track")
    lon, lat = (np.asarray(v, dtype=float) for v in to_wgs84(arr[:, 0], arr[:, 1], crs))
    t = arr[:, 2]
    x0, y0, x1, y1 = CHINA_BOX
    outside = np.flatnonzero((lon < x0) | (lon > x1) | (lat < y0) | (lat > y1))
    if outside.size:
        i = int(outside[0])
        raise Invalid(
            f"Point {i} ({arr[i, 0]:.6f}, {arr[i, 1]:.6f}) lies outside China; check the "
            "coordinates (lon before lat) and their datum (crs).",
            code="outside_china",
            point=i,
            outside=int(outside.size),
        )
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise Invalid(
            f"Point {i} was recorded at {_when(t[i])}, before point {i - 1} ({_when(t[i - 1])}): "
            "the points of a track must come in the order they were recorded.",
            code="track_out_of_order",
            point=i,
        )
    now = datetime.now(UTC)
    age = timedelta(days=settings.field_max_age_days)
    for i in (0, len(t) - 1):
        try:
            check_recorded(datetime.fromtimestamp(t[i], UTC), now, age)
        except (ValueError, OverflowError, OSError) as exc:
            raise Invalid(
                f"Point {i}: {exc}. Times are seconds since 1970-01-01 UTC.",
                code="bad_recorded_time",
                point=i,
            ) from None
    # Consecutive fixes at the same place add nothing to the line; keep the first of each.
    keep = np.ones(len(t), dtype=bool)
    keep[1:] = (np.diff(lon) != 0) | (np.diff(lat) != 0)
    if keep.sum() < 2:
        raise Invalid(
            "All points of the track lie at one place: there is no line to store.",
            code="track_without_movement",
        )
    first = datetime.fromtimestamp(t[0], UTC)
    last = datetime.fromtimestamp(t[-1], UTC)
    start = started_at.astimezone(UTC) if started_at else first
    end = ended_at.astimezone(UTC) if ended_at else last
    if start > first or end < last or start > end:
        raise Invalid(
            f"started_at and ended_at must enclose the points' times ({first.isoformat()} … "
            f"{last.isoformat()}).",
            code="bad_patrol_times",
        )
    return Track(lon[keep].tolist(), lat[keep].tolist(), t[keep].tolist(), start, end)


def store(
    conn: Connection,
    *,
    principal: Principal,
    track: Track,
    ref: uuid.UUID,
    source: str,
    note: str | None,
    ip: str | None,
    idempotency_key: str | None,
    fp: str,
) -> PatrolResult:
    """Store a checked track in one transaction with its audit row; a retry (same caller and
    key, or same ref) returns the first patrol."""
    caller = principal.tag()
    operation = f"patrol.{source}"
    try:
        with transaction(conn):
            first = earlier(conn, caller, idempotency_key, operation, fp)
            if first is not None:
                return PatrolResult(int(first.object_id), False)
            arrays = {"xs": track.xs, "ys": track.ys, "ms": track.ms}
            place = conn.execute(sql.PLACE, arrays).one()
            if place.grid is None and not place.micro_grids:
                raise Invalid(
                    "The track lies in no grid of this service; check the coordinates and "
                    "their datum (crs).",
                    code="outside_grids",
                )
            touched = list(place.touched or []) + list(place.path or [])
            if not principal.can("write", touched):
                raise Forbidden(
                    "The track does not pass through your area: patrols are uploaded by the "
                    "staff of the grids they cover.",
                    code="outside_scope",
                )
            row = conn.execute(
                sql.INSERT_PATROL,
                {
                    **arrays,
                    "ref": str(ref),
                    "principal": caller,
                    "user_id": principal.id if principal.kind == "user" else None,
                    "person_id": principal.person_id,
                    "walker_name": principal.name,
                    "grid_id": place.grid,
                    "grid_path": list(place.path or []),
                    "source": source,
                    "started_at": track.started_at,
                    "ended_at": track.ended_at,
                    "length_m": float(place.length_m),
                    "micro_grids": list(place.micro_grids),
                    "note": note,
                },
            ).first()
            if row is None:
                raise _KeyTaken
            record(
                conn,
                principal,
                "patrol.create",
                "patrol",
                row.id,
                None,
                {
                    "ref": str(ref),
                    "source": source,
                    "points": len(track.xs),
                    "started_at": track.started_at,
                    "ended_at": track.ended_at,
                    "length_m": round(float(place.length_m), 1),
                    "micro_grids": len(place.micro_grids),
                },
                place.grid,
                ip,
            )
            if not remember(conn, caller, idempotency_key, operation, fp, "patrol", row.id):
                raise _KeyTaken
    except _KeyTaken:
        with transaction(conn):
            first = earlier(conn, caller, idempotency_key, operation, fp)
            if first is not None:
                return PatrolResult(int(first.object_id), False)
            found = conn.execute(sql.BY_REF, {"principal": caller, "ref": str(ref)}).first()
        if found is None:  # pragma: no cover - one of the two exists after a conflict
            raise
        if idempotency_key:
            raise Invalid(
                f"This patrol (ref {ref}) was uploaded already, as patrol {found.id}, with "
                "another Idempotency-Key.",
                code="patrol_exists",
                patrol_id=found.id,
            ) from None
        return PatrolResult(found.id, False)
    return PatrolResult(row.id, True)


def upload(
    conn: Connection,
    *,
    settings: Settings,
    principal: Principal,
    body: PatrolIn,
    ip: str | None,
    idempotency_key: str | None,
) -> PatrolResult:
    """A track recorded on the phone."""
    points = [(p[0], p[1], p[2]) for p in body.points]
    track = check_track(points, body.crs, settings, body.started_at, body.ended_at)
    fp = fingerprint(body.model_dump(mode="json"), [], principal.tag())
    return store(
        conn,
        principal=principal,
        track=track,
        ref=body.ref,
        source="app",
        note=body.note,
        ip=ip,
        idempotency_key=idempotency_key,
        fp=fp,
    )


def upload_gpx(
    conn: Connection,
    *,
    settings: Settings,
    principal: Principal,
    data: bytes,
    note: str | None,
    ip: str | None,
    idempotency_key: str | None,
) -> PatrolResult:
    """A GPX file recorded elsewhere (WGS84, as GPX is); its ref derives from its content,
    so the same file uploaded twice by the same caller is one patrol."""
    parsed = gpx.parse(data, settings.patrol_max_points)
    track = check_track(parsed.points, Datum.wgs84, settings)
    digest = fingerprint({"points": parsed.points, "note": note}, [], principal.tag())
    ref = uuid.UUID(fingerprint({"points": parsed.points}, [], principal.tag())[:32])
    return store(
        conn,
        principal=principal,
        track=track,
        ref=ref,
        source="gpx",
        note=note or parsed.name,
        ip=ip,
        idempotency_key=idempotency_key,
        fp=digest,
    )


def _readable(principal: Principal, grid_path: list[int], user_id: int | None) -> bool:
    own = principal.kind == "user" and user_id is not None and user_id == principal.id
    return own or principal.can("read_private", grid_path)


def get_patrol(conn: Connection, principal: Principal, patrol_id: int, crs: Datum) -> str:
    """One patrol as a GeoJSON Feature with its times, for its walker and staff in scope."""
    row = conn.execute(sql.PATROL, {"id": patrol_id, "crs": crs.value}).first()
    if row is None or not _readable(principal, list(row.grid_path), row.user_id):
        raise NotFound(f"No patrol has the id {patrol_id} in your area.", id=patrol_id)
    return row[0]


def patrol_gpx(conn: Connection, principal: Principal, patrol_id: int) -> tuple[str, str]:
    """One patrol as GPX 1.1 (WGS84, as GPX is), and a file name."""
    row = conn.execute(sql.PATROL, {"id": patrol_id, "crs": Datum.wgs84.value}).first()
    if row is None or not _readable(principal, list(row.grid_path), row.user_id):
        raise NotFound(f"No patrol has the id {patrol_id} in your area.", id=patrol_id)
    props = json.loads(row[0])["properties"]
    points = [(p.lon, p.lat, p.m) for p in conn.execute(sql.POINTS, {"id": patrol_id})]
    name = f"巡查 {props['walker_name']} {props['started_at'][:16]}"
    text = gpx.write(points, name, props.get("grid_name") or "")
    return text, f"patrol-{patrol_id}.gpx"


def list_patrols(
    conn: Connection,
    principal: Principal,
    *,
    grid: int | None,
    user: int | None,
    since: datetime | None,
    until: datetime | None,
    crs: Datum,
    limit: int,
    offset: int,
) -> tuple[str, int, int]:
    """Patrols of the caller's subtree (and their own), newest first, as a FeatureCollection
    page: (text, matched, returned)."""
    if grid is not None:
        scoped_grid(principal, grid, conn)
    params: dict[str, Any] = {
        "scope": principal.scope_filter() if principal.has("read_private") else [0],
        "me": principal.id if principal.kind == "user" else None,
        "grid": grid,
        "user": user,
        "since": since,
        "until": until,
        "crs": crs.value,
        "limit": limit,
        "offset": offset,
    }
    row = conn.execute(sql.PATROLS, params).one()
    return row[0], row[1], row[2]


def stats(
    conn: Connection,
    principal: Principal,
    grid: int | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """Per child grid of a grid (or of the caller's scope root) and period (default: the
    last 30 days): patrols, distance inside the grid, time, micro-grids passed (coverage)."""
    root = scoped_grid(principal, grid, conn)
    end = until or datetime.now(UTC)
    start = since or add_clamped(end, -timedelta(days=30))  # until may be the first moment
    rows = conn.execute(
        sql.STATS,
        {"grid": root, "since": start, "until": end, "scope": principal.scope_filter()},
    ).all()
    items = [
        {
            "id": r.id,
            "code": r.code,
            "name": r.name,
            "level": r.level,
            "patrols": r.patrols,
            "distance_m": round(float(r.distance_m), 1),
            "duration_s": round(float(r.duration_s)),
            "micro_grids": r.micro_total,
            "micro_grids_passed": r.passed,
            "coverage_pct": round(100.0 * r.passed / r.micro_total, 1) if r.micro_total else None,
        }
        for r in rows
    ]
    return {
        "grid": root,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "grids": items,
    }


def today(conn: Connection, principal: Principal) -> dict[str, Any]:
    """The caller's patrols of the day (office calendar): count, distance, time, last end."""
    if principal.kind != "user":
        return {"patrols": 0, "distance_m": 0.0, "duration_s": 0, "last_ended_at": None}
    r = conn.execute(sql.TODAY, {"user": principal.id}).one()
    return {
        "patrols": r.patrols,
        "distance_m": round(float(r.distance_m), 1),
        "duration_s": round(float(r.duration_s)),
        "last_ended_at": r.last_ended_at.isoformat() if r.last_ended_at else None,
    }
