"""The assessment with no HTTP: counts from the per-case flags (assessment.sql), the rates
derived from them by the formulas below, the weighted composite (综合指标值) and its grade
from layers/assessment.yaml, the points ranking, and the cases behind any figure.

Formulas (each figure names its source; see layers/README.md for the standard's role):
- 上报数 reported; 立案数 accepted; 立案率 = 立案数 / 上报数.
- 应结案数 = cases filed (立案, not 作废) that are closed or past their 处置 or 结案 deadline
  at the period's end (or now); 结案率 = 结案数 / 应结案数; 按期结案率 = 按期结案数 / 应结案数
  (GB/T 30428.4 / CJ/T 292 结案率 and 按期结案率: a case still inside its limits is not yet
  due to close, so a busy last week does not read as late work).
- 应处置数 = dispatched cases handled or past their 处置 deadline; 按期处置率 = 按期处置数 /
  应处置数; 超期数 = 应处置数 − 按期处置数 (处置 deadlines in working time).
- 返工率 = cases reworked (failed 核查 or 回访不满意) / cases handled at least once.
- 满意率 = (满意 + 基本满意) / 回访数 (the hotline assessments' 满意率).
- 异常件占比 = cases with an approved 延期/缓办/退回/作废 / 立案数.
- per department: 处置率 = 处置数 / 派遣数; 按时报到率 = 按时报到 / 吹哨次数; 满意率 as above
  over the department's cases.
- per handler (the case's assignee): 满意率 as above over the cases they handle.
- per person: 有效上报率 = 有效上报 / 上报数 (有效: 立案 and not 作废); 按时核查率 = 核查 within
  the category's 结案 limit from the report back / 核查数; 准确派遣率 = (派遣数 − 被退回的派遣) /
  派遣数.
- 近7日结案用时中位数 = the median of the working hours from report to 结案 of the area's
  cases closed in the period's last 7 days (working time, as the deadlines).
- 综合指标值 = Σ weight × rate over the rates that have a value, the weights (assessment.yaml)
  scaled back to 1; 1 − 返工率 enters as "no_rework_rate". Grade: the first of 优/良/中/差 whose
  floor it reaches (GB/T 30428.4 assesses by weighted rates; weights are the office's).
- 积分 = Σ rule value × count per grid worker (有效上报, 按期处置, 超期任务, 回访不满意; values in
  assessment.yaml); ties share a rank.
- 志愿服务 (orders.service.volunteer_stats): 点单数, 完成数 (done or rated), 服务时长 = Σ hours
  of done orders, 服务志愿者 and 其中党员 = distinct volunteers of done orders, 满意率 = (满意 +
  基本满意) / 评价数, over the orders placed in the period.
- 0/0 is no value (shown "—"), never 0% or 100%. Every rate is a percentage with two decimals.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, text

from gis_service.assessment import sql
from gis_service.catalog.schemas import AssessmentDef

LEVELS = ("street", "community", "grid")
FLAGS = tuple(sql.FLAGS)


class Table(list):
    """The rows of a table (dicts) and its columns: an empty table still has its header."""

    def __init__(self, rows: Iterable[dict[str, Any]], columns: Iterable[str]) -> None:
        super().__init__(rows)
        self.columns = list(columns)


def table(result: CursorResult, shape: Callable[[dict[str, Any]], dict[str, Any]]) -> Table:
    """The rows of ``result``, each shaped by ``shape``; the columns are a shaped row's (a
    row of zeros when there is none, so the header never depends on having data)."""
    rows = [shape(dict(r._mapping)) for r in result]
    columns = list(rows[0]) if rows else list(shape(dict.fromkeys(result.keys(), 0)))
    return Table(rows, columns)


def rate(numerator: int, denominator: int) -> float | None:
    """A percentage with two decimals; None when there is nothing to divide by."""
    return None if not denominator else round(100.0 * numerator / denominator, 2)


def area_rates(row: dict[str, Any]) -> dict[str, float | None]:
    """The rates of one area from its counts (formulas in the module docstring)."""
    due_close = row["due_close"]
    return {
        "accept_rate": rate(row["accepted"], row["reported"]),
        "on_time_handle_rate": rate(row["on_time_handle"], row["due_handle"]),
        "on_time_close_rate": rate(row["on_time_close"], due_close),
        "close_rate": rate(row["closed"], due_close),
        "rework_rate": rate(row["reworked"], row["handled"]),
        "satisfaction_rate": rate(row["satisfied"], row["called_back"]),
        "exception_rate": rate(row["excepted"], row["accepted"]),
    }


def composite(rates: dict[str, float | None], cfg: AssessmentDef) -> tuple[float | None, str]:
    """综合指标值 = Σ weight × indicator (percent), over the indicators that have a value,
    with their weights scaled back to 1; and the grade of the first threshold it reaches."""
    values = dict(rates)
    rework = rates.get("rework_rate")
    values["no_rework_rate"] = None if rework is None else 100.0 - rework
    used = {k: w for k, w in cfg.weights.items() if values.get(k) is not None}
    total = sum(used.values())
    if not total:
        return None, "—"
    score = round(sum(w * float(values[k]) for k, w in used.items()) / total, 2)  # type: ignore[arg-type]
    grade = next(g for g, floor in cfg.grades.items() if score >= floor)
    return score, grade


# The longest period assessed at once; a longer one is cut there (the caller's period_query).
LONGEST_PERIOD = timedelta(days=366)


def _params(
    since: datetime, until: datetime, scope: list[int] | None, grid: int | None
) -> dict[str, Any]:
    return {"since": since, "until": until, "scope": scope, "grid": grid}


def areas(
    conn: Connection,
    cfg: AssessmentDef,
    since: datetime,
    until: datetime,
    level: str,
    scope: list[int] | None,
    grid: int | None,
) -> list[dict[str, Any]]:
    """Per area of ``level``: counts, rates, the 7-day median and the composite with grade."""

    def shape(item: dict[str, Any]) -> dict[str, Any]:
        med = item.pop("median_work_hours_to_close_7d")
        item["median_work_hours_to_close_7d"] = None if med is None else float(med)
        rates = area_rates(item)
        score, grade = composite(rates, cfg)
        return {**item, **rates, "composite": score, "grade": grade}

    params = {**_params(since, until, scope, grid), "level": level}
    return table(conn.execute(sql.AREAS, params), shape)


def departments(
    conn: Connection, since: datetime, until: datetime, scope: list[int] | None, grid: int | None
) -> list[dict[str, Any]]:
    """Per department: 应处置, 按时处置, 超期处置, 处置率, 返工率, 满意率, 吹哨报到 on time."""

    def shape(item: dict[str, Any]) -> dict[str, Any]:
        item["handle_rate"] = rate(item["handled"], item["dispatched"])
        item["on_time_handle_rate"] = rate(item["on_time_handle"], item["due_handle"])
        item["rework_rate"] = rate(item["reworked"], item["handled"])
        item["whistle_on_time_rate"] = rate(item["whistle_on_time"], item["whistle_calls"])
        item["satisfaction_rate"] = rate(item["satisfied"], item["called_back"])
        return item

    return table(conn.execute(sql.DEPARTMENTS, _params(since, until, scope, grid)), shape)


def people(
    conn: Connection, since: datetime, until: datetime, scope: list[int] | None, grid: int | None
) -> dict[str, Any]:
    """Per person (and summed per role): 上报数, 有效上报率, 按时核查率, 准确派遣率, and as
    handler the 满意率 of the callbacks of their cases."""
    persons = table(
        conn.execute(sql.PEOPLE, _params(since, until, scope, grid)),
        lambda item: {**item, **_person_rates(item)},
    )
    roles: dict[str, dict[str, int]] = {}
    keys = (
        "reports",
        "valid_reports",
        "verifications",
        "verifications_on_time",
        "dispatches",
        "dispatches_sent_back",
        "called_back",
        "satisfied",
    )
    for item in persons:
        bucket = roles.setdefault(item["role"] or "other", dict.fromkeys(keys, 0))
        for k in keys:
            bucket[k] += item[k]
    return {
        "people": persons,
        "roles": [{"role": k, **v, **_person_rates(v)} for k, v in sorted(roles.items())],
    }


def _person_rates(item: dict[str, Any]) -> dict[str, float | None]:
    return {
        "valid_report_rate": rate(item["valid_reports"], item["reports"]),
        "on_time_verification_rate": rate(item["verifications_on_time"], item["verifications"]),
        "accurate_dispatch_rate": rate(
            item["dispatches"] - item["dispatches_sent_back"], item["dispatches"]
        ),
        "satisfaction_rate": rate(item["satisfied"], item["called_back"]),
    }


def _points_params(
    cfg: AssessmentDef,
    since: datetime,
    until: datetime,
    scope: list[int] | None,
    grid: int | None,
) -> dict[str, Any]:
    return {
        **_params(since, until, scope, grid),
        "roles": list(cfg.points_roles),
        "rules": json.dumps(cfg.points),
    }


def points(
    conn: Connection,
    cfg: AssessmentDef,
    since: datetime,
    until: datetime,
    scope: list[int] | None,
    grid: int | None,
) -> Table:
    """积分 per grid worker from the rules of layers/assessment.yaml, ranked (ties share),
    highest first (the rows of the CSV and XLSX exports)."""
    return table(conn.execute(sql.POINTS, _points_params(cfg, since, until, scope, grid)), dict)


def points_json(
    conn: Connection,
    cfg: AssessmentDef,
    since: datetime,
    until: datetime,
    scope: list[int] | None,
    grid: int | None,
) -> str:
    """The same ranking as a JSON array text, built by the database."""
    params = _points_params(cfg, since, until, scope, grid)
    return conn.execute(sql.POINTS_JSON, params).scalar_one()


@dataclass(frozen=True)
class Narrow:
    """What the cases behind a figure are narrowed to (None: not narrowed)."""

    area: int | None = None
    department: str | None = None
    person: int | None = None


def cases(
    conn: Connection,
    since: datetime,
    until: datetime,
    scope: list[int] | None,
    grid: int | None,
    flag: str,
    narrow: Narrow,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The cases behind one figure (a flag of the per-case table), for an area, department
    and/or person."""
    params = {"area": narrow.area, "department": narrow.department, "person": narrow.person}
    rows = conn.execute(
        text(sql.drill(flag)),
        {**_params(since, until, scope, grid), **params, "limit": limit, "offset": offset},
    ).all()
    items = []
    for r in rows:
        item = dict(r._mapping)
        item.pop("matched")
        for k in ("reported_at", "due_at", "resolved_at", "closed_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["url"] = f"/api/v1/hazards/{r.id}"
        items.append(item)
    return {
        "indicator": flag,
        **params,
        "number_matched": rows[0].matched if rows else 0,
        "number_returned": len(items),
        "items": items,
    }


# Column headings of the tables in Chinese, for CSV and XLSX.
HEADINGS: dict[str, str] = {
    "area_id": "区域ID",
    "code": "编码",
    "name": "名称",
    "reported": "上报数",
    "accepted": "立案数",
    "accept_rate": "立案率(%)",
    "voided": "作废数",
    "due_close": "应结案数",
    "closed": "结案数",
    "close_rate": "结案率(%)",
    "on_time_close": "按期结案数",
    "on_time_close_rate": "按期结案率(%)",
    "due_handle": "应处置数",
    "on_time_handle": "按期处置数",
    "on_time_handle_rate": "按期处置率(%)",
    "overdue": "超期数",
    "handled": "处置数",
    "reworked": "返工数",
    "rework_rate": "返工率(%)",
    "called_back": "回访数",
    "satisfied": "满意数(含基本满意)",
    "dissatisfied": "不满意数",
    "satisfaction_rate": "满意率(%)",
    "excepted": "异常件数",
    "exception_rate": "异常件占比(%)",
    "dispatched": "派遣数",
    "median_work_hours_to_close_7d": "近7日结案时长中位数(工作时)",
    "composite": "综合指标值",
    "grade": "等级",
    "handle_rate": "处置率(%)",
    "whistle_calls": "吹哨次数",
    "whistle_on_time": "按时报到",
    "whistle_late": "迟报或未报",
    "whistle_on_time_rate": "按时报到率(%)",
    "person_id": "人员ID",
    "role": "角色",
    "reports": "上报数",
    "valid_reports": "有效上报数",
    "valid_report_rate": "有效上报率(%)",
    "verifications": "核查数",
    "verifications_on_time": "按时核查数",
    "on_time_verification_rate": "按时核查率(%)",
    "dispatches": "派遣数",
    "dispatches_sent_back": "被退回的派遣",
    "accurate_dispatch_rate": "准确派遣率(%)",
    "rank": "名次",
    "points": "积分",
    "grid_name": "网格",
    "valid_report": "有效上报",
    "overdue_task": "超期任务",
    "dissatisfied_callback": "回访不满意",
    "orders": "点单数",
    "done": "完成数",
    "hours": "志愿服务时长(小时)",
    "volunteers": "服务志愿者数",
    "party_members": "其中党员",
    "rated": "评价数",
}


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return getattr(rows, "columns", None) or (list(rows[0]) if rows else [])


def table_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows as CSV with Chinese headings (UTF-8 with BOM, so Excel opens it right); the
    heading row is there even when there are no rows."""
    out = io.StringIO()
    keys = _columns(rows)
    writer = csv.writer(out)
    writer.writerow([HEADINGS.get(k, k) for k in keys])
    for r in rows:
        writer.writerow(["" if r[k] is None else r[k] for k in keys])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def table_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    """Rows as an XLSX sheet with Chinese headings (the heading row even with no rows)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    keys = _columns(rows)
    sheet.append([HEADINGS.get(k, k) for k in keys])
    for r in rows:
        sheet.append([r[k] for k in keys])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
