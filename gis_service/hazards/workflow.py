"""The closed loop of a hazard as data: which move is allowed from which state, and where it
leads (the engine is gis_service.cases.machine).

上报 report → 立案 accept | 不予立案 reject → 派遣 dispatch → 处置 start → 反馈 resolve →
核查 verify (or fail_verification: back to dispatched for rework) → 结案 close → 回访 callback
(不满意: rework within a window). 吹哨 escalate hands the case to the parent grid's leader or a
department; reopen brings a closed case back within a configured number of days;
mark_duplicate closes a case as a duplicate of another open one; comment adds a note or
photos without moving.

Exceptions (GB/T 30428.8 and local manuals: 延期, 缓办, 退回, 作废) are requested with a reason
by whoever handles the case and decided by a role above the requester: request_extension /
approve_extension / refuse_extension, request_suspension / approve_suspension (the clock
stops in suspended until resume) / refuse_suspension, send_back (申请退回) /
approve_send_back (back to dispatch) / refuse_send_back, request_void / approve_void /
refuse_void. One request waits at a time (guard 'no_pending'); a decision needs its request
('pending:<kind>').
"""

from __future__ import annotations

from typing import NamedTuple

from gis_service.cases.machine import Machine, Move
from gis_service.hazards.states import CLOSED_STATUSES, HAZARD_STATUSES, STATUS_NAMES_ZH

_OPEN_WORK = ("accepted", "dispatched", "in_progress")
_HANDLING = ("dispatched", "in_progress")
_VOIDABLE = ("reported", "accepted", "dispatched", "in_progress")


class ExceptionKind(NamedTuple):
    """One kind of exception: the states it may be asked in and where an approval leads (None:
    the state stays, e.g. an extension only moves the deadline)."""

    kind: str
    name_zh: str
    sources: tuple[str, ...]
    target: str | None
    # The request's action where it is not request_<kind> (退回 is asked with send_back).
    request: str | None = None

    def steps(self) -> dict[str, tuple[str, str]]:
        """Each step (request, approve, refuse) with its action and Chinese name."""
        return {
            "request": (self.request or f"request_{self.kind}", f"申请{self.name_zh}"),
            "approve": (f"approve_{self.kind}", f"同意{self.name_zh}"),
            "refuse": (f"refuse_{self.kind}", f"不同意{self.name_zh}"),
        }


EXCEPTIONS: dict[str, ExceptionKind] = {
    e.kind: e
    for e in (
        ExceptionKind("extension", "延期", _HANDLING, None),
        ExceptionKind("suspension", "缓办", _HANDLING, "suspended"),
        ExceptionKind("send_back", "退回", _HANDLING, "accepted", request="send_back"),
        ExceptionKind("void", "作废", _VOIDABLE, "voided"),
    )
}


def _exception_moves() -> list[Move]:
    # Whoever handles the case asks while none waits; the community decides on a waiting one.
    out: list[Move] = []
    for e in EXCEPTIONS.values():
        steps = e.steps()
        pending = f"pending:{e.kind}"
        out += [
            Move(*steps["request"], e.sources, None, "write", "no_pending"),
            Move(*steps["approve"], e.sources, e.target, "dispatch", pending),
            Move(*steps["refuse"], e.sources, None, "dispatch", pending),
        ]
    return out


HAZARD_MACHINE = Machine(
    kind="hazard",
    statuses=STATUS_NAMES_ZH,
    closed=CLOSED_STATUSES,
    moves=(
        Move("accept", "立案", ("reported",), "accepted", "dispatch"),
        Move("reject", "不予立案", ("reported",), "rejected", "dispatch"),
        # From dispatched it re-dispatches to someone else; the deadline stays.
        Move("dispatch", "派遣", ("accepted", "dispatched"), "dispatched", "dispatch"),
        Move("start", "处置", ("dispatched",), "in_progress", "write"),
        Move("resolve", "反馈", ("in_progress",), "resolved", "write"),
        Move("verify", "核查通过", ("resolved",), "verified", "dispatch"),
        Move("fail_verification", "核查未通过", ("resolved",), "dispatched", "dispatch"),
        Move("close", "结案", ("verified",), "closed", "dispatch"),
        # The new handler has not started yet, so the case waits in dispatched.
        Move("escalate", "吹哨", _OPEN_WORK, "dispatched", "dispatch"),
        Move("reopen", "重新打开", ("closed",), "accepted", "dispatch"),
        Move(
            "mark_duplicate",
            "重复件",
            ("reported", "accepted", "dispatched", "in_progress"),
            "closed",
            "dispatch",
        ),
        *_exception_moves(),
        # 缓办 ends: the clock runs again with the working time that was left.
        Move("resume", "恢复办理", ("suspended",), "dispatched", "dispatch"),
        # 回访: the reporter's answer, taken by staff on the phone (residents answer through
        # their receipt); 不满意 within the window can send the case back (返工).
        Move("callback", "回访", ("closed",), None, "dispatch"),
        Move(
            "rework",
            "回访不满意返工",
            ("closed",),
            "dispatched",
            "dispatch",
            "callback:dissatisfied",
        ),
        Move("comment", "备注", HAZARD_STATUSES, None, "write"),
    ),
)

MOVES = HAZARD_MACHINE.by_action
ACTIONS: tuple[str, ...] = HAZARD_MACHINE.actions
EXCEPTION_OF_ACTION: dict[str, tuple[str, str]] = {
    action: (e.kind, step) for e in EXCEPTIONS.values() for step, (action, _) in e.steps().items()
}

# The main line of the loop: the moves a case makes from report to close when nothing goes
# sideways (no rejection, rework, escalation or reopening).
MAIN_LINE: tuple[str, ...] = ("accept", "dispatch", "start", "resolve", "verify", "close")


def allowed_actions(status: str, facts: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The actions the state machine allows from ``status`` (before any permission check)."""
    return HAZARD_MACHINE.allowed(status, facts)


def target_status(action: str, status: str) -> str:
    """The state ``action`` leads to from ``status``."""
    return HAZARD_MACHINE.target(action, status)


def is_allowed(action: str, status: str, facts: tuple[str, ...] | list[str] | None = None) -> bool:
    """True when the state machine allows ``action`` from ``status``."""
    return action in MOVES and HAZARD_MACHINE.is_allowed(action, status, facts)


def state_table() -> list[dict[str, object]]:
    """Every move with its sources and target, for the API docs and the README."""
    return HAZARD_MACHINE.table()


def main_line_states() -> tuple[str, ...]:
    """The states along the main line, 'reported' first and 'closed' last."""
    states = ["reported"]
    for action in MAIN_LINE:
        states.append(target_status(action, states[-1]))
    return tuple(states)
