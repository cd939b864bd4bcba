"""The closed loop as data: which move is allowed from which state, and where it leads.

上报 report → 立案 accept | 不予立案 reject → 派遣 dispatch → 处置 start → 反馈 resolve →
核查 verify (or fail_verification: back to dispatched for rework) → 结案 close.
吹哨 escalate hands the case to the parent grid's leader or a department; reopen brings a
closed case back within a configured number of days; mark_duplicate closes a case as a
duplicate of another open one; comment adds a note or photos without moving.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis_service.hazards.states import HAZARD_STATUSES


@dataclass(frozen=True)
class Move:
    """One action: the states it may start from and the state it leads to (None: stays)."""

    action: str
    name_zh: str
    sources: tuple[str, ...]
    target: str | None
    # The auth scope the move needs: 'dispatch' for the community's decisions, 'write' for
    # the handler's own work.
    scope: str


_OPEN_WORK = ("accepted", "dispatched", "in_progress")

MOVES: dict[str, Move] = {
    m.action: m
    for m in (
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
        Move("comment", "备注", HAZARD_STATUSES, None, "write"),
    )
}
ACTIONS: tuple[str, ...] = tuple(MOVES)

# The main line of the loop: the moves a case makes from report to close when nothing goes
# sideways (no rejection, rework, escalation or reopening).
MAIN_LINE: tuple[str, ...] = ("accept", "dispatch", "start", "resolve", "verify", "close")


def allowed_actions(status: str) -> list[str]:
    """The actions the state machine allows from ``status`` (before any permission check)."""
    return [a for a, m in MOVES.items() if status in m.sources]


def target_status(action: str, status: str) -> str:
    """The state ``action`` leads to from ``status``."""
    target = MOVES[action].target
    return status if target is None else target


def is_allowed(action: str, status: str) -> bool:
    """True when the state machine allows ``action`` from ``status``."""
    move = MOVES.get(action)
    return move is not None and status in move.sources


def state_table() -> list[dict[str, object]]:
    """Every move with its sources and target, for the API docs and the README."""
    return [
        {
            "action": m.action,
            "name_zh": m.name_zh,
            "from": list(m.sources),
            "to": m.target or "(unchanged)",
            "scope": m.scope,
        }
        for m in MOVES.values()
    ]


def main_line_states() -> tuple[str, ...]:
    """The states along the main line, 'reported' first and 'closed' last."""
    states = ["reported"]
    for action in MAIN_LINE:
        states.append(target_status(action, states[-1]))
    return tuple(states)
