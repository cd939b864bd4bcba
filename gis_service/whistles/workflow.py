"""The state machine of one 吹哨 call, as data (the engine is gis_service.cases.machine)."""

from __future__ import annotations

from gis_service.cases.machine import Machine, Move

WHISTLE_STATUSES: dict[str, str] = {
    "called": "已吹哨",
    "reported_in": "已报到",
    "finished": "已办结",
    "withdrawn": "已撤回",
}

WHISTLE_MACHINE = Machine(
    kind="whistle",
    statuses=WHISTLE_STATUSES,
    closed=("finished", "withdrawn"),
    moves=(
        # The called party acknowledges (a staff member records it on the party's behalf).
        Move("report_in", "报到", ("called",), "reported_in", "write"),
        Move("progress", "报告进展", ("reported_in",), None, "write"),
        Move("finish", "办结", ("reported_in",), "finished", "write"),
        # The community that blew the whistle may call it off.
        Move("withdraw", "撤回", ("called", "reported_in"), "withdrawn", "dispatch"),
    ),
)
WHISTLE_ACTIONS: tuple[str, ...] = WHISTLE_MACHINE.actions
