"""Where a person's record lies, and who may see and change it.

A record lies in the grid that keeps it and in the grids the person serves on now (or, when
neither is left, the grids they served on). A caller sees a person when any of those grids
lies in their subtree, and may change the record only when all of them do. ``principal``
None is the system.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Row

from gis_service.auth.principal import Principal
from gis_service.errors import Forbidden, NotFound
from gis_service.people import sql


def person_grids(conn: Connection, person_id: int) -> list[Row]:
    """The person's grids: (kind, id, code, name, path), kind home, current or past."""
    return list(conn.execute(sql.PERSON_GRIDS, {"id": person_id}))


def serving(rows: Sequence[Row]) -> list[Row]:
    """The grids a record lies in: its own and current ones, else the past ones."""
    now = [r for r in rows if r.kind in ("home", "current")]
    return now or [r for r in rows if r.kind == "past"]


def sees(principal: Principal | None, rows: Sequence[Row]) -> bool:
    """Whether any of the grids lies in the caller's subtree."""
    if principal is None or principal.whole_territory:
        return True
    return any(principal.in_scope(r.path) for r in rows)


def readable(conn: Connection, principal: Principal | None, person_id: int) -> list[Row]:
    """The person's grids; 404 when the person does not exist or lies outside the scope."""
    rows = person_grids(conn, person_id)
    exists = rows or conn.execute(sql.PERSON_EXISTS, {"id": person_id}).first() is not None
    if not exists or not sees(principal, rows):
        raise NotFound(f"Person {person_id} does not exist or is outside your scope.", id=person_id)
    return rows


def check_person_write(principal: Principal | None, person_id: int, rows: Sequence[Row]) -> None:
    """403 unless every grid the record lies in is in the caller's subtree."""
    if principal is None or principal.whole_territory:
        return
    grids = serving(rows)
    outside = [r for r in grids if not principal.in_scope(r.path)]
    if not grids or outside:
        where = ", ".join(f"{r.name} ({r.code})" for r in outside) or "no grid at all"
        raise Forbidden(
            f"Person {person_id} also lies in {where}, outside your scope; staff whose scope "
            "covers every grid of the person may change the record.",
            code="out_of_scope",
            id=person_id,
        )


def serves_within(conn: Connection, person_id: int, root_ids: Sequence[int]) -> bool:
    """Whether the person's record lies in the subtree of any of ``root_ids``."""
    return any(set(r.path) & set(root_ids) for r in serving(person_grids(conn, person_id)))
