"""People and their roles on grids, with no HTTP: find, read, create and change people; give,
end and hand over roles. The CLI and the routes share it.

Scope. A person's record lies in the grid that keeps it and in the grids they serve on now
(or, when neither is left, the grids they served on). A caller sees a person when any of
those grids lies in their subtree, and may change the record only when all of them do (the
change shows on every one of those grids). A role on a grid is changed by whoever's subtree
holds the grid. Every write checks this on each row it touches, before and after, and writes
its audit row (who and why) in the same transaction. ``principal`` None is the system (a
command run on the server), which may do anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from gis_service.auth import audit
from gis_service.auth.admin import resolve_grid
from gis_service.auth.principal import Principal
from gis_service.db.transaction import transaction
from gis_service.errors import Conflict, Forbidden, Invalid, NotFound
from gis_service.people import sql
from gis_service.people.phones import phone_digits
from gis_service.people.schemas import (
    AssignmentEnd,
    AssignmentIn,
    LeaderIn,
    NewPerson,
    PersonIn,
    PersonPatch,
)
from gis_service.people.scope import check_person_write, person_grids, readable
from gis_service.plaintext import clean_text, decimal_id, like_literal

# How far from today an assignment may start or end: history goes back a long way, plans
# do not reach far ahead (a typo of a year must not schedule a leader for 2206).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=366)
HISTORY_ROWS = 200
_PERSON_FIELDS = ("name", "work_phone", "mobile_phone", "party_member", "notes", "grid_id")


@dataclass(frozen=True)
class Role:
    """A role of the catalogue."""

    code: str
    name_zh: str
    name_en: str
    rank: int
    leader: bool
    levels: tuple[str, ...]
    primary_for: tuple[str, ...]
    active: bool


def roles(conn: Connection) -> dict[str, Role]:
    """Every role, active or retired, by code."""
    return {
        r.code: Role(
            r.code,
            r.name_zh,
            r.name_en,
            r.rank,
            r.leader,
            tuple(r.levels),
            tuple(r.primary_for),
            r.active,
        )
        for r in conn.execute(sql.ROLES)
    }


def role_catalogue(conn: Connection) -> str:
    """The active roles as a JSON array (for forms)."""
    return conn.execute(sql.ROLES_JSON).scalar_one()


def leader_role(catalogue: dict[str, Role], level: str) -> Role | None:
    """The role whose holder is the primary person of grids of ``level``."""
    leading = [r for r in catalogue.values() if r.active and level in r.primary_for]
    return min(leading, key=lambda r: r.rank) if leading else None


def _role(catalogue: dict[str, Role], code: str, level: str) -> Role:
    """The active role ``code``, which may be held on a grid of ``level``; 422 otherwise."""
    role = catalogue.get(code)
    if role is None or not role.active:
        names = ", ".join(f"{r.code} ({r.name_zh})" for r in catalogue.values() if r.active)
        raise Invalid(
            f"Unknown role {code!r}. Roles (layers/assignment_roles.yaml): {names}.",
            code="unknown_role",
            role=code,
        )
    if role.levels and level not in role.levels:
        raise Invalid(
            f"A {role.name_en} ({role.name_zh}) serves on grids of level "
            f"{', '.join(role.levels)}, not on a {level}.",
            code="role_not_for_level",
            role=code,
            level=level,
            levels=list(role.levels),
        )
    return role


# ---- scope ----------------------------------------------------------------------------
def _check_grid_write(principal: Principal | None, grid: Row) -> None:
    """403 unless the grid lies in the caller's subtree."""
    if principal is None or principal.in_scope(grid.path):
        return
    raise Forbidden(
        f"Grid {grid.name} ({grid.code}) is outside your scope; you may change the people of "
        "grids in your own subtree only.",
        code="out_of_scope",
        grid=grid.id,
    )


def _lock_grid(conn: Connection, grid_id: int) -> Row:
    """The grid, locked; 404 when missing, 409 when it has been redrawn or retired."""
    grid = conn.execute(sql.LOCK_GRID, {"id": grid_id}).first()
    if grid is None:
        raise NotFound(f"Grid {grid_id} does not exist.", id=grid_id)
    if grid.valid_to is not None:
        hint = (
            f"its current version is grid {grid.current_id}"
            if grid.current_id
            else "it has no current version"
        )
        raise Conflict(
            f"Grid {grid.name} ({grid.code}) version {grid_id} ended on "
            f"{grid.valid_to:%Y-%m-%d}; {hint}.",
            code="grid_retired",
            current_id=grid.current_id,
        )
    return grid


def _home_grid(
    conn: Connection, principal: Principal | None, ref: int | str | None
) -> dict[str, Any] | None:
    """The grid that keeps a record: the one named, else the caller's scope root."""
    if ref is None:
        if principal is None or principal.whole_territory:
            return None
        ref = principal.grid_id
    grid = resolve_grid(conn, ref)
    if grid is not None and principal is not None and not principal.in_scope(grid["path"]):
        raise Forbidden(
            f"Grid {grid['name']} ({grid['code']}) is outside your scope; keep the record in a "
            "grid of your own subtree.",
            code="out_of_scope",
            grid=grid["id"],
        )
    return grid


# ---- times -------------------------------------------------------------------------------
def _now(conn: Connection) -> datetime:
    return conn.execute(sql.NOW).scalar_one()


def _bounded(when: datetime | None, now: datetime, field: str) -> datetime | None:
    """``when`` when it lies between 1900 and a year ahead; 422 otherwise."""
    if when is None:
        return None
    if when < EARLIEST or when > now + MAX_AHEAD:
        raise Invalid(
            f"{field} {when:%Y-%m-%d} is out of range: give a date between "
            f"{EARLIEST:%Y-%m-%d} and {now + MAX_AHEAD:%Y-%m-%d}.",
            code="date_out_of_range",
            field=field,
        )
    return when


def _ordered(start: datetime, end: datetime | None) -> None:
    """422 when an assignment would end at or before it starts."""
    if end is not None and end <= start:
        raise Invalid(
            f"An assignment must end after it starts: it starts {start:%Y-%m-%d %H:%M} UTC and "
            f"would end {end:%Y-%m-%d %H:%M} UTC.",
            code="ends_before_start",
            valid_from=start.isoformat(),
            valid_to=end.isoformat(),
        )


# ---- snapshots for the audit log ---------------------------------------------------------
def _person_snapshot(row: Any) -> dict[str, Any]:
    data = row._mapping if hasattr(row, "_mapping") else row
    return {k: data[k] for k in (*_PERSON_FIELDS, "active")}


def _assignment_snapshot(
    grid: Row, person_id: int, person_name: str, role: str, primary: bool, start: Any, end: Any
) -> dict[str, Any]:
    return {
        "grid_id": grid.id,
        "grid_code": grid.code,
        "person_id": person_id,
        "person_name": person_name,
        "role": role,
        "is_primary": primary,
        "valid_from": start,
        "valid_to": end,
    }


# ---- reads -------------------------------------------------------------------------------
def search_params(
    conn: Connection,
    principal: Principal | None,
    q: str | None = None,
    grid: int | str | None = None,
    role: str | None = None,
    active: bool | None = True,
) -> dict[str, Any]:
    """Bound parameters of SEARCH / SEARCH_CSV (404 for a grid outside the scope)."""
    try:
        q = clean_text(q) if q else None
        grid = clean_text(grid) if isinstance(grid, str) else grid
    except ValueError as exc:
        raise Invalid(f"Search terms {exc}.", code="invalid_parameter") from exc
    within = None
    if grid is not None and grid != "":
        found = resolve_grid(conn, grid)
        assert found is not None
        if principal is not None and not principal.in_scope(found["path"]):
            raise NotFound(f"Grid {grid} is outside your scope.", grid=str(grid))
        within = conn.execute(sql.GRID_VERSIONS, {"code": found["code"]}).scalar_one()
    term = (q or "").strip() or None
    digits = phone_digits(term) if term else ""
    is_phone = term is not None and len(digits) >= 3 and re.fullmatch(r"[\d\s+()\-]+", term)
    return {
        "scope": None if principal is None else principal.scope_filter(),
        "name": like_literal(term) if term else None,
        "digits": digits if is_phone else None,
        "within": within,
        "role": role,
        "active": active,
    }


def search(
    conn: Connection,
    principal: Principal | None,
    *,
    q: str | None = None,
    grid: int | str | None = None,
    role: str | None = None,
    active: bool | None = True,
    limit: int = 50,
    offset: int = 0,
) -> str:
    """People in the caller's scope matching a name, phone digits, grid subtree or role."""
    params = search_params(conn, principal, q, grid, role, active)
    return conn.execute(sql.SEARCH, {**params, "limit": limit, "offset": offset}).scalar_one()


def get_person(conn: Connection, principal: Principal | None, person_id: int) -> str:
    """One person with every assignment, as JSON; 404 outside the scope."""
    readable(conn, principal, person_id)
    return conn.execute(sql.PERSON, {"id": person_id}).scalar_one()


def person_record(conn: Connection, principal: Principal | None, person_id: int) -> dict:
    """One person as a dict (for the CLI and the account checks)."""
    return json.loads(get_person(conn, principal, person_id))


def grid_people(
    conn: Connection, principal: Principal | None, grid_id: int, history: int = HISTORY_ROWS
) -> str:
    """A grid's people now, scheduled and past, and its leader or gap, as JSON."""
    grid = conn.execute(sql.GRID_BRIEF, {"id": grid_id}).first()
    if grid is None or (principal is not None and not principal.in_scope(grid.path)):
        raise NotFound(f"Grid {grid_id} does not exist or is outside your scope.", id=grid_id)
    return conn.execute(sql.GRID_PEOPLE, {"id": grid_id, "history": history}).scalar_one()


def roster(conn: Connection, principal: Principal | None, parent: int | None) -> str:
    """The children of ``parent`` (or the caller's scope roots) with leaders and gaps."""
    parent_json = None
    roots = None
    if parent is not None:
        grid = conn.execute(sql.GRID_BRIEF, {"id": parent}).first()
        if grid is None or (principal is not None and not principal.in_scope(grid.path)):
            raise NotFound(f"Grid {parent} does not exist or is outside your scope.", id=parent)
        parent_json = {"id": grid.id, "code": grid.code, "name": grid.name, "level": grid.level}
    elif principal is not None and not principal.whole_territory:
        ids = sorted(principal.scope_ids or {principal.grid_id or 0})
        roots = conn.execute(sql.SCOPE_ROOTS, {"ids": ids}).scalar_one() or []
    grids = conn.execute(sql.ROSTER, {"parent": parent, "roots": roots}).scalar_one()
    return f'{{"parent": {json.dumps(parent_json, ensure_ascii=False)}, "grids": {grids}}}'


# ---- writes: people ----------------------------------------------------------------------
def _insert_person(
    conn: Connection,
    principal: Principal | None,
    new: NewPerson,
    notes: str | None,
    home: dict[str, Any] | None,
    reason: str,
    ip: str | None,
) -> int:
    values = {
        "name": new.name,
        "work_phone": new.work_phone,
        "mobile_phone": new.mobile_phone,
        "party_member": new.party_member,
        "notes": notes or None,
        "grid_id": home["id"] if home else None,
    }
    person_id = conn.execute(sql.INSERT_PERSON, values).scalar_one()
    audit.record(
        conn,
        principal,
        "create",
        "person",
        person_id,
        None,
        {**values, "active": True},
        values["grid_id"],
        ip,
        reason=reason,
    )
    return person_id


def create_person(
    conn: Connection, principal: Principal | None, body: PersonIn, ip: str | None = None
) -> str:
    """Create a person kept by a grid in the caller's scope; the new record as JSON."""
    with transaction(conn):
        home = _home_grid(conn, principal, body.grid)
        person_id = _insert_person(conn, principal, body, body.notes, home, body.reason, ip)
        check_person_write(principal, person_id, person_grids(conn, person_id))
    return get_person(conn, principal, person_id)


def update_person(
    conn: Connection,
    principal: Principal | None,
    person_id: int,
    patch: PersonPatch,
    ip: str | None = None,
) -> str:
    """Change a person's name, phones, party membership, notes, record grid or state."""
    given = patch.model_fields_set - {"reason"}
    with transaction(conn):
        rows = readable(conn, principal, person_id)
        check_person_write(principal, person_id, rows)
        before = conn.execute(sql.LOCK_PERSON, {"id": person_id}).one()
        values = _person_snapshot(before)
        for key in given - {"grid"}:
            values[key] = getattr(patch, key)
        if "grid" in given:
            home = _home_grid(conn, principal, patch.grid) if patch.grid is not None else None
            values["grid_id"] = home["id"] if home else None
        if values == _person_snapshot(before):
            raise Conflict("Nothing to change: the record already says that.", code="unchanged")
        conn.execute(sql.UPDATE_PERSON, {**values, "id": person_id})
        check_person_write(principal, person_id, person_grids(conn, person_id))
        audit.record(
            conn,
            principal,
            "update",
            "person",
            person_id,
            _person_snapshot(before),
            values,
            values["grid_id"] or (rows[0].id if rows else None),
            ip,
            reason=patch.reason,
        )
    return get_person(conn, principal, person_id)


# ---- writes: roles on grids --------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """What a change of a grid's people did."""

    grid_id: int
    ended: list[int]
    started: list[int]


def change_json(conn: Connection, principal: Principal | None, change: Change) -> str:
    """A change and the grid's people after it, as JSON."""
    people = grid_people(conn, principal, change.grid_id)
    return f'{{"ended": {change.ended}, "started": {change.started}, "grid": {people}}}'


def _who(
    conn: Connection,
    principal: Principal | None,
    grid: Row,
    person_id: int | None,
    new: NewPerson | None,
    reason: str,
    ip: str | None,
) -> tuple[int, str]:
    """The person taking a role: an existing one the caller sees, or a new one kept here."""
    if new is not None:
        home = {"id": grid.id}
        return _insert_person(conn, principal, new, None, home, reason, ip), new.name
    assert person_id is not None
    readable(conn, principal, person_id)
    person = conn.execute(sql.LOCK_PERSON, {"id": person_id}).one()
    if not person.active:
        raise Conflict(
            f"{person.name} (person {person_id}) is marked as no longer in service; make the "
            "record active again first.",
            code="person_inactive",
            id=person_id,
        )
    return person_id, person.name


def _insert_assignment(
    conn: Connection,
    principal: Principal | None,
    grid: Row,
    person: tuple[int, str],
    role: Role,
    primary: bool,
    start: datetime | None,
    end: datetime | None,
    reason: str,
    ip: str | None,
) -> int:
    person_id, name = person
    values = {
        "grid": grid.id,
        "person": person_id,
        "role": role.code,
        "is_primary": primary,
        "valid_from": start,
        "valid_to": end,
    }
    clash = conn.execute(sql.OVERLAPPING, values).first()
    if clash is not None:
        raise Conflict(
            f"{name} already holds the role {role.name_zh} on {grid.name} for that time "
            f"(assignment {clash.id}, from {clash.valid_from:%Y-%m-%d}).",
            code="already_assigned",
            assignment_id=clash.id,
        )
    # No savepoint: the assignment and its audit row then carry the one transaction id (the
    # audit test checks it). A clash still refuses the write as a whole.
    try:
        row = conn.execute(sql.INSERT_ASSIGNMENT, values).one()
    except IntegrityError as exc:
        # grid_assignments_one_primary: a concurrent change made someone else primary.
        raise Conflict(
            f"{grid.name} has another primary person for that time; reload and try again.",
            code="leader_taken",
        ) from exc
    audit.record(
        conn,
        principal,
        "create",
        "grid_assignment",
        row.id,
        None,
        _assignment_snapshot(grid, person_id, name, role.code, primary, row.valid_from, end),
        grid.id,
        ip,
        reason=reason,
    )
    return row.id


def _end(
    conn: Connection,
    principal: Principal | None,
    assignment: Any,
    grid: Row,
    when: datetime | None,
    reason: str,
    ip: str | None,
) -> None:
    end = conn.execute(sql.END_ASSIGNMENT, {"id": assignment.id, "valid_to": when}).scalar_one()
    audit.record(
        conn,
        principal,
        "end",
        "grid_assignment",
        assignment.id,
        {"valid_to": assignment.valid_to},
        _assignment_snapshot(
            grid,
            assignment.person_id,
            assignment.person_name,
            assignment.role,
            assignment.is_primary,
            assignment.valid_from,
            end,
        ),
        grid.id,
        ip,
        reason=reason,
    )


def assign(
    conn: Connection,
    principal: Principal | None,
    grid_id: int,
    body: AssignmentIn,
    ip: str | None = None,
) -> Change:
    """Give a person a role on a grid from a date; the level's leading role makes them the
    grid's primary person, which needs the place to be free (else: replace_leader)."""
    with transaction(conn):
        grid = _lock_grid(conn, grid_id)
        _check_grid_write(principal, grid)
        role = _role(roles(conn), body.role, grid.level)
        now = _now(conn)
        start = _bounded(body.valid_from, now, "valid_from")  # type: ignore[arg-type]
        end = _bounded(body.valid_to, now, "valid_to")  # type: ignore[arg-type]
        _ordered(start or now, end)
        primary = grid.level in role.primary_for
        if primary:
            at = start or now
            for holder in conn.execute(sql.PRIMARIES_FROM, {"grid": grid.id, "at": at}):
                if end is None or holder.valid_from < end:
                    raise Conflict(
                        f"{grid.name} already has a {role.name_zh}: {holder.person_name} from "
                        f"{holder.valid_from:%Y-%m-%d}. Replace them in one step with "
                        f"PUT /api/v1/grids/{grid.id}/leader.",
                        code="leader_taken",
                        assignment_id=holder.id,
                    )
        person = _who(conn, principal, grid, body.person_id, body.person, body.reason, ip)
        new_id = _insert_assignment(
            conn, principal, grid, person, role, primary, start, end, body.reason, ip
        )
        _check_grid_write(principal, _lock_grid(conn, grid.id))
    return Change(grid.id, [], [new_id])


def replace_leader(
    conn: Connection,
    principal: Principal | None,
    grid_id: int,
    body: LeaderIn,
    ip: str | None = None,
) -> Change:
    """End the grid's primary person and start the new one at the same moment, in one
    transaction (a grid with no leader simply gets one)."""
    with transaction(conn):
        grid = _lock_grid(conn, grid_id)
        _check_grid_write(principal, grid)
        catalogue = roles(conn)
        if body.role is None:
            role = leader_role(catalogue, grid.level)
            if role is None:
                raise Invalid(
                    f"No role leads grids of level {grid.level}; "
                    "declare one with primary_for in layers/assignment_roles.yaml.",
                    code="no_leader_role",
                )
        else:
            role = _role(catalogue, body.role, grid.level)
            if grid.level not in role.primary_for:
                raise Invalid(
                    f"A {role.name_zh} does not lead a {grid.level}; give a role whose "
                    "primary_for includes it, or add the person with POST "
                    f"/api/v1/grids/{grid.id}/assignments.",
                    code="role_not_leading",
                    role=role.code,
                )
        now = _now(conn)
        at = _bounded(body.valid_from, now, "valid_from") or now  # type: ignore[arg-type]
        holders = list(conn.execute(sql.PRIMARIES_FROM, {"grid": grid.id, "at": at}))
        later = [h for h in holders if h.valid_from > at]
        if later:
            h = later[0]
            raise Conflict(
                f"A change of {grid.name}'s leader is already scheduled: {h.person_name} from "
                f"{h.valid_from:%Y-%m-%d}. End that assignment first (POST "
                f"/api/v1/assignments/{h.id}/end).",
                code="leader_scheduled",
                assignment_id=h.id,
            )
        current = holders[0] if holders else None
        if current is not None and body.person_id == current.person_id:
            raise Conflict(
                f"{current.person_name} already leads {grid.name}.",
                code="already_leader",
                assignment_id=current.id,
            )
        ended: list[int] = []
        if current is not None:
            _ordered(current.valid_from, at)
            _end(conn, principal, current, grid, at, body.reason, ip)
            ended.append(current.id)
        person = _who(conn, principal, grid, body.person_id, body.person, body.reason, ip)
        new_id = _insert_assignment(
            conn, principal, grid, person, role, True, at, None, body.reason, ip
        )
        _check_grid_write(principal, _lock_grid(conn, grid.id))
    return Change(grid.id, ended, [new_id])


def end_assignment(
    conn: Connection,
    principal: Principal | None,
    assignment_id: int,
    body: AssignmentEnd,
    ip: str | None = None,
) -> Change:
    """End an assignment on a date (default now)."""
    with transaction(conn):
        row = conn.execute(sql.LOCK_ASSIGNMENT, {"id": assignment_id}).first()
        if row is None:
            raise NotFound(f"Assignment {assignment_id} does not exist.", id=assignment_id)
        grid = conn.execute(sql.GRID_BRIEF, {"id": row.grid_id}).one()
        _check_grid_write(principal, grid)
        now = _now(conn)
        if row.valid_to is not None and row.valid_to <= now:
            raise Conflict(
                f"Assignment {assignment_id} ({row.person_name} on {row.grid_name}) ended on "
                f"{row.valid_to:%Y-%m-%d} already.",
                code="already_ended",
            )
        when = _bounded(body.valid_to, now, "valid_to") or now  # type: ignore[arg-type]
        _ordered(row.valid_from, when)
        _end(conn, principal, row, grid, when, body.reason, ip)
        _check_grid_write(principal, conn.execute(sql.GRID_BRIEF, {"id": row.grid_id}).one())
    return Change(row.grid_id, [assignment_id], [])


# ---- finding one person by what people know of them -------------------------------------
def find(
    conn: Connection, principal: Principal | None, term: str, active: bool | None = True
) -> list[dict[str, Any]]:
    """People matching a grid code (its people), else a name or phone digits: dicts with
    their current roles (for the command line)."""
    term = term.strip()
    grid = None
    if term and conn.execute(sql.CURRENT_GRID_CODE, {"code": term}).first() is not None:
        grid, term = term, ""
    found = search(conn, principal, q=term or None, grid=grid, active=active, limit=1000)
    return json.loads(found)["people"]


def resolve_person(
    conn: Connection, principal: Principal | None, ref: str | int, grid: int | str | None
) -> int:
    """A person by id, or by exact name among those kept by or serving in ``grid``'s subtree
    (the account's scope); 422 naming the candidates when there are none or several."""
    as_id = decimal_id(ref)
    if as_id is not None:
        return as_id
    try:
        name = clean_text(str(ref))
    except ValueError as exc:
        raise Invalid(f"The person's name {exc}.") from exc
    people = [
        p
        for p in json.loads(search(conn, principal, q=name, grid=grid, limit=1000))["people"]
        if p["name"] == name
    ]
    where = f" in grid {grid}'s subtree" if grid is not None else ""
    if not people:
        raise Invalid(
            f"Nobody called {name}{where} was found; check with `gis-service people find "
            f"{name}`, or give the person's id.",
            code="person_not_found",
        )
    if len(people) > 1:
        listed = "; ".join(
            f"{p['id']} ({', '.join(_roles_text(p)) or 'no current role'})" for p in people
        )
        raise Invalid(
            f"Several people are called {name}{where}: {listed}. Give the id instead.",
            code="person_ambiguous",
            ids=[p["id"] for p in people],
        )
    return people[0]["id"]


def _roles_text(person: dict[str, Any]) -> list[str]:
    return [
        f"{a['grid']['code']} {a['grid']['name']} {a['role_name']}"
        for a in person["assignments"]
        if a["state"] != "past"
    ]


def roles_text(person: dict[str, Any]) -> str:
    """A person's current roles as one line: 'code name role; …'."""
    return "; ".join(_roles_text(person)) or "-"
