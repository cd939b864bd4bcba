"""Thin HTTP routes of 吹哨报到: call parties in on a case, list calls, move a call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query

from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.db.limits import BIGINT_MAX
from gis_service.http.deps import Conn, id_query, reject_unknown_query
from gis_service.http.errors import move_docs
from gis_service.http.listing import PageDep
from gis_service.whistles import service
from gis_service.whistles.schemas import WhistleActionIn, WhistleIn

router = APIRouter(
    prefix="/api/v1", tags=["吹哨报到"], dependencies=[Depends(reject_unknown_query)]
)

DISPATCHERS = require(scopes={"dispatch"})
STAFF_READ = require(scopes={"read_private"})
STAFF_WRITE = require(scopes={"write"})
Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


@router.post(
    "/hazards/{hazard_id}/whistles",
    status_code=201,
    summary="社区吹哨: call departments or partner units in on a case",
    responses={
        403: {"description": "Only the community (dispatch scope) blows the whistle."},
        404: {"description": "No such case in your scope."},
        409: {"description": "The case is closed."},
        422: {"description": "Unknown department or partner, or a bad limit."},
    },
)
def blow_whistle(
    conn: Conn,
    ip: ClientIp,
    hazard_id: Id,
    body: Annotated[WhistleIn, Body()],
    principal: Annotated[Principal, Depends(DISPATCHERS)],
) -> dict:
    """Each party gets a deadline to report in (报到, default 2 工作时) and one to act (default
    3 工作日), in working time; the call is a step of the case's history."""
    return service.call_in(conn, principal, hazard_id, body, ip)


@router.get(
    "/whistles",
    summary="吹哨 calls in your scope, with their report-in deadlines and late flags",
)
def whistle_calls(
    conn: Conn,
    page: PageDep,
    principal: Annotated[Principal, Depends(STAFF_READ)],
    hazard: Annotated[int | None, id_query("One case.")] = None,
    grid: Annotated[int | None, id_query("A grid subtree.")] = None,
    status: Annotated[
        Literal["called", "reported_in", "finished", "withdrawn"] | None,
        Query(description="called (已吹哨), reported_in (已报到), finished, withdrawn."),
    ] = None,
    late: Annotated[bool | None, Query(description="Only late report-ins (true) or not.")] = None,
) -> dict:
    """Newest first; ``late`` is a report-in after its deadline, or none yet past it."""
    return service.list_calls(
        conn,
        principal,
        hazard=hazard,
        grid=grid,
        status=status,
        late=late,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/whistles/{call_id}/actions",
    summary="报到, 报告进展, 办结 (a called party) or 撤回 (the community)",
    responses=move_docs("call", private=True),
)
def whistle_action(
    conn: Conn,
    ip: ClientIp,
    call_id: Id,
    body: Annotated[WhistleActionIn, Body()],
    principal: Annotated[Principal, Depends(STAFF_WRITE)],
) -> dict:
    """Staff record a department's report-in on its behalf; a report-in after the deadline
    is marked late (and counted per department in the assessment)."""
    return service.act(conn, principal, call_id, body, ip)
