"""Thin HTTP routes of service orders (三单制) and the volunteer and partner registries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query

from gis_service.auth.deps import ClientIp, limit_anonymous_reports, require
from gis_service.auth.principal import Principal
from gis_service.db.limits import BIGINT_MAX
from gis_service.http.deps import CatalogDep, Conn, Crs, SettingsDep, id_query, reject_unknown_query
from gis_service.http.errors import move_docs
from gis_service.http.listing import PageDep
from gis_service.http.responses import GeoJSONResponse
from gis_service.orders import service
from gis_service.orders.schemas import (
    OrderActionIn,
    OrderIn,
    PartnerIn,
    PartnerPatch,
    VolunteerIn,
    VolunteerPatch,
)

router = APIRouter(prefix="/api/v1", tags=["三单制"], dependencies=[Depends(reject_unknown_query)])

ORDERING = require(scopes={"report"}, allow_anonymous=True)
STAFF_READ = require(scopes={"read_private"})
STAFF_WRITE = require(scopes={"write"})
DISPATCHERS = require(scopes={"dispatch"})
Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
OptId = Annotated[int | None, id_query("One row.")]
Subtree = Annotated[int | None, id_query("Only rows of this grid's subtree.")]


@router.post(
    "/orders",
    status_code=201,
    summary="群众点单: a resident orders a service (上门认证, 送轮椅, 疏通下水道 …)",
    responses={422: {"description": "Unknown service, or a point outside every grid."}},
)
def place_order(
    conn: Conn,
    catalog: CatalogDep,
    settings: SettingsDep,
    ip: ClientIp,
    body: Annotated[OrderIn, Body()],
    principal: Annotated[Principal, Depends(ORDERING)],
    _limited: Annotated[None, Depends(limit_anonymous_reports)],
) -> dict:
    """Routed to the finest grid at the point, like a report; the resident's name and phone
    are private. Anonymous orders share the reports' rate limit."""
    return service.place(conn, catalog, principal, body, settings.local_timezone, ip)


@router.get(
    "/orders",
    response_class=GeoJSONResponse,
    summary="Service orders of your scope as GeoJSON (the map's and the workbench's layer)",
)
def list_orders(
    conn: Conn,
    crs: Crs,
    page: PageDep,
    principal: Annotated[Principal, Depends(STAFF_READ)],
    status: Annotated[
        Literal["ordered", "dispatched", "taken", "done", "rated", "cancelled"] | None,
        Query(description="One state of the order machine."),
    ] = None,
    grid: Subtree = None,
) -> GeoJSONResponse:
    """Newest first, each with its volunteer or partner, hours, rating and history."""
    body = service.orders(
        conn, principal, crs=crs, status=status, grid=grid, order_id=None,
        limit=page.limit, offset=page.offset,
    )  # fmt: skip
    return GeoJSONResponse(body)


@router.get(
    "/orders/{order_id}",
    response_class=GeoJSONResponse,
    summary="One service order with its history",
    responses={404: {"description": "No such order in your scope."}},
)
def get_order(
    conn: Conn, crs: Crs, order_id: Id, principal: Annotated[Principal, Depends(STAFF_READ)]
) -> GeoJSONResponse:
    """The order as a FeatureCollection of one feature (or 404)."""
    body = service.orders(
        conn, principal, crs=crs, status=None, grid=None, order_id=order_id, limit=1, offset=0
    )
    return GeoJSONResponse(body)


@router.post(
    "/orders/{order_id}/actions",
    summary="派单, 接单, 拒单, 完成, 评价, 取消 or 备注",
    responses=move_docs("order", private=True),
)
def order_action(
    conn: Conn,
    ip: ClientIp,
    order_id: Id,
    body: Annotated[OrderActionIn, Body()],
    principal: Annotated[Principal, Depends(STAFF_WRITE)],
) -> dict:
    """The community dispatches (dispatch scope); staff record the volunteer's take, finish
    (with hours) and the resident's rating (write scope)."""
    return service.act(conn, principal, order_id, body, ip)


@router.get("/volunteers", summary="Volunteers of your scope: skills, party members, hours")
def list_volunteers(
    conn: Conn,
    page: PageDep,
    principal: Annotated[Principal, Depends(STAFF_READ)],
    skill: Annotated[str | None, Query(max_length=40)] = None,
    party_member: Annotated[bool | None, Query()] = None,
    id: OptId = None,
    grid: Subtree = None,
) -> dict:
    """Party members first; phones only for staff whose scope covers the volunteer's grid."""
    return service.volunteers(
        conn, principal, skill, party_member, id, grid, page.limit, page.offset
    )


@router.post(
    "/volunteers",
    status_code=201,
    summary="Register a volunteer of a grid",
    responses={404: {"description": "The grid is outside your scope."}},
)
def add_volunteer(
    conn: Conn,
    ip: ClientIp,
    body: Annotated[VolunteerIn, Body()],
    principal: Annotated[Principal, Depends(DISPATCHERS)],
) -> dict:
    """Community or street staff register the volunteers of their grids."""
    return service.register(conn, principal, "volunteers", body, ip)


@router.patch(
    "/volunteers/{volunteer_id}",
    summary="Change a volunteer (skills, party membership, phone, active)",
    responses={404: {"description": "No such volunteer in your scope."}},
)
def patch_volunteer(
    conn: Conn,
    ip: ClientIp,
    volunteer_id: Id,
    body: Annotated[VolunteerPatch, Body()],
    principal: Annotated[Principal, Depends(DISPATCHERS)],
) -> dict:
    """Only the fields sent change."""
    return service.patch(conn, principal, "volunteers", volunteer_id, body, ip)


@router.get("/partners", summary="Partner units (共建单位) of your scope and what they offer")
def list_partners(
    conn: Conn,
    page: PageDep,
    principal: Annotated[Principal, Depends(STAFF_READ)],
    offer: Annotated[str | None, Query(max_length=40)] = None,
    id: OptId = None,
    grid: Subtree = None,
) -> dict:
    """The resources list (资源清单) the community dispatches and whistles to."""
    return service.partners(conn, principal, offer, id, grid, page.limit, page.offset)


@router.post(
    "/partners",
    status_code=201,
    summary="Register a partner unit",
    responses={
        404: {"description": "The grid is outside your scope."},
        409: {"description": "Name taken."},
    },
)
def add_partner(
    conn: Conn,
    ip: ClientIp,
    body: Annotated[PartnerIn, Body()],
    principal: Annotated[Principal, Depends(DISPATCHERS)],
) -> dict:
    """A unit and the services it offers, serving a community in your scope."""
    return service.register(conn, principal, "partner_units", body, ip)


@router.patch(
    "/partners/{partner_id}",
    summary="Change a partner unit",
    responses={404: {"description": "No such partner unit in your scope."}},
)
def patch_partner(
    conn: Conn,
    ip: ClientIp,
    partner_id: Id,
    body: Annotated[PartnerPatch, Body()],
    principal: Annotated[Principal, Depends(DISPATCHERS)],
) -> dict:
    """Only the fields sent change."""
    return service.patch(conn, principal, "partner_units", partner_id, body, ip)
