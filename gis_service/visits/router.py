"""Thin HTTP routes of visits (走访): log one from the phone (JSON or multipart with photos,
Idempotency-Key), list and read them (staff in scope, audited), and their photos."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.care.service import dump
from gis_service.db.limits import BIGINT_MAX
from gis_service.hazards.deps import json_or_multipart_body, read_body
from gis_service.hazards.photos import Upload, validate_all
from gis_service.http.deps import (
    INSTANT_PATTERN,
    CatalogDep,
    Conn,
    Crs,
    IdempotencyKey,
    SettingsDep,
    instant_param,
    reject_unknown_query,
)
from gis_service.http.listing import PageDep
from gis_service.http.responses import RawJSONResponse
from gis_service.visits import service
from gis_service.visits.schemas import VisitIn

router = APIRouter(
    prefix="/api/v1/visits", tags=["visits (走访)"], dependencies=[Depends(reject_unknown_query)]
)

VISIT_WRITE = require(scopes={"write"})
VISIT_READ = require(scopes={"read_private"})
VisitId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="A visit.")]


async def visit_body(request: Request, settings: SettingsDep) -> tuple[VisitIn, list[Upload]]:
    """The visit and its photo files."""
    return await read_body(request, VisitIn, settings)


@router.post(
    "",
    status_code=201,
    summary="Log a visit (走访) from the phone; raise a hazard or a service need in one step",
    openapi_extra=json_or_multipart_body(VisitIn, ["person_id"]),
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the first visit."},
        201: {"description": "Logged: the visit, and the hazard it raised."},
        401: {"description": "Not logged in."},
        403: {"description": "The person lives outside your area, or no write scope."},
        404: {"description": "No such person under care."},
        413: {"description": "A photo or the body is too large."},
        415: {"description": "A photo is not JPEG, PNG or WebP (sniffed from the bytes)."},
        422: {"description": "A bad field, a far visited_at, unknown needs, a reused key."},
    },
)
def log_visit(
    conn: Conn,
    settings: SettingsDep,
    catalog: CatalogDep,
    ip: ClientIp,
    request: Request,
    principal: Annotated[Principal, Depends(VISIT_WRITE)],
    parsed: Annotated[tuple[VisitIn, list[Upload]], Depends(visit_body)],
    crs: Crs,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Who (you), whom, when (``visited_at`` as the phone recorded it), where (GPS and its
    accuracy), what was found (text, up to 5 photos, the tick list of needs). With
    ``hazard_category`` and ``hazard_description`` a hazard is reported at the visit's place
    in the same transaction; with ``service_need`` a service need is raised. The person's
    next-due date moves on from the visit."""
    body, uploads = parsed
    photos = validate_all(uploads, settings)
    result = service.record_visit(
        conn,
        settings=settings,
        catalog=catalog,
        principal=principal,
        body=body,
        photos=photos,
        ip=ip,
        idempotency_key=idempotency_key,
    )
    visit = service.get_visit(
        conn, principal, catalog, result.visit_id, crs, ip, f"POST {request.url.path}"
    )
    visit["created"] = result.created
    return JSONResponse(
        visit,
        status_code=201 if result.created else 200,
        headers={"Location": f"/api/v1/visits/{result.visit_id}"},
    )


@router.get(
    "",
    summary="Visits of my area, newest first (audited)",
    responses={
        401: {"description": "Not logged in."},
        403: {"description": "No read_private scope."},
        404: {"description": "The grid lies outside your scope."},
        422: {"description": "A bad parameter."},
    },
)
def list_visits(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(VISIT_READ)],
    page: PageDep,
    crs: Crs,
    grid: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="A grid subtree.")] = None,
    person: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="One person under care.")
    ] = None,
    visitor: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="Visits logged by this user id.")
    ] = None,
    since: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Visited at or after (date or ISO).")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Visited before (date or ISO).")
    ] = None,
) -> RawJSONResponse:
    """Visits with the person, household, visitor, time, place, findings, needs, photos and
    the hazard raised; every person named is written to the audit log as read."""
    result = service.list_visits(
        conn,
        principal,
        catalog,
        grid=grid,
        person=person,
        visitor=visitor,
        since=instant_param(since, "since"),
        until=instant_param(until, "until"),
        crs=crs,
        limit=page.limit,
        offset=page.offset,
        ip=ip,
        via=f"GET {request.url.path}",
    )
    return RawJSONResponse(dump(result))


@router.get(
    "/{visit_id}",
    summary="One visit (audited)",
    responses={
        401: {"description": "Not logged in."},
        403: {"description": "No read_private scope."},
        404: {"description": "No such visit in your area."},
    },
)
def get_visit(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    visit_id: VisitId,
    principal: Annotated[Principal, Depends(VISIT_READ)],
    crs: Crs,
) -> RawJSONResponse:
    """The visit with its photos; the person visited is written to the audit log as read."""
    result = service.get_visit(
        conn, principal, catalog, visit_id, crs, ip, f"GET {request.url.path}"
    )
    return RawJSONResponse(dump(result))


@router.get(
    "/{visit_id}/photos/{photo_id}",
    summary="A photo of a visit (staff in scope only)",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
        401: {"description": "Not logged in."},
        403: {"description": "No read_private scope."},
        404: {"description": "No such photo in your area."},
    },
)
def visit_photo(
    conn: Conn,
    settings: SettingsDep,
    visit_id: VisitId,
    photo_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{32,36}$")],
    principal: Annotated[Principal, Depends(VISIT_READ)],
    variant: Annotated[
        Literal["public", "thumb", "original"],
        Query(description="public (EXIF removed, default), thumb, or original (as uploaded)."),
    ] = "public",
) -> FileResponse:
    """Photos of a visit show people's homes: never public, never cached by others."""
    path, media = service.photo_file(conn, settings, principal, visit_id, photo_id, variant)
    return FileResponse(
        path,
        media_type=media,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
