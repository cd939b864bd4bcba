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

from gis_service.cases.machine import Machine, Move
from gis_service.hazards.states import CLOSED_STATUSES, HAZARD_STATUSES, STATUS_NAMES_ZH

_OPEN_WORK = ("accepted", "dispatched", "in_progress")
_HANDLING = ("dispatched", "in_progress")
_VOIDABLE = ("reported", "accepted", "dispatched", "in_progress")

# Each exception: its request, approval and refusal, the states it applies to, and where an
# approval leads (None: the state stays, e.g. an extension only moves the deadline).
EXCEPTIONS: dict[str, dict[str, object]] = {
    "extension": {
        "name_zh": "延期",
        "request": ("request_extension", "申请延期"),
        "approve": ("approve_extension", "同意延期"),
        "refuse": ("refuse_extension", "不同意延期"),
        "sources": _HANDLING,
        "target": None,
    },
    "suspension": {
        "name_zh": "缓办",
        "request": ("request_suspension", "申请缓办"),
        "approve": ("approve_suspension", "同意缓办"),
        "refuse": ("refuse_suspension", "不同意缓办"),
        "sources": _HANDLING,
        "target": "suspended",
    },
    "send_back": {
        "name_zh": "退回",
        "request": ("send_back", "申请退回"),
        "approve": ("approve_send_back", "同意退回"),
        "refuse": ("refuse_send_back", "不同意退回"),
        "sources": _HANDLING,
        "target": "accepted",
    },
    "void": {
        "name_zh": "作废",
        "request": ("request_void", "申请作废"),
        "approve": ("approve_void", "同意作废"),
        "refuse": ("refuse_void", "不同意作废"),
        "sources": _VOIDABLE,
        "target": "voided",
    },
}


def _exception_moves() -> list[Move]:
    out: list[Move] = []
    for kind, spec in EXCEPTIONS.items():
        sources = spec["sources"]
        assert isinstance(sources, tuple)
        req, appr, ref = spec["request"], spec["approve"], spec["refuse"]
        assert isinstance(req, tuple) and isinstance(appr, tuple) and isinstance(ref, tuple)
        target = spec["target"]
        assert target is None or isinstance(target, str)
        out += [
            Move(req[0], req[1], sources, None, "write", "no_pending"),
            Move(appr[0], appr[1], sources, target, "dispatch", f"pending:{kind}"),
            Move(ref[0], ref[1], sources, None, "dispatch", f"pending:{kind}"),
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
    str(spec[step][0]): (kind, step)  # type: ignore[index]
    for kind, spec in EXCEPTIONS.items()
    for step in ("request", "approve", "refuse")
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
