"""The staff desk with no HTTP: the queues of a scope with their counts and rows, the units of
a scope, who a case may be dispatched to, the dashboard's figures, and the ledger (台账) with
its XLSX."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import SEVERITY_NAMES_ZH
from gis_service.desk import sql
from gis_service.errors import NotFound
from gis_service.hazards.states import STATUS_NAMES_ZH
from gis_service.hazards.supervision import scoped_grid

QUEUE_NAMES_ZH = {
    "to_accept": "待受理",
    "to_dispatch": "待派遣",
    "in_progress": "处置中",
    "to_verify": "待核查",
    "to_approve": "待审批",
    "suspended": "缓办中",
    "overdue": "已逾期",
    "due_24h": "24 工作时内到期",
    "mine": "我的任务",
}
SOURCE_NAMES_ZH = {
    "patrol": "网格巡查",
    "resident": "群众上报",
    "camera": "视频监控",
    "hotline": "12345 热线",
    "superior": "上级交办",
}
LEDGER_LIMIT = 20_000


@dataclass(frozen=True)
class DeskFilter:
    """What the desk's queues may be narrowed to; None switches a filter off."""

    grid: int | None = None
    categories: list[str] | None = None
    severities: list[str] | None = None
    sources: list[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self, principal: Principal) -> dict[str, Any]:
        """Bound parameters of the queue statements for this caller."""
        return {
            "scope": principal.scope_filter(),
            "person": principal.person_id,
            "grid": self.grid,
            "categories": self.categories,
            "severities": self.severities,
            "sources": self.sources,
            "since": self.since,
            "until": self.until,
        }


def checked_filter(conn: Connection, principal: Principal, flt: DeskFilter) -> DeskFilter:
    """The filter with its grid checked against the caller's scope (404 outside it)."""
    if flt.grid is not None:
        scoped_grid(principal, flt.grid, conn)
    return flt


def queue_counts(conn: Connection, principal: Principal, flt: DeskFilter) -> dict[str, Any]:
    """How many hazards wait in each queue of the caller's scope (one statement)."""
    row = conn.execute(sql.QUEUE_COUNTS, flt.params(principal)).mappings().one()
    return {
        "counts": {q: int(row[q]) for q in sql.QUEUES},
        "names": QUEUE_NAMES_ZH,
        "as_of": conn.execute(sql.text("SELECT now()")).scalar_one().isoformat(),
    }


def queue_list(
    conn: Connection,
    principal: Principal,
    queue: str,
    flt: DeskFilter,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The hazards of one queue, sorted and paged."""
    rows = conn.execute(
        sql.queue_rows(queue, sort, descending),
        {**flt.params(principal), "limit": limit, "offset": offset},
    ).mappings()
    items = []
    matched = 0
    for r in rows:
        item = dict(r)
        matched = int(item.pop("matched"))
        for k in ("reported_at", "due_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["status_name"] = STATUS_NAMES_ZH.get(item["status"], item["status"])
        item["severity_name"] = SEVERITY_NAMES_ZH.get(item["severity"], item["severity"])
        item["source_name"] = SOURCE_NAMES_ZH.get(item["source"], item["source"])
        items.append(item)
    if not items and offset:
        matched = queue_counts(conn, principal, flt)["counts"][queue]
    return {
        "queue": queue,
        "name": QUEUE_NAMES_ZH[queue],
        "number_matched": matched,
        "number_returned": len(items),
        "items": items,
    }


def units(conn: Connection, principal: Principal, level: str, within: int | None) -> dict[str, Any]:
    """The current grids of one level in the caller's scope, with the names above them."""
    if within is not None:
        scoped_grid(principal, within, conn)
    rows = conn.execute(
        sql.UNITS, {"level": level, "scope": principal.scope_filter(), "within": within}
    ).mappings()
    return {"level": level, "items": [dict(r) for r in rows]}


def candidates(conn: Connection, principal: Principal, hazard_id: int) -> dict[str, Any]:
    """People of the dispatcher's scope who may take the case, nearest first, with their role,
    grid, open workload and distance, and the departments (社区吹哨、部门报到)."""
    hazard = conn.execute(sql.HAZARD_SCOPE, {"id": hazard_id}).first()
    if hazard is None:
        raise NotFound(f"Hazard {hazard_id} does not exist.", id=hazard_id)
    if not principal.can("dispatch", list(hazard.grid_path or ())):
        # A case outside the dispatcher's subtree reads as absent (as any private read).
        raise NotFound(f"Hazard {hazard_id} does not exist or is outside your scope.")
    rows = conn.execute(
        sql.CANDIDATES, {"id": hazard_id, "scope": principal.scope_filter()}
    ).mappings()
    people = []
    for r in rows:
        item = dict(r)
        item["distance_m"] = None if item["distance_m"] is None else float(item["distance_m"])
        item["grid_context"] = " › ".join(
            n for n in (item["street_name"], item["community_name"]) if n and n != item["grid_name"]
        )
        people.append(item)
    departments = [dict(r) for r in conn.execute(sql.DEPARTMENTS).mappings()]
    return {"hazard_id": hazard_id, "people": people, "departments": departments}


# ---- the ledger (台账) -----------------------------------------------------------------------
LEDGER_COLUMNS: tuple[tuple[str, str, int], ...] = (
    # (key, Chinese header, column width in characters)
    ("no", "序号", 6),
    ("public_code", "隐患编号", 20),
    ("category_name", "类别", 16),
    ("severity_name", "紧急程度", 9),
    ("status_name", "状态", 9),
    ("street_name", "街道", 14),
    ("community_name", "社区", 14),
    ("grid_name", "网格", 14),
    ("address", "地址", 24),
    ("lon", "经度", 12),
    ("lat", "纬度", 12),
    ("reported_local", "上报时间", 17),
    ("handler", "处置人", 16),
    ("due_local", "处置期限", 17),
    ("closed_local", "结案时间", 17),
    ("overdue_text", "是否逾期", 9),
)


def ledger(
    conn: Connection,
    principal: Principal,
    grid: int | None,
    since: datetime,
    until: datetime,
    tz: str,
) -> dict[str, Any]:
    """The hazards reported in [since, until) in a unit's subtree (default: the caller's scope
    root), oldest first, with the handler's name and times in local (Beijing) time."""
    root = scoped_grid(principal, grid, conn)
    unit = None
    if root is not None:
        found = conn.execute(sql.UNIT, {"id": root}).mappings().first()
        if found is None:  # pragma: no cover - scoped_grid checked it
            raise NotFound(f"Grid {root} does not exist.", grid=root)
        unit = dict(found)
    rows = conn.execute(
        sql.LEDGER_ROWS,
        {"grid": root, "since": since, "until": until, "tz": tz, "limit": LEDGER_LIMIT + 1},
    ).mappings()
    items = []
    for i, r in enumerate(rows, start=1):
        item = dict(r)
        item["no"] = i
        item["status_name"] = STATUS_NAMES_ZH.get(item["status"], item["status"])
        item["severity_name"] = SEVERITY_NAMES_ZH.get(item["severity"], item["severity"])
        item["handler"] = " / ".join(
            n for n in (item["handler_name"], item["department_name"]) if n
        )
        item["overdue_text"] = "是" if item["overdue"] else ""
        for k in ("lon", "lat"):
            item[k] = float(item[k])
        for k in ("reported_at", "due_at", "closed_at"):
            item[k] = item[k].isoformat() if item[k] else None
        for k in ("reported_local", "due_local", "closed_local"):
            item[k] = item[k].strftime("%Y-%m-%d %H:%M") if item[k] else None
        items.append(item)
    truncated = len(items) > LEDGER_LIMIT
    return {
        "unit": unit,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "timezone": tz,
        "truncated": truncated,
        "columns": [{"key": k, "name": n} for k, n, _ in LEDGER_COLUMNS],
        "items": items[:LEDGER_LIMIT],
    }


def ledger_xlsx(book: dict[str, Any], title: str) -> bytes:
    """The ledger as an XLSX workbook: Chinese headers, local times, lon/lat columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "隐患台账"
    wb.properties.title = title
    ws.append([name for _, name, _ in LEDGER_COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center")
    for item in book["items"]:
        ws.append([item.get(key) for key, _, _ in LEDGER_COLUMNS])
    for i, (_, _, width) in enumerate(LEDGER_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---- the dashboard (统计) ----------------------------------------------------------------------
def dashboard(
    conn: Connection,
    principal: Principal,
    grid: int | None,
    since: datetime,
    until: datetime,
    interval: str,
    tz: str,
    top: int = 15,
) -> dict[str, Any]:
    """What the dashboard draws, over the hazards reported in [since, until) in a subtree
    (default: the caller's scope): totals, reported and closed per day or week, by category,
    by community (按期结案率 and median hours to close), the busiest grids, the oldest open
    hazards and heat cells of the open ones."""
    root = scoped_grid(principal, grid, conn)
    body = json.loads(
        conn.execute(
            sql.DASHBOARD,
            {
                "grid": root,
                "since": since,
                "until": until,
                "tz": tz,
                "unit": interval,
                "step": f"1 {interval}",
                "top": top,
            },
        ).scalar_one()
    )
    for row in body["by_community"]:
        for k in ("on_time_rate", "median_hours_to_close"):
            row[k] = None if row[k] is None else float(row[k])
    for row in body["oldest_open"]:
        row["age_days"] = float(row["age_days"])
        row["status_name"] = STATUS_NAMES_ZH.get(row["status"], row["status"])
    return {
        "grid": root,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "interval": interval,
        "timezone": tz,
        **body,
    }
