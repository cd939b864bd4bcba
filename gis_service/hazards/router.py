"""Thin HTTP routes for hazards: lists and one hazard, reports, the moves of the closed loop,
photos, overdue work, statistics and a field worker's tasks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError

from gis_service.auth.deps import PUBLIC_READ, Principal, client_ip, require
from gis_service.auth.ratelimit import limit_anonymous_reports
from gis_service.deps import (
    BBox,
    Conn,
    Crs,
    Near,
    bbox_query,
    near_query,
    parse_lonlat,
    reject_unknown_query,
)
from gis_service.errors import ApiError, invalid, not_found
from gis_service.hazards import service, sql
from gis_service.hazards.forms import read_body
from gis_service.hazards.models import (
    CLOSED_STATUSES,
    HAZARD_STATUSES,
    OPEN_STATUSES,
    STATUS_NAMES_ZH,
)
from gis_service.hazards.photos import Upload, validate_all
from gis_service.hazards.photos import file_for as photo_file_for
from gis_service.hazards.schemas import IDEMPOTENCY_KEY_PATTERN, ActionIn, ReportIn
from gis_service.hazards.service import HazardFilter
from gis_service.hazards.workflow import state_table
from gis_service.listing import FormatDep, OutputFormat, PageDep, collection_response, csv_response
from gis_service.responses import GeoJSONResponse

router = APIRouter(prefix="/api/v1", tags=["hazards"], dependencies=[Depends(reject_unknown_query)])


def _csv_list(raw: str | None, allowed: tuple[str, ...] | None, name: str) -> list[str] | None:
    if raw is None or raw == "":
        return None
    items = [x.strip() for x in raw.split(",") if x.strip()]
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise invalid(
                f"Unknown {name}: {', '.join(bad)}. Allowed: {', '.join(allowed)}.", **{name: bad}
            )
    return items


def status_list(raw: str | None) -> list[str] | None:
    """Expand ``open``/``closed``/``all`` and check status names."""
    if raw in (None, "", "all"):
        return None
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if item == "open":
            out.extend(OPEN_STATUSES)
        elif item == "closed":
            out.extend(CLOSED_STATUSES)
        else:
            out.extend(_csv_list(item, HAZARD_STATUSES, "status") or [])
    return out


async def hazard_filter_query(
    request: Request,
    bbox: Annotated[BBox | None, Depends(bbox_query)],
    near: Annotated[Near | None, Depends(near_query)],
    status: Annotated[
        str | None,
        Query(
            description="open, closed, all, or a comma list of states (reported, accepted, "
            "rejected, dispatched, in_progress, resolved, verified, closed)."
        ),
    ] = None,
    category: Annotated[
        str | None, Query(description="Comma list of hazard-category codes.")
    ] = None,
    grid: Annotated[
        int | None, Query(ge=1, description="Only hazards routed into this grid's subtree.")
    ] = None,
    since: Annotated[datetime | None, Query(description="Reported at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Reported before (ISO 8601).")] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not.")] = None,
) -> HazardFilter:
    """Parse every hazard-list filter."""
    known = tuple(request.app.state.catalog.hazard_categories)
    if since and until and since >= until:
        raise invalid("since must be before until.", since=str(since), until=str(until))
    return HazardFilter(
        statuses=status_list(status),
        categories=_csv_list(category, known, "category"),
        grid=grid,
        bbox=bbox,
        near=near,
        since=since,
        until=until,
        overdue=overdue,
    )


FilterDep = Annotated[HazardFilter, Depends(hazard_filter_query)]


def hazards_response(
    conn: Conn, request: Request, flt: HazardFilter, page, fmt: OutputFormat, crs
) -> Response:
    """A hazard list as GeoJSON or CSV (shared by /hazards and /grids/{id}/hazards)."""
    params = service.list_params(flt, crs)
    if fmt is OutputFormat.csv:
        return csv_response(conn, sql.HAZARD_LIST_CSV, {**params, **page.as_params()}, "hazards")
    return collection_response(conn, sql.HAZARD_LIST, params, request, page)


@router.get(
    "/hazards",
    response_class=GeoJSONResponse,
    summary="Hazards, filtered and paged",
    dependencies=[Depends(PUBLIC_READ)],
)
def list_hazards(
    conn: Conn, request: Request, flt: FilterDep, page: PageDep, fmt: FormatDep, crs: Crs
) -> Response:
    """Hazards by status, category, grid subtree, bbox, distance and time; newest first."""
    return hazards_response(conn, request, flt, page, fmt, crs)


# ---- the write side and supervision -----------------------------------------------------------
# Declared before /hazards/{hazard_id} so that "overdue" and "workflow" are not taken for ids.

REPORT_ACCESS = require(scopes={"report"}, allow_anonymous=True)
READ_STAFF = require(scopes={"read"})
HazardId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _json_or_multipart_body(model: type[BaseModel], required: list[str]) -> dict:
    """OpenAPI request body of an endpoint that takes JSON, or the same as multipart + photos."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "description": "The same fields as text, plus up to 5 files in 'photos'.",
                        "properties": {
                            **{k: {"type": "string"} for k in model.model_fields},
                            "photos": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                        "required": required,
                    }
                },
            },
        }
    }


_REPORT_BODY = _json_or_multipart_body(ReportIn, ["category", "lon", "lat", "description"])
_ACTION_BODY = _json_or_multipart_body(ActionIn, ["action"])


async def report_body(request: Request) -> tuple[ReportIn, list[Upload]]:
    """The report and its photo files."""
    return await read_body(request, ReportIn, request.app.state.settings)


async def action_body(request: Request) -> tuple[ActionIn, list[Upload]]:
    """The move and its photo files."""
    return await read_body(request, ActionIn, request.app.state.settings)


def _feature_with(
    conn: Conn, hazard_id: int, principal: Principal, **members: object
) -> tuple[dict, int]:
    found = service.hazard_feature_versioned(conn, hazard_id, principal)
    if found is None:  # pragma: no cover - just written
        raise not_found(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    body, version = found
    feature = json.loads(body)
    feature.update(members)
    return feature, version


@router.post(
    "/hazards",
    status_code=201,
    summary="Report a hazard (上报), JSON or multipart with photos",
    openapi_extra=_REPORT_BODY,
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the first report."},
        201: {"description": "Created: the hazard, where it was routed, duplicate suggestions."},
        413: {"description": "A photo or the body is too large."},
        415: {"description": "A photo is not JPEG, PNG or WebP (sniffed from the bytes)."},
        422: {"description": "Bad field, unknown category, or a point outside every grid."},
    },
)
def report_hazard(
    request: Request,
    conn: Conn,
    principal: Annotated[Principal, Depends(REPORT_ACCESS)],
    _limited: Annotated[None, Depends(limit_anonymous_reports)],
    parsed: Annotated[tuple[ReportIn, list[Upload]], Depends(report_body)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="A client key (8-200 printable characters): a retry with the same key "
            "and body returns the first report instead of creating another.",
        ),
    ] = None,
) -> JSONResponse:
    """Route the report to the finest grid containing the point (the grid chain, responsible
    person and department are snapshotted), snap it to the nearest facility of the category's
    types, store its photos, and list open hazards of the same category nearby.

    The reporter's name and phone are private. Anonymous reports are rate-limited.
    """
    report, uploads = parsed
    settings = request.app.state.settings
    photos = validate_all(uploads, settings)
    result = service.report_hazard(
        conn,
        settings=settings,
        catalog=request.app.state.catalog,
        principal=principal,
        report=report,
        photos=photos,
        ip=client_ip(request),
        idempotency_key=idempotency_key,
    )
    feature, version = _feature_with(
        conn,
        result.hazard_id,
        principal,
        created=result.created,
        facility=result.facility,
        duplicate_suggestions=result.duplicates,
    )
    return JSONResponse(
        feature,
        status_code=201 if result.created else 200,
        media_type="application/geo+json",
        headers={
            "Location": f"/api/v1/hazards/{result.hazard_id}",
            "ETag": service.etag(version),
        },
    )


@router.post(
    "/hazards/{hazard_id}/actions",
    summary="Move a hazard through the closed loop (立案, 派遣, 处置, 反馈, 核查, 结案, 吹哨 …)",
    openapi_extra=_ACTION_BODY,
    responses={
        403: {"description": "Your role or grid subtree does not allow this move."},
        409: {"description": "The state does not allow this move; the allowed ones are listed."},
        412: {"description": "If-Match names an older version: reload and decide again."},
        428: {"description": "If-Match (or a version field) is missing."},
    },
)
def act_on_hazard(
    request: Request,
    conn: Conn,
    hazard_id: HazardId,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    parsed: Annotated[tuple[ActionIn, list[Upload]], Depends(action_body)],
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description='The ETag of GET /hazards/{id}, such as "3".'),
    ] = None,
) -> JSONResponse:
    """One move with a note and optional photos, recorded in the hazard's history and the
    audit log. Send If-Match with the ETag you read: two people acting on the same hazard at
    once cannot both win, the second gets 412. See GET /api/v1/hazards/workflow for the moves.
    """
    body, uploads = parsed
    settings = request.app.state.settings
    photos = validate_all(uploads, settings)
    result = service.apply_move(
        conn,
        settings=settings,
        principal=principal,
        hazard_id=hazard_id,
        body=body,
        if_match=service.parse_if_match(if_match),
        photos=photos,
        ip=client_ip(request),
    )
    feature, version = _feature_with(
        conn,
        hazard_id,
        principal,
        event={
            "id": result.event_id,
            "action": result.action,
            "from_status": result.from_status,
            "to_status": result.to_status,
            "photos": result.photo_ids,
        },
    )
    return JSONResponse(
        feature, media_type="application/geo+json", headers={"ETag": service.etag(version)}
    )


@router.get(
    "/hazards/workflow",
    summary="The closed loop: every move, from where, to where",
    dependencies=[Depends(PUBLIC_READ)],
)
def workflow_table() -> dict:
    """Each action with the states it may start from, the state it leads to and the scope
    it needs ('dispatch': community decisions; 'write': the handler's own work)."""
    return {"statuses": STATUS_NAMES_ZH, "moves": state_table()}


@router.get("/hazards/overdue", summary="Overdue hazards of a grid subtree")
def overdue_hazards(
    conn: Conn,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    page: PageDep,
    crs: Crs,
    grid: Annotated[
        int | None,
        Query(ge=1, description="Grid whose subtree to list; default: your scope root."),
    ] = None,
) -> dict:
    """Hazards past their deadline (accepted, dispatched or in progress with due_at passed),
    longest overdue first, with who has them."""
    scope = service.scoped_grid(principal, grid, conn)
    return service.overdue_list(conn, scope, page.limit, page.offset, crs)


def _moment(raw: str | None, name: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 datetime (UTC when it names no zone)."""
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise invalid(f"{name} must be a date or an ISO 8601 datetime.", **{name: raw}) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/stats", summary="Hazard statistics of a grid subtree and a period")
def hazard_stats(
    conn: Conn,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    grid: Annotated[
        int | None, Query(ge=1, description="Grid subtree; default: your scope root.")
    ] = None,
    since: Annotated[
        str | None, Query(description="Reported at or after (date or ISO 8601).")
    ] = None,
    until: Annotated[str | None, Query(description="Reported before (date or ISO 8601).")] = None,
    top: Annotated[int, Query(ge=1, le=100, description="How many top grids to list.")] = 10,
) -> dict:
    """Counts by status and by category, the median hours from report to close, the overdue
    count, and the grids with the most open hazards, over hazards reported in the period."""
    start, end = _moment(since, "since"), _moment(until, "until")
    if start and end and start >= end:
        raise invalid("since must be before until.", since=since, until=until)
    scope = service.scoped_grid(principal, grid, conn)
    return service.stats(conn, scope, start, end, top)


@router.get("/me/tasks", summary="Hazards assigned to me, nearest first, with AMap links")
def my_tasks(
    conn: Conn,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    crs: Crs,
    near: Annotated[
        str | None,
        Query(description="Where I stand: lon,lat in the datum crs.", examples=["113.64,34.72"]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most tasks returned.")] = 100,
) -> dict:
    """The hazards dispatched to my person that wait for me, sorted by distance from ``near``
    (else by deadline). Each carries an AMap navigation link in GCJ-02, as AMap expects."""
    if principal.person_id is None:
        raise ApiError(
            403,
            "no_person",
            "Your account is not linked to a person (people row), so nothing is assigned to "
            "you; ask an admin to link it.",
        )
    point = parse_lonlat(near, crs) if near is not None else None
    return service.my_tasks(conn, principal.person_id, point, crs, limit)


@router.get(
    "/hazards/{hazard_id}", response_class=GeoJSONResponse, summary="One hazard with its history"
)
def get_hazard(
    conn: Conn,
    hazard_id: HazardId,
    crs: Crs,
    principal: Annotated[Principal, Depends(PUBLIC_READ)],
) -> GeoJSONResponse:
    """A hazard as a GeoJSON Feature with every step of its history and its photos; the ETag
    header carries its version, for If-Match on the next move. Staff in scope also see the
    reporter, the actors and notes, and the moves they may make (``allowed_actions``)."""
    found = service.hazard_feature_versioned(conn, hazard_id, principal, crs)
    if found is None:
        raise not_found(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    body, version = found
    headers = {"ETag": service.etag(version), "Cache-Control": "no-cache"}
    if principal.authenticated:
        feature = json.loads(body)
        row = conn.execute(sql.HAZARD_ROW, {"id": hazard_id}).one()
        feature["properties"]["allowed_actions"] = service.moves_for(principal, row)
        return GeoJSONResponse(json.dumps(feature, ensure_ascii=False), headers=headers)
    return GeoJSONResponse(body, headers=headers)


@router.get(
    "/hazards/{hazard_id}/photos/{photo_id}",
    summary="A photo of a hazard (EXIF stripped), its thumbnail, or the original for staff",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def hazard_photo(
    request: Request,
    conn: Conn,
    hazard_id: HazardId,
    photo_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{32,36}$")],
    principal: Annotated[Principal, Depends(PUBLIC_READ)],
    variant: Annotated[
        Literal["public", "thumb", "original"],
        Query(
            description="public (default: EXIF and GPS removed), thumb, or original (as "
            "uploaded, with EXIF: staff in scope only)."
        ),
    ] = "public",
) -> FileResponse:
    """The public copy has every EXIF field removed, GPS first of all."""
    try:
        row = conn.execute(sql.SELECT_PHOTO, {"hazard_id": hazard_id, "photo_id": photo_id}).first()
    except DataError:
        row = None
    missing = not_found(f"Hazard {hazard_id} has no photo {photo_id}.", photo_id=photo_id)
    if row is None:
        raise missing
    private = variant == "original"
    if private and not service.may_read_private(principal, row.grid_path):
        raise missing  # a private read outside the caller's scope is 404, not 403
    path, media_type = photo_file_for(
        request.app.state.settings,
        hazard_id,
        str(row.id),
        row.content_type,
        variant,
        row.archived_to,
    )
    if not path.is_file():
        raise not_found(f"The file of photo {photo_id} is missing on the server.")
    cache = "private, no-store" if private else "public, max-age=86400, immutable"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
    )
