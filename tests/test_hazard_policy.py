"""The permission rule of the closed loop, on its own: no HTTP, no database.

Scopes come from the real roles (auth.roles); a hazard is any object with a public code, a
status, a grid path and an assignee, as the rule documents."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gis_service.auth.principal import ANONYMOUS, Principal
from gis_service.auth.roles import ROLE_SCOPES
from gis_service.errors import Forbidden, Unauthorized
from gis_service.hazards.policy import authorize_move, may_read_private, moves_for
from gis_service.hazards.workflow import MOVES, allowed_actions

# A street (1) › community (10) › grid (100) › micro-grid (1000), and a second street (2).
PATH = (1, 10, 100, 1000)
ELSEWHERE = (2, 20, 200, 2000)


@dataclass
class Hazard:
    """Just what the rule reads."""

    status: str
    grid_path: tuple[int, ...] = PATH
    assignee_person_id: int | None = None
    public_code: str = "YH20260101-000001"


def user(role: str, root: int | None, person: int | None = None) -> Principal:
    """A logged-in user of ``role`` whose scope is the subtree of grid ``root``."""
    return Principal(
        kind="user",
        id=7,
        name=role,
        role=role,
        scopes=ROLE_SCOPES[role],
        grid_id=root,
        grid_path=(),
        person_id=person,
        scope_ids=frozenset({root}) if root else frozenset(),
    )


def key(scopes: set[str], root: int | None = None) -> Principal:
    """An API key with ``scopes``, bound to the subtree of ``root`` (None: everywhere)."""
    return Principal(
        kind="api_key",
        id=3,
        name="12345 热线平台",
        role=None,
        scopes=frozenset(scopes),
        grid_id=root,
        grid_path=(),
        person_id=None,
        scope_ids=frozenset({root}) if root else frozenset(),
    )


def allowed(principal: Principal, hazard: Hazard, action: str) -> bool:
    try:
        authorize_move(principal, hazard, action)
    except Forbidden:
        return False
    return True


def test_anonymous_may_not_move_anything() -> None:
    for action in MOVES:
        with pytest.raises(Unauthorized):
            authorize_move(ANONYMOUS, Hazard("reported"), action)
    assert moves_for(ANONYMOUS, Hazard("reported")) == []


@pytest.mark.parametrize(
    ("role", "root", "inside", "outside"),
    [
        ("admin", None, True, True),
        ("street_staff", 1, True, False),
        ("community_staff", 10, True, False),
        ("grid_leader", 100, False, False),
        ("field_staff", 100, False, False),
        ("viewer", 10, False, False),
    ],
)
def test_community_decisions_need_dispatch_in_the_subtree(
    role: str, root: int | None, inside: bool, outside: bool
) -> None:
    principal = user(role, root)
    assert allowed(principal, Hazard("reported"), "accept") is inside
    assert allowed(principal, Hazard("reported", ELSEWHERE), "accept") is outside


def test_handlers_work_inside_their_grid_or_on_what_is_theirs() -> None:
    leader = user("grid_leader", 100, person=42)
    assert allowed(leader, Hazard("dispatched"), "start")
    assert not allowed(leader, Hazard("dispatched", ELSEWHERE), "start")
    # Assigned to their person, a hazard anywhere is theirs to work on, and to escalate.
    assigned = Hazard("in_progress", ELSEWHERE, assignee_person_id=42)
    assert allowed(leader, assigned, "resolve")
    assert allowed(leader, assigned, "escalate")
    # ...but not to decide on: closing is the community's.
    assert not allowed(leader, Hazard("verified", ELSEWHERE, assignee_person_id=42), "close")
    # A viewer reads only.
    assert not allowed(user("viewer", 10), Hazard("dispatched"), "comment")


def test_nobody_verifies_their_own_work_except_an_admin() -> None:
    own = Hazard("resolved", assignee_person_id=5)
    with pytest.raises(Forbidden, match="Nobody verifies their own work"):
        authorize_move(user("community_staff", 10, person=5), own, "verify")
    with pytest.raises(Forbidden):
        authorize_move(user("community_staff", 10, person=5), own, "fail_verification")
    authorize_move(user("community_staff", 10, person=6), own, "verify")
    authorize_move(user("admin", None, person=5), own, "verify")


def test_keys_act_by_their_scopes_and_subtree() -> None:
    hotline = key({"read", "report"})
    assert moves_for(hotline, Hazard("reported")) == []
    worker = key({"read", "write"}, root=10)
    # the handler's own work, and the exception requests that go to someone above
    assert moves_for(worker, Hazard("dispatched")) == [
        "start",
        "request_extension",
        "request_suspension",
        "send_back",
        "request_void",
        "comment",
    ]
    assert moves_for(worker, Hazard("dispatched", ELSEWHERE)) == []
    dispatcher = key({"read", "write", "dispatch"})
    assert moves_for(dispatcher, Hazard("reported")) == allowed_actions("reported", ["no_pending"])


def test_moves_offered_are_the_state_machines_intersected_with_the_rule() -> None:
    staff = user("community_staff", 10)
    for status in ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed"):
        offered = moves_for(staff, Hazard(status))
        # a fresh case: no request waits, so no decision is offered
        assert offered == allowed_actions(status, ["no_pending"]), status
    leader = user("grid_leader", 100)
    assert moves_for(leader, Hazard("dispatched")) == [
        "start",
        "request_extension",
        "request_suspension",
        "send_back",
        "request_void",
        "comment",
    ]
    assert moves_for(leader, Hazard("closed")) == ["comment"]


def test_forbidden_names_the_action_and_the_scope_it_needs() -> None:
    with pytest.raises(Forbidden) as err:
        authorize_move(user("grid_leader", 100), Hazard("reported"), "accept")
    assert err.value.code == "forbidden"
    assert err.value.details == {"action": "accept", "needs_scope": "dispatch"}
    assert "YH20260101-000001" in err.value.message


def test_private_fields_follow_the_subtree() -> None:
    assert may_read_private(user("viewer", 10), PATH)
    assert not may_read_private(user("viewer", 10), ELSEWHERE)
    assert not may_read_private(ANONYMOUS, PATH)
    assert not may_read_private(key({"read"}), PATH)
