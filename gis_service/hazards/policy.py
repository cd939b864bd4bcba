"""Who may do what to a hazard: the one permission rule of the closed loop, pure (no
database, no HTTP), used by every move and by the list of moves offered to a caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLE_NAMES_ZH, ROLES
from gis_service.errors import DomainError, Forbidden, Unauthorized
from gis_service.hazards.workflow import EXCEPTION_OF_ACTION, MOVES, allowed_actions


class HazardRef(Protocol):
    """What the rule needs to know of a hazard (a row, or any object with these)."""

    public_code: str
    status: str
    grid_path: Sequence[int] | None
    assignee_person_id: int | None


def authorize_move(principal: Principal, hazard: HazardRef | Any, action: str) -> None:
    """May ``principal`` make ``action`` on ``hazard``? Unauthorized or Forbidden if not.

    - Decisions of the community (accept, reject, dispatch, verify, close, escalate, reopen,
      mark a duplicate) need the ``dispatch`` scope inside the caller's grid subtree: admins and
      street staff everywhere below them, community staff in their community.
    - The handler's own work (start, resolve, comment) needs ``write`` inside the subtree, or
      the hazard assigned to the caller's person: grid leaders and field staff.
    - The handler may also blow the whistle (escalate) on a case assigned to them.
    - Nobody verifies their own work (admins excepted).
    """
    if not principal.authenticated:
        raise Unauthorized("Log in to work on hazards.")
    move = MOVES[action]
    path = list(hazard.grid_path or ())
    assigned = principal.person_id is not None and hazard.assignee_person_id == principal.person_id
    if move.scope == "dispatch":
        ok = principal.can("dispatch", path)
        if not ok and action == "escalate":
            ok = assigned and principal.has("write")
    else:
        ok = principal.can_work_on(path, hazard.assignee_person_id, "write")
    if not ok:
        where = (
            "inside your grid subtree"
            if move.scope == "dispatch"
            else "inside your grid subtree or assigned to you"
        )
        raise Forbidden(
            f"You may not '{action}' hazard {hazard.public_code}: it needs the "
            f"'{move.scope}' scope on a hazard {where}.",
            action=action,
            needs_scope=move.scope,
        )
    if action in ("verify", "fail_verification") and assigned and not principal.is_admin:
        raise Forbidden(
            "Nobody verifies their own work: another person must verify this hazard.",
            action=action,
        )
    step = EXCEPTION_OF_ACTION.get(action, ("", ""))[1]
    if step in ("approve", "refuse"):
        authorize_decision(principal, hazard, action)


def role_rank(role: str | None) -> int:
    """0 for the most powerful role (admin), larger further down; no role ranks lowest."""
    return ROLES.index(role) if role in ROLES else len(ROLES)


def authorize_decision(principal: Principal, hazard: HazardRef | Any, action: str) -> None:
    """An exception (延期, 缓办, 退回, 作废) is decided by a person whose role is above the
    requester's (GB/T 30428.8 and local manuals: the request goes up one level), never by the
    requester. Admins decide their own requests' peers only when the requester is below them."""
    if principal.kind != "user":
        raise Forbidden(
            "An approval is a person's decision: log in as a user with a role above the "
            "requester's.",
            action=action,
        )
    requester_role = getattr(hazard, "requester_role", None)
    if getattr(hazard, "pending_requested_by", None) == principal_tag(principal):
        raise Forbidden("Nobody approves their own request.", action=action)
    if role_rank(principal.role) >= role_rank(requester_role):
        above = [ROLE_NAMES_ZH[r] for r in ROLES[: role_rank(requester_role)]]
        raise Forbidden(
            f"The request was made by a {requester_role or 'system'}; only a role above it may "
            f"decide it ({', '.join(above) or 'nobody'}).",
            action=action,
            requester_role=requester_role,
            code="approval_needs_higher_role",
        )


def case_facts(hazard: HazardRef | Any) -> list[str]:
    """The facts the moves' guards look at: a request waiting (pending:<kind>) or none
    (no_pending), and an unsatisfied callback inside the rework window."""
    pending = getattr(hazard, "pending_kind", None)
    facts = [f"pending:{pending}"] if pending else ["no_pending"]
    if getattr(hazard, "rework_open", False):
        facts.append("callback:dissatisfied")
    return facts


def moves_for(principal: Principal, hazard: HazardRef | Any) -> list[str]:
    """The moves the state allows and this principal may make, for clients' buttons."""
    out = []
    for action in allowed_actions(hazard.status, case_facts(hazard)):
        try:
            authorize_move(principal, hazard, action)
        except DomainError:
            continue
        out.append(action)
    return out


def may_read_private(principal: Principal, grid_path: Sequence[int] | None) -> bool:
    """Reporter contact and original photos: read_private inside the principal's subtree."""
    return principal.can("read_private", grid_path)


def principal_tag(principal: Principal) -> str:
    """How a report records its submitter: 'user:12', 'api_key:3' or 'anonymous'."""
    return principal.tag()
