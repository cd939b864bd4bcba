"""Thin HTTP routes of patrols (巡查): upload a track from the phone or a GPX file, list and
read tracks (GeoJSON with times, or GPX), and patrol statistics per grid and period."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.db.limits import BIGINT_MAX
from gis_service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gis_service.http.deps import (
    INSTANT_PATTERN,
    Conn,
    Crs,
    IdempotencyKey,
    SettingsDep,
    instant_param,
    reject_unknown_query,
)
from gis_service.http.listing import PageDep, page_links
from gis_service.http.responses import GeoJSONResponse
from gis_service.patrols import gpx, service
from gis_service.patrols.schemas import PatrolIn

router = APIRouter(
    prefix="/api/v1/patrols", tags=["patrols (巡查)"], dependencies=[Depends(reject_unknown_query)]
)

PATROL_WRITE = require(scopes={"write"})
PATROL_READ = require(scopes={"read_private"})
COUNTS_READ = require(scopes={"read"})
PatrolId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="A patrol.")]
_WRITE_RESPONSES = {
    200: {"description": "A retry (same Idempotency-Key, or the same ref): the first patrol."},
    201: {"description": "Stored: the patrol as a GeoJSON Feature with its times."},
    401: {"description": "Not logged in."},
    403: {"description": "The track does not pass through your area, or no write scope."},
    413: {"description": "The body is too large."},
    422: {
        "description": "Points out of order, outside China, without times or all at one "
        "place; times in the future or too old; a reused key; not GPX."
    },
}
_GPX_TYPES = ("application/gpx+xml", "application/xml", "text/xml", "application/octet-stream")


def _created(conn: Conn, principal: Principal, result: service.PatrolResult, crs) -> Response:
    body = service.get_patrol(conn, principal, result.patrol_id, crs)
    return GeoJSONResponse(
        body,
        status_code=201 if result.created else 200,
        headers={"Location": f"/api/v1/patrols/{result.patrol_id}"},
    )


@router.post(
    "",
    status_code=201,
    summary="Upload a patrol track recorded on the phone (points with times)",
    response_class=GeoJSONResponse,
    responses=_WRITE_RESPONSES,
)
def upload_patrol(
    conn: Conn,
    settings: SettingsDep,
    ip: ClientIp,
    body: PatrolIn,
    crs: Crs,
    principal: Annotated[Principal, Depends(PATROL_WRITE)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The track is stored as a line whose points keep their times; its length, the grid it
    starts in and the micro-grids it passes are worked out by PostGIS. Hazards reported with
    the same ``patrol_ref`` link to it."""
    result = service.upload(
        conn,
        settings=settings,
        principal=principal,
        body=body,
        ip=ip,
        idempotency_key=idempotency_key,
    )
    return _created(conn, principal, result, crs)


async def _gpx_bytes(request: Request, settings: SettingsDep) -> tuple[bytes, str | None]:
    """The GPX file: the raw body (application/gpx+xml …) or the 'file' of a multipart form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    cap = settings.max_body_bytes
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("Send the GPX file in the form field 'file'.", code="bad_form")
        data = await upload.read(cap + 1)
        note = form.get("note")
        note = note if isinstance(note, str) and note.strip() else None
    elif ctype in _GPX_TYPES or ctype == "":
        data = await request.body()
        note = None
    else:
        raise UnsupportedMediaType(
            f"Send the GPX file as {_GPX_TYPES[0]} (or XML), or as the field 'file' of a "
            f"multipart form; got {ctype!r}.",
            code="not_gpx",
            content_type=ctype,
        )
    if len(data) > cap:
        raise PayloadTooLarge(f"The GPX file is larger than {cap:,} bytes.", max_bytes=cap)
    if note is not None and len(note) > 2000:
        note = note[:2000]
    return data, note


@router.post(
    "/gpx",
    status_code=201,
    summary="Upload a patrol recorded elsewhere, as a GPX file",
    response_class=GeoJSONResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/gpx+xml": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "note": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
            },
        }
    },
    responses={**_WRITE_RESPONSES, 415: {"description": "Not a GPX (XML) upload."}},
)
def upload_gpx(
    conn: Conn,
    settings: SettingsDep,
    ip: ClientIp,
    crs: Crs,
    principal: Annotated[Principal, Depends(PATROL_WRITE)],
    parsed: Annotated[tuple[bytes, str | None], Depends(_gpx_bytes)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Every track point (with its <time>) of every <trk> in file order becomes one patrol;
    the same file uploaded again by the same caller is the same patrol."""
    data, note = parsed
    result = service.upload_gpx(
        conn,
        settings=settings,
        principal=principal,
        data=data,
        note=note,
        ip=ip,
        idempotency_key=idempotency_key,
    )
    return _created(conn, principal, result, crs)


@router.get(
    "",
    response_class=GeoJSONResponse,
    summary="Patrols of my area (and my own), newest first, as lines",
    responses={
        401: {"description": "Not logged in."},
        403: {"description": "No read_private scope."},
        404: {"description": "The grid lies outside your scope."},
        422: {"description": "A bad parameter."},
    },
)
def list_patrols(
    conn: Conn,
    request: Request,
    principal: Annotated[Principal, Depends(PATROL_READ)],
    page: PageDep,
    crs: Crs,
    grid: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="A grid subtree.")] = None,
    user: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="One walker.")] = None,
    since: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Started at or after (date or ISO).")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Started before (date or ISO).")
    ] = None,
) -> Response:
    """A FeatureCollection page of LineStrings: walker, start, end, duration, length, points,
    micro-grids passed and the hazards reported on each patrol."""
    body, matched, returned = service.list_patrols(
        conn,
        principal,
        grid=grid,
        user=user,
        since=instant_param(since, "since"),
        until=instant_param(until, "until"),
        crs=crs,
        limit=page.limit,
        offset=page.offset,
    )
    # GeoJSON only: no CSV alternate (a track is a line with times, GPX is its other form).
    links = [x for x in page_links(request, page, returned, matched) if x["rel"] != "alternate"]
    text = json.dumps(links, ensure_ascii=False)
    return GeoJSONResponse(body[:-1] + f', "links": {text}}}')


@router.get(
    "/stats",
    summary="Patrols per grid and period: count, distance, time, micro-grids passed",
    responses={
        401: {"description": "Not logged in."},
        404: {"description": "The grid lies outside your scope."},
        422: {"description": "A bad parameter."},
    },
)
def patrol_stats(
    conn: Conn,
    principal: Annotated[Principal, Depends(COUNTS_READ)],
    grid: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="Default: your scope root.")
    ] = None,
    since: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Default: 30 days before until.")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=INSTANT_PATTERN, description="Default: now.")
    ] = None,
) -> dict:
    """For each child grid: patrols that passed through it, their distance inside it, their
    time, and how many of its micro-grids they passed out of all (coverage %). Counts only."""
    return service.stats(
        conn, principal, grid, instant_param(since, "since"), instant_param(until, "until")
    )


@router.get(
    "/{patrol_id:int}",
    response_class=GeoJSONResponse,
    summary="One patrol as a line with the time of every point",
    responses={401: {"description": "Not logged in."}, 404: {"description": "Not in your area."}},
)
def get_patrol(
    conn: Conn,
    patrol_id: PatrolId,
    crs: Crs,
    principal: Annotated[Principal, Depends(PATROL_READ)],
) -> Response:
    """The track (properties.times holds each point's time, in order) and its hazards."""
    return GeoJSONResponse(service.get_patrol(conn, principal, patrol_id, crs))


@router.get(
    "/{patrol_id:int}/gpx",
    summary="One patrol as a GPX 1.1 file",
    responses={
        200: {"content": {gpx.MEDIA_TYPE: {}}},
        401: {"description": "Not logged in."},
        404: {"description": "Not in your area."},
    },
)
def get_patrol_gpx(
    conn: Conn,
    patrol_id: PatrolId,
    principal: Annotated[Principal, Depends(PATROL_READ)],
) -> Response:
    """The track with the time of every point, for GPS software."""
    text, filename = service.patrol_gpx(conn, principal, patrol_id)
    return Response(
        text,
        media_type=gpx.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
