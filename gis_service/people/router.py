"""Thin HTTP routes of the people API: find and keep people, give and end their roles on
grids, hand a grid's leadership over, and the grid tree of the 人员 screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from gis_service.auth.deps import PUBLIC_READ, acting_as, require
from gis_service.auth.principal import Principal
from gis_service.db.limits import BIGINT_MAX
from gis_service.http.deps import Conn, id_path, id_query, reject_unknown_query
from gis_service.http.errors import LOG_IN_FIRST, error_docs
from gis_service.http.listing import FormatDep, OutputFormat, PageDep, csv_response
from gis_service.http.responses import RawJSONResponse
from gis_service.people import schemas, service, sql

router = APIRouter(prefix="/api/v1", tags=["people"], dependencies=[Depends(reject_unknown_query)])

# Reading people is staff work (names with mobile phones, notes, party membership); changing
# them is for the offices that keep the grids: street and community staff, and admins.
READERS = require(scopes={"read_private"})
EDITORS = require(roles={"admin", "street_staff", "community_staff"})
Reader = Annotated[Principal, Depends(READERS)]
Editing = acting_as(EDITORS)

Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
GridId = Annotated[int, id_path("Grid id.")]

_AUTH = (
    LOG_IN_FIRST,
    (403, "forbidden", "Your role or scope does not allow this."),
)
_READ_ERRORS = error_docs(
    *_AUTH,
    (400, "bad_request", "Unknown query parameter."),
    (404, "not_found", "No such object in your scope."),
    (422, "invalid_parameter", "A parameter is invalid."),
)
_WRITE_ERRORS = error_docs(
    *_AUTH,
    (403, "out_of_scope", "A row the change touches lies outside your scope."),
    (404, "not_found", "No such object in your scope."),
    (409, "leader_taken", "The grid has a leader already: replace them."),
    (409, "already_assigned", "The person holds that role there already."),
    (409, "grid_retired", "The grid version has ended; use its current version."),
    (422, "invalid_parameter", "A field is invalid (a phone that is not a phone, …)."),
    (422, "ends_before_start", "An assignment must end after it starts."),
    (422, "unknown_role", "The role is not in the catalogue."),
    (422, "date_out_of_range", "Dates lie between 1900 and a year ahead."),
)


def _route(
    method: str, path: str, model: Any, summary: str, status_code: int | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A people route: JSON built by PostgreSQL, its model, and the errors of a read (GET) or
    of a write (the other methods)."""
    return router.api_route(
        path,
        methods=[method],
        status_code=status_code,
        response_class=RawJSONResponse,
        response_model=model,
        responses=_READ_ERRORS if method == "GET" else _WRITE_ERRORS,
        summary=summary,
    )


@router.get(
    "/assignment-roles",
    response_class=RawJSONResponse,
    response_model=list[schemas.RoleOut],
    summary="The roles people hold on grids",
    dependencies=[Depends(PUBLIC_READ)],
)
def list_roles(conn: Conn) -> RawJSONResponse:
    """The catalogue of roles (layers/assignment_roles.yaml): names, the grid levels each is
    held on, and the levels whose primary person (reports route to them) it is."""
    return RawJSONResponse(service.role_catalogue(conn))


@_route("GET", "/people", schemas.PersonList, "Find people in my scope")
def search_people(
    conn: Conn,
    principal: Reader,
    page: PageDep,
    fmt: FormatDep,
    q: Annotated[
        str | None,
        Query(max_length=50, description="Part of a name, or digits of a phone number."),
    ] = None,
    grid: Annotated[
        str | None,
        Query(max_length=64, description="People serving in this grid's subtree (id or code)."),
    ] = None,
    role: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="Role code.")
    ] = None,
    active: Annotated[
        bool | None, Query(description="true (default): in service; false: retired.")
    ] = True,
) -> Response:
    """People whose record or grids lie in your subtree, by name, phone, grid or role, with
    their current roles and account; ``f=csv`` for a spreadsheet."""
    params = service.search_params(conn, principal, q, grid, role, active)
    if fmt is OutputFormat.csv:
        return csv_response(conn, sql.SEARCH_CSV, {**params, **page.as_params()}, "people")
    return RawJSONResponse(
        service.search(
            conn, principal, q=q, grid=grid, role=role, active=active, **page.as_params()
        )
    )


@_route("POST", "/people", schemas.PersonOut, "Add a person", 201)
def create_person(body: schemas.PersonIn, edit: Editing) -> RawJSONResponse:
    """A person kept by a grid of your subtree (default: your scope's root). Phones are
    mainland mobile or landline numbers; the reason goes to the audit log."""
    return RawJSONResponse(
        service.create_person(edit.conn, edit.principal, body, edit.ip), status_code=201
    )


@_route(
    "GET", "/people/{person_id}", schemas.PersonOut, "One person with their roles, now and before"
)
def get_person(person_id: Id, conn: Conn, principal: Reader) -> RawJSONResponse:
    """The person, their record grid, account, and every assignment with who made and ended
    it and why (newest first). Outside your scope: 404."""
    return RawJSONResponse(service.get_person(conn, principal, person_id))


@_route("PATCH", "/people/{person_id}", schemas.PersonOut, "Change a person")
def update_person(person_id: Id, body: schemas.PersonPatch, edit: Editing) -> RawJSONResponse:
    """Name, phones, party membership, notes, record grid or in-service state; every grid the
    person lies in must be in your subtree."""
    return RawJSONResponse(
        service.update_person(edit.conn, edit.principal, person_id, body, edit.ip)
    )


@_route(
    "GET",
    "/grids/{grid_id}/assignments",
    schemas.GridPeople,
    "A grid's people by role, its leader or gap, and its history",
)
def grid_people(
    grid_id: GridId,
    conn: Conn,
    principal: Reader,
    history: Annotated[
        int, Query(ge=0, le=1000, description="How many past assignments (newest first).")
    ] = service.HISTORY_ROWS,
) -> RawJSONResponse:
    """Who holds which role on the grid now and since when, who is scheduled, and who held
    roles before (every version of the grid's code), each with who made or ended it and why.
    ``gap`` is true when the grid needs a leader and has none."""
    return RawJSONResponse(service.grid_people(conn, principal, grid_id, history))


@_route(
    "POST", "/grids/{grid_id}/assignments", schemas.ChangeOut, "Give a person a role on a grid", 201
)
def assign(grid_id: GridId, body: schemas.AssignmentIn, edit: Editing) -> RawJSONResponse:
    """A role from a date (default now), until a date if known. The role that leads the
    grid's level makes the person its primary person; when the grid has one, replace them
    with PUT /grids/{grid_id}/leader instead."""
    change = service.assign(edit.conn, edit.principal, grid_id, body, edit.ip)
    return RawJSONResponse(service.change_json(edit.conn, edit.principal, change), status_code=201)


@_route("PUT", "/grids/{grid_id}/leader", schemas.ChangeOut, "Replace a grid's leader in one step")
def replace_leader(grid_id: GridId, body: schemas.LeaderIn, edit: Editing) -> RawJSONResponse:
    """Ends the current primary person (网格长 of a grid, 微网格员 of a micro-grid …) and starts
    the new one at the same moment, in one transaction; locate names the new one at once and
    the old one for earlier dates."""
    change = service.replace_leader(edit.conn, edit.principal, grid_id, body, edit.ip)
    return RawJSONResponse(service.change_json(edit.conn, edit.principal, change))


@_route("POST", "/assignments/{assignment_id}/end", schemas.ChangeOut, "End an assignment")
def end_assignment(
    assignment_id: Id, body: schemas.AssignmentEnd, edit: Editing
) -> RawJSONResponse:
    """Ends the role on a date (default now); it stays in the grid's and the person's
    history."""
    change = service.end_assignment(edit.conn, edit.principal, assignment_id, body, edit.ip)
    return RawJSONResponse(service.change_json(edit.conn, edit.principal, change))


@_route("GET", "/roster", schemas.Roster, "The grid tree with leaders and gaps")
def roster(
    conn: Conn,
    principal: Reader,
    parent: Annotated[
        int | None,
        id_query("A grid; default: your scope's root grids."),
    ] = None,
) -> RawJSONResponse:
    """The current children of a grid, each with its leader now, its number of children and
    how many grids below it need a leader and have none (the coverage check's no_leader)."""
    return RawJSONResponse(service.roster(conn, principal, parent))
