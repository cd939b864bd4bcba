"""Thin HTTP routes of the field worker's day: duties today and the offline pack."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLES
from gis_service.care.service import dump
from gis_service.field import service
from gis_service.geo.areas import parse_lonlat
from gis_service.http.deps import CatalogDep, Conn, Crs, lonlat_query, reject_unknown_query
from gis_service.http.responses import RawJSONResponse

router = APIRouter(
    prefix="/api/v1/me", tags=["field work"], dependencies=[Depends(reject_unknown_query)]
)

# "Me" is a person with an account: users of any role that reads private fields, no keys.
FIELD_USER = require(roles=set(ROLES), scopes={"read_private"})
_RESPONSES = {
    401: {"description": "Not logged in."},
    403: {"description": "An API key (duties belong to a person's account)."},
    422: {"description": "A bad parameter."},
}


@router.get(
    "/duties", summary="My duties today: tasks, visits due, my patrols", responses=_RESPONSES
)
def my_duties(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(FIELD_USER)],
    crs: Crs,
    near: Annotated[
        str | None,
        lonlat_query("Where I stand: lon,lat in the datum crs."),
    ] = None,
) -> RawJSONResponse:
    """The hazards assigned to me (nearest first, with AMap links), the people of my area due
    for a visit today (今日待访) or overdue (逾期未访), nearest first with AMap links (each
    written to the audit log as read), and my patrols of the day."""
    point = parse_lonlat(near, crs) if near else None
    body = service.duties(conn, principal, catalog, point, crs, ip, f"GET {request.url.path}")
    return RawJSONResponse(dump(body))


@router.get(
    "/offline",
    summary="The offline pack of my area: micro-grids, people under care, open tasks",
    responses=_RESPONSES,
)
def offline_pack(
    conn: Conn,
    request: Request,
    catalog: CatalogDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(FIELD_USER)],
    crs: Crs,
) -> Response:
    """Everything the field app keeps on the phone to work with no network: the micro-grids
    of my scope (with due-visit counts), its people under care (each written to the audit
    log as read), my open tasks, and the categories and needs lists. Not cached by proxies."""
    body = service.offline_pack(conn, principal, catalog, crs, ip, f"GET {request.url.path}")
    return RawJSONResponse(body, headers={"Cache-Control": "private, no-store"})
