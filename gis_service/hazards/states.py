"""The states of a hazard, which of them are open, and when the deadline clock runs; in
Python and as SQL, so every query and check uses the same lists."""

from __future__ import annotations

from gis_service.cases.machine import sql_list, sql_names

# Mirrors the CHECK constraint hazards_status of migration 0007 (a test compares them).
HAZARD_STATUSES = (
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "in_progress",
    "resolved",
    "verified",
    "closed",
    "suspended",
    "voided",
)
CLOSED_STATUSES = ("closed", "rejected", "voided")
OPEN_STATUSES = tuple(s for s in HAZARD_STATUSES if s not in CLOSED_STATUSES)
# The states in which the deadline clock runs: past due_at, the hazard is overdue.
CLOCK_STATUSES = ("accepted", "dispatched", "in_progress")
STATUS_NAMES_ZH = {
    "reported": "已上报",
    "accepted": "已立案",
    "rejected": "不予立案",
    "dispatched": "已派遣",
    "in_progress": "处置中",
    "resolved": "已反馈",
    "verified": "已核查",
    "closed": "已结案",
    "suspended": "缓办中",
    "voided": "已作废",
}

# Where a report comes from, and the note its first history step carries.
SOURCE_NOTES = {
    "patrol": "网格员巡查发现上报",
    "resident": "群众上报",
    "camera": "视频监控发现上报",
    "hotline": "12345热线转办",
    "superior": "上级交办",
}


CLOSED_SQL = sql_list(CLOSED_STATUSES)
CLOCK_SQL = sql_list(CLOCK_STATUSES)
# (code, name) of every state, to name a hazard's state inside a query.
STATUS_NAMES_SQL = sql_names(STATUS_NAMES_ZH)
# The states in their order along the loop, to sort by state.
STATUS_ORDER_SQL = "ARRAY[" + ", ".join(f"'{s}'" for s in HAZARD_STATUSES) + "]"


def open_sql(alias: str) -> str:
    """SQL: is the hazard row ``alias`` open (neither closed nor rejected)?"""
    return f"{alias}.status NOT IN {CLOSED_SQL}"


def real_close_sql(alias: str) -> str:
    """SQL: is ``alias`` closed for real (结案, not closed as a duplicate of another case)?"""
    return f"({alias}.status = 'closed' AND {alias}.duplicate_of_id IS NULL)"


def overdue_sql(alias: str) -> str:
    """SQL: is the hazard row ``alias`` overdue (past due_at while the clock runs)?"""
    return f"({alias}.due_at < now() AND {alias}.status IN {CLOCK_SQL})"


# "Due soon" is counted in working time: a case due on Monday morning is not "due within 24 h"
# of Friday afternoon's 17:00 in calendar terms, but it is in working hours.
DUE_SOON_WORK_HOURS = 24


def due_soon_sql(alias: str, work_hours: int = DUE_SOON_WORK_HOURS) -> str:
    """SQL: is ``alias`` due within ``work_hours`` working hours (not yet overdue)?"""
    return (
        f"({alias}.status IN {CLOCK_SQL} AND {alias}.due_at >= now()"
        f" AND gis_work_seconds(now(), {alias}.due_at) <= {int(work_hours) * 3600})"
    )


def accept_overdue_sql(alias: str) -> str:
    """SQL: is ``alias`` past its 立案 deadline while still waiting to be accepted?"""
    return f"({alias}.accept_due_at < now() AND {alias}.status = 'reported')"


def close_overdue_sql(alias: str) -> str:
    """SQL: is ``alias`` past its 结案 deadline while waiting for 核查 and 结案?"""
    return f"({alias}.close_due_at < now() AND {alias}.status IN ('resolved', 'verified'))"
