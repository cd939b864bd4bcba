"""The state machine of a service order, as data on the one engine (cases.machine)."""

from __future__ import annotations

from gis_service.cases.machine import Machine, Move

ORDER_STATUSES: dict[str, str] = {
    "ordered": "已点单",
    "dispatched": "已派单",
    "taken": "已接单",
    "done": "已完成",
    "rated": "已评价",
    "cancelled": "已取消",
}

ORDER_MACHINE = Machine(
    kind="service_order",
    statuses=ORDER_STATUSES,
    closed=("rated", "cancelled"),
    moves=(
        # 社区派单: to a volunteer or a partner unit; again from dispatched to change it.
        Move("dispatch", "派单", ("ordered", "dispatched"), "dispatched", "dispatch"),
        # 党员接单 (staff record it for a volunteer without an account).
        Move("take", "接单", ("dispatched",), "taken", "write"),
        Move("decline", "拒单", ("dispatched",), "ordered", "write"),
        Move("finish", "完成", ("taken",), "done", "write"),
        Move("rate", "评价", ("done",), "rated", "write"),
        Move("cancel", "取消", ("ordered", "dispatched", "taken"), "cancelled", "dispatch"),
        Move("comment", "备注", tuple(ORDER_STATUSES), None, "write"),
    ),
)
ORDER_ACTIONS: tuple[str, ...] = ORDER_MACHINE.actions
# The orders whose service was given (done, and rated afterwards): they count as done work.
DONE_STATUSES: tuple[str, ...] = ("done", "rated")
