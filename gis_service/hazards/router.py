"""Thin HTTP routes for hazards: lists and one hazard, reports, the moves of the closed loop,
photos, overdue work, statistics and a field worker's tasks."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from gis_service.auth.deps import PUBLIC_READ, ClientIp, limit_anonymous_reports, require
from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import X_DECLARED
from gis_service.errors import Forbidden, NotFound
from gis_service.geo.areas import parse_lonlat
from gis_service.hazards import (
    exceptions,
    moves,
    queries,
    receipts,
    reporting,
    sql_supervision,
    supervision,
)
from gis_service.hazards.deps import (
    FilterDep,
    action_body,
    hazard_list,
    json_or_multipart_body,
    report_body,
)
from gis_service.hazards.photos import Upload, validate_all
from gis_service.hazards.photos import file_for as photo_file_for
from gis_service.hazards.policy import may_read_private
from gis_service.hazards.schemas import ActionIn, ReportIn
from gis_service.hazards.states import STATUS_NAMES_ZH
from gis_service.hazards.versions import IF_MATCH_PATTERN, etag, parse_if_match
from gis_service.hazards.workflow import state_table
from gis_service.http.deps import (
    INSTANT_PATTERN,
    CatalogDep,
    Conn,
    Crs,
    Db,
    IdempotencyKey,
    SettingsDep,
    id_path,
    id_query,
    instant_param,
    lonlat_query,
    reject_unknown_query,
)
from gis_service.http.errors import move_docs
from gis_service.http.listing import FormatDep, OutputFormat, PageDep, csv_response, page_links
from gis_service.http.responses import GeoJSONResponse

router = APIRouter(prefix="/api/v1", tags=["hazards"], dependencies=[Depends(reject_unknown_query)])


@router.get(
    "/hazards",
    response_class=GeoJSONResponse,
    summary="Hazards, filtered and paged",
    dependencies=[Depends(PUBLIC_READ)],
)
async def list_hazards(
    db: Db, request: Request, flt: FilterDep, page: PageDep, fmt: FormatDep, crs: Crs
) -> Response:
    """Hazards by status, category, grid subtree, bbox, distance and time; newest first."""
    return await hazard_list(db, request, flt, page, fmt, crs)


# ---- the write side and supervision -----------------------------------------------------------
# Declared before /hazards/{hazard_id} so that "overdue" and "workflow" are not taken for ids.

REPORT_ACCESS = require(scopes={"report"}, allow_anonymous=True)
# A receipt's holder answers the callback: anyone with the link (keys need 'report').
ANYONE_REPORTING = require(scopes={"report"}, allow_anonymous=True)
READ_STAFF = require(scopes={"read"})
HazardId = Annotated[int, id_path("Hazard id.")]


_REPORT_BODY = json_or_multipart_body(ReportIn, ["category", "lon", "lat", "description"])
_ACTION_BODY = json_or_multipart_body(ActionIn, ["action"])


def _feature_with(
    conn: Conn, hazard_id: int, principal: Principal, **members: object
) -> tuple[dict, int]:
    found = queries.hazard_feature_versioned(conn, hazard_id, principal)
    if found is None:  # pragma: no cover - just written
        raise NotFound(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    body, version = found
    feature = json.loads(body)
    feature.update(members)
    return feature, version


@router.post(
    "/hazards",
    status_code=201,
    summary="Report a hazard (上报), JSON or multipart with photos",
    openapi_extra=_REPORT_BODY,
    # The answer is a GeoJSON Feature, sent as application/geo+json (RFC 7946 §12): the
    # document says so, for the first report and for its retry.
    response_class=GeoJSONResponse,
    responses={
        200: {
            "description": "A retry with the same Idempotency-Key: the first report.",
            "content": {"application/geo+json": {}},
        },
        201: {"description": "Created: the hazard, where it was routed, duplicate suggestions."},
        413: {"description": "A photo or the body is too large."},
        415: {"description": "A photo is not JPEG, PNG or WebP (sniffed from the bytes)."},
        422: {"description": "Bad field, unknown category, or a point outside every grid."},
    },
)
def report_hazard(
    conn: Conn,
    settings: SettingsDep,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(REPORT_ACCESS)],
    _limited: Annotated[None, Depends(limit_anonymous_reports)],
    parsed: Annotated[tuple[ReportIn, list[Upload]], Depends(report_body)],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Route the report to the finest grid containing the point (the grid chain, responsible
    person and department are snapshotted), snap it to the nearest facility of the category's
    types, store its photos, and list open hazards of the same category nearby.

    The reporter's name and phone are private. Anonymous reports are rate-limited.
    """
    report, uploads = parsed
    photos = validate_all(uploads, settings)
    result = reporting.report_hazard(
        conn,
        settings=settings,
        catalog=catalog,
        principal=principal,
        report=report,
        photos=photos,
        ip=ip,
        idempotency_key=idempotency_key,
    )
    feature, version = _feature_with(
        conn,
        result.hazard_id,
        principal,
        created=result.created,
        facility=result.facility,
        duplicate_suggestions=result.duplicates,
        receipt={"token": result.receipt, "url": receipts.receipt_url(result.receipt)}
        if result.receipt
        else None,
    )
    return JSONResponse(
        feature,
        status_code=201 if result.created else 200,
        media_type="application/geo+json",
        headers={
            "Location": f"/api/v1/hazards/{result.hazard_id}",
            "ETag": etag(version),
        },
    )


@router.post(
    "/hazards/{hazard_id}/actions",
    summary="Move a hazard through the closed loop (立案, 派遣, 处置, 反馈, 核查, 结案, 吹哨 …)",
    openapi_extra=_ACTION_BODY,
    response_class=GeoJSONResponse,  # the hazard's Feature after the move, as GET /hazards/{id}
    responses={
        **move_docs("hazard", private=False, if_match=True),
        413: {"description": "A photo or the body is too large."},
        415: {"description": "A photo is not JPEG, PNG or WebP (sniffed from the bytes)."},
        422: {"description": "A bad field, a far occurred_at, or a reused Idempotency-Key."},
    },
)
def act_on_hazard(
    conn: Conn,
    settings: SettingsDep,
    ip: ClientIp,
    hazard_id: HazardId,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    parsed: Annotated[tuple[ActionIn, list[Upload]], Depends(action_body)],
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag of GET /hazards/{id}, such as "3".',
            json_schema_extra={X_DECLARED: {"pattern": IF_MATCH_PATTERN}},  # parse_if_match's
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """One move with a note and optional photos, recorded in the hazard's history and the
    audit log. Send If-Match with the ETag you read: two people acting on the same hazard at
    once cannot both win, the second gets 412. See GET /api/v1/hazards/workflow for the moves.
    """
    body, uploads = parsed
    photos = validate_all(uploads, settings)
    result = moves.apply_move(
        conn,
        settings=settings,
        principal=principal,
        hazard_id=hazard_id,
        body=body,
        if_match=parse_if_match(if_match),
        photos=photos,
        ip=ip,
        idempotency_key=idempotency_key,
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
            "replayed": result.replayed,
        },
    )
    return JSONResponse(feature, media_type="application/geo+json", headers={"ETag": etag(version)})


@router.get(
    "/hazards/workflow",
    summary="The closed loop: every move, from where, to where",
    dependencies=[Depends(PUBLIC_READ)],
)
def workflow_table() -> dict:
    """Each action with the states it may start from, the state it leads to and the scope
    it needs ('dispatch': community decisions; 'write': the handler's own work)."""
    return {"statuses": STATUS_NAMES_ZH, "moves": state_table()}


@router.get(
    "/hazards/overdue",
    summary="Overdue hazards of a grid subtree (GeoJSON or CSV, like every list)",
    responses={200: {"content": {"application/geo+json": {}, "text/csv": {}}}},
)
def overdue_hazards(
    conn: Conn,
    request: Request,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    page: PageDep,
    fmt: FormatDep,
    crs: Crs,
    grid: Annotated[
        int | None,
        id_query("Grid whose subtree to list; default: your scope root."),
    ] = None,
) -> Response:
    """Hazards past their deadline (accepted, dispatched or in progress with due_at passed),
    longest overdue first, with who has them: a paged FeatureCollection like the other lists
    (``numberMatched``, ``links``), or CSV with ``f=csv``."""
    scope = supervision.scoped_grid(principal, grid, conn)
    if fmt is OutputFormat.csv:
        params = {"grid": scope, "crs": crs.value, **page.as_params()}
        return csv_response(conn, sql_supervision.OVERDUE_CSV, params, "overdue")
    body = supervision.overdue_list(conn, scope, page.limit, page.offset, crs)
    features = [
        {
            "type": "Feature",
            "id": item["id"],
            "geometry": {"type": "Point", "coordinates": [item.pop("lon"), item.pop("lat")]},
            "properties": item,
        }
        for item in body["items"]
    ]
    return GeoJSONResponse(
        json.dumps(
            {
                "type": "FeatureCollection",
                "grid": scope,
                "crs_name": crs.value,
                "numberMatched": body["number_matched"],
                "numberReturned": len(features),
                "features": features,
                "links": page_links(request, page, len(features), body["number_matched"]),
            },
            ensure_ascii=False,
        )
    )


@router.get("/stats", summary="Hazard statistics of a grid subtree and a period")
def hazard_stats(
    conn: Conn,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    grid: Annotated[int | None, id_query("Grid subtree; default: your scope root.")] = None,
    since: Annotated[
        str | None,
        Query(pattern=INSTANT_PATTERN, description="Reported at or after (date or ISO 8601)."),
    ] = None,
    until: Annotated[
        str | None,
        Query(pattern=INSTANT_PATTERN, description="Reported before (date or ISO 8601)."),
    ] = None,
    top: Annotated[int, Query(ge=1, le=100, description="How many top grids to list.")] = 10,
) -> dict:
    """Counts by status and by category, the median hours from report to close, the overdue
    count, and the grids with the most open hazards, over hazards reported in the period."""
    start, end = instant_param(since, "since"), instant_param(until, "until")
    scope = supervision.scoped_grid(principal, grid, conn)
    return supervision.stats(conn, scope, start, end, top)


@router.get("/me/tasks", summary="Hazards assigned to me, nearest first, with AMap links")
def my_tasks(
    conn: Conn,
    principal: Annotated[Principal, Depends(READ_STAFF)],
    crs: Crs,
    near: Annotated[
        str | None,
        lonlat_query("Where I stand: lon,lat in the datum crs."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most tasks returned.")] = 100,
) -> dict:
    """The hazards dispatched to my person that wait for me, sorted by distance from ``near``
    (else by deadline). Each carries an AMap navigation link in GCJ-02, as AMap expects."""
    if principal.person_id is None:
        raise Forbidden(
            "Your account is not linked to a person (people row), so nothing is assigned to "
            "you; ask an admin to link it.",
            code="no_person",
        )
    point = parse_lonlat(near, crs) if near is not None else None
    return supervision.my_tasks(conn, principal.person_id, point, crs, limit)


# A hazard by id or by the public code its reporter received (YH20261130-000001).
HazardRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=40,
        pattern=r"^(?:[1-9][0-9]{0,17}|[A-Za-z][0-9A-Za-z_-]{0,39})$",
        description="The hazard's id, or its public code such as YH20261130-000001.",
        examples=["YH20261130-000001"],
    ),
]


@router.get(
    "/hazards/{hazard_id}",
    response_class=GeoJSONResponse,
    summary="One hazard with its history, by id or public code",
    responses={404: {"description": "No hazard has this id or code."}},
)
def get_hazard(
    conn: Conn,
    settings: SettingsDep,
    hazard_id: HazardRef,
    crs: Crs,
    principal: Annotated[Principal, Depends(PUBLIC_READ)],
) -> GeoJSONResponse:
    """A hazard as a GeoJSON Feature with every step of its history and its photos; the ETag
    header carries its version, for If-Match on the next move. Staff in scope also see the
    reporter, the actors and notes, and the moves they may make (``allowed_actions``).
    The path takes the id or the public code a reporter receives."""
    ref = queries.lookup_ref(conn, hazard_id)
    if ref is None:
        raise NotFound(f"No hazard has the id or code {hazard_id!r}.", id=hazard_id)
    found = queries.hazard_feature_versioned(conn, ref.id, principal, crs)
    if found is None:  # pragma: no cover - just looked up
        raise NotFound(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    body, version = found
    headers = {"ETag": etag(version), "Cache-Control": "no-cache"}
    if principal.authenticated:
        feature = json.loads(body)
        feature["properties"]["allowed_actions"] = queries.moves_offered(
            conn, ref.id, principal, settings.callback_rework_days
        )
        return GeoJSONResponse(json.dumps(feature, ensure_ascii=False), headers=headers)
    return GeoJSONResponse(body, headers=headers)


@router.get(
    "/hazards/{hazard_id}/photos/{photo_id}",
    summary="A photo of a hazard (EXIF stripped), its thumbnail, or the original for staff",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def hazard_photo(
    conn: Conn,
    settings: SettingsDep,
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
    row = queries.photo_record(conn, hazard_id, photo_id)
    missing = NotFound(f"Hazard {hazard_id} has no photo {photo_id}.", photo_id=photo_id)
    if row is None:
        raise missing
    private = variant == "original"
    if private and not may_read_private(principal, row.grid_path):
        raise missing  # a private read outside the caller's scope is 404, not 403
    path, media_type = photo_file_for(
        settings, hazard_id, str(row.id), row.content_type, variant, archived_to=row.archived_to
    )
    if not path.is_file():
        raise NotFound(f"The file of photo {photo_id} is missing on the server.")
    cache = "private, no-store" if private else "public, max-age=86400, immutable"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
    )


# ---- exceptions and receipts --------------------------------------------------------------------
ReceiptToken = Annotated[
    str,
    Path(
        pattern=r"^rc_[A-Za-z0-9_-]{20,64}$",
        description="The token of the receipt link given with the report.",
    ),
]


class CallbackIn(BaseModel):
    """The reporter's answer to the callback (回访)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: Literal["satisfied", "basically_satisfied", "dissatisfied"] = Field(
        description="satisfied (满意), basically_satisfied (基本满意), dissatisfied (不满意)."
    )
    comment: str | None = Field(default=None, max_length=2000)
    rework: bool = Field(
        default=False, description="不满意 only: ask for the case to be handled again (返工)."
    )


@router.get(
    "/exceptions",
    summary="Exception requests (延期, 缓办, 退回, 作废) in your scope: the approval queue",
)
def exception_requests(
    conn: Conn,
    page: PageDep,
    principal: Annotated[Principal, Depends(require(scopes={"read_private"}))],
    status: Annotated[
        Literal["pending", "approved", "refused"],
        Query(description="pending (待审批, default), approved or refused."),
    ] = "pending",
) -> dict:
    """Each request with its case, reason, requester and role, and the decision once made;
    newest first. Approve or refuse through the case's actions (approve_extension, …)."""
    return exceptions.pending_requests(
        conn, principal.scope_filter(), status, page.limit, page.offset
    )


@router.get(
    "/receipts/{token}",
    summary="The reporter's receipt (回执): follow the case, see whether a callback is due",
    dependencies=[Depends(PUBLIC_READ)],
    responses={404: {"description": "No case has this receipt."}},
)
def receipt(conn: Conn, settings: SettingsDep, token: ReceiptToken) -> dict:
    """Public fields and steps of the reporter's own case (no names, no notes)."""
    return receipts.view(conn, settings, token)


@router.post(
    "/receipts/{token}/callback",
    summary="The reporter answers the callback (回访): 满意, 基本满意 or 不满意, maybe 返工",
    dependencies=[Depends(ANYONE_REPORTING)],
    responses={
        404: {"description": "No case has this receipt."},
        409: {"description": "Not closed yet, already answered, or the rework window passed."},
    },
)
def receipt_callback(
    conn: Conn, settings: SettingsDep, ip: ClientIp, token: ReceiptToken, body: CallbackIn
) -> dict:
    """The link is the reporter's capability: whoever holds it answers for the case. 不满意
    with rework within the window sends the case back to its handler."""
    return receipts.answer(conn, settings, token, body.rating, body.comment, body.rework, ip)
