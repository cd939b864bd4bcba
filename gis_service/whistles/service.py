"""吹哨报到 with no HTTP: call parties in on a case, move a call (报到, 进展, 办结, 撤回), list
calls; each write in one transaction with the case's history and the audit row."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.cases.machine import check_move
from gis_service.db.transaction import transaction
from gis_service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from gis_service.hazards.history import record_event
from gis_service.hazards.policy import principal_tag
from gis_service.hazards.states import CLOSED_STATUSES
from gis_service.whistles import sql
from gis_service.whistles.schemas import WhistleActionIn, WhistleIn
from gis_service.whistles.workflow import WHISTLE_MACHINE, WHISTLE_STATUSES
from gis_service.worktime.schemas import TimeLimit


def _limit(raw: str, field: str) -> TimeLimit:
    try:
        return TimeLimit.model_validate(raw)
    except ValidationError:
        raise Invalid(
            f"{field} must look like '2 工作时', '3 工作日' or '4 小时', not {raw!r}.",
            **{field: raw},
        ) from None


def call_in(
    conn: Connection, principal: Principal, hazard_id: int, body: WhistleIn, ip: str | None
) -> dict[str, Any]:
    """社区吹哨: call every party in on an open case; deadlines in working time."""
    if not principal.authenticated:
        raise Unauthorized("Log in to blow the whistle.")
    report, act = _limit(body.report_in, "report_in"), _limit(body.act, "act")
    with transaction(conn):
        hazard = conn.execute(sql.LOCK_HAZARD, {"id": hazard_id}).first()
        if hazard is None or not principal.in_scope(list(hazard.grid_path or ())):
            raise NotFound(f"Hazard {hazard_id} does not exist or is outside your scope.")
        if not principal.can("dispatch", list(hazard.grid_path or ())):
            raise Forbidden(
                "Blowing the whistle (吹哨) is the community's decision: it needs the "
                "'dispatch' scope on the case.",
                needs_scope="dispatch",
            )
        if hazard.status in CLOSED_STATUSES:
            raise Conflict(
                f"Hazard {hazard.public_code} is {hazard.status}; call parties in on an open case.",
                code="case_closed",
                status=hazard.status,
            )
        calls = []
        for party in body.parties:
            if party.department is not None:
                row = conn.execute(sql.DEPARTMENT, {"code": party.department}).first()
                if row is None or not row.active:
                    raise Invalid(
                        f"No active department has the code {party.department!r}.",
                        department=party.department,
                    )
                dept_id, partner_id, name = row.id, None, row.name_zh
            else:
                row = conn.execute(sql.PARTNER, {"id": party.partner_id}).first()
                if row is None or not row.active:
                    raise Invalid(
                        f"No active partner unit has the id {party.partner_id}.",
                        partner_id=party.partner_id,
                    )
                dept_id, partner_id, name = None, row.id, row.name
            made = conn.execute(
                sql.INSERT_CALL,
                {
                    "hazard_id": hazard.id,
                    "department_id": dept_id,
                    "partner_id": partner_id,
                    "party_name": name,
                    "report": json.dumps(report.as_json()),
                    "act": json.dumps(act.as_json()),
                    "called_by": principal.name,
                    "note": body.note,
                    "grid_path": list(hazard.grid_path or ()),
                },
            ).one()
            conn.execute(
                sql.INSERT_EVENT,
                {
                    "call_id": made.id,
                    "action": "call",
                    "from_status": None,
                    "to_status": "called",
                    "actor_name": principal.name,
                    "note": body.note,
                },
            )
            calls.append(
                {
                    "id": made.id,
                    "party_name": name,
                    "report_due_at": made.report_due_at.isoformat(),
                    "act_due_at": made.act_due_at.isoformat(),
                }
            )
        record_event(
            conn,
            hazard.id,
            "whistle",
            hazard.status,
            hazard.status,
            principal,
            body.note,
            {
                "calls": calls,
                "report_in": report.text,
                "act": act.text,
                "principal": principal_tag(principal),
            },
        )
        record(
            conn,
            principal,
            "hazard.whistle",
            "hazard",
            hazard.id,
            None,
            {"calls": [c["id"] for c in calls]},
            hazard.grid_id,
            ip,
        )
    return {"hazard_id": hazard.id, "calls": calls}


def act(
    conn: Connection, principal: Principal, call_id: int, body: WhistleActionIn, ip: str | None
) -> dict[str, Any]:
    """One move of a call (报到, 进展, 办结, 撤回), compare-and-set on its version."""
    if not principal.authenticated:
        raise Unauthorized("Log in to record a report-in.")
    with transaction(conn):
        call = conn.execute(sql.LOCK_CALL, {"id": call_id}).first()
        path = list(call.grid_path or ()) if call is not None else []
        if call is None or not (
            principal.in_scope(path)
            or (principal.person_id is not None and call.assignee_person_id == principal.person_id)
        ):
            raise NotFound(f"吹哨 call {call_id} does not exist or is outside your scope.")
        move = WHISTLE_MACHINE.move(body.action)
        ok = (
            principal.can("dispatch", path)
            if move.scope == "dispatch"
            else principal.can_work_on(path, call.assignee_person_id, "write")
        )
        if not ok:
            raise Forbidden(
                f"You may not '{body.action}' this call: it needs the '{move.scope}' scope.",
                needs_scope=move.scope,
            )
        check_move(WHISTLE_MACHINE, body.action, call.status, body.version, call.version,
                   f"吹哨 call {call.id}")  # fmt: skip
        if body.action in ("progress", "withdraw") and not body.note:
            raise Invalid(f"'{body.action}' needs a note.", action=body.action)
        cols: dict[str, Any] = {}
        if body.action == "report_in":
            cols["reported_in_at"] = call.now
        elif body.action == "finish":
            cols["finished_at"] = call.now
        to_status = WHISTLE_MACHINE.target(body.action, call.status)
        version = conn.execute(
            sql.update_call(list(cols)),
            {
                "status": to_status,
                "id": call.id,
                "version": call.version,
                **{f"c_{k}": v for k, v in cols.items()},
            },
        ).scalar_one()
        conn.execute(
            sql.INSERT_EVENT,
            {
                "call_id": call.id,
                "action": body.action,
                "from_status": call.status,
                "to_status": to_status,
                "actor_name": principal.name,
                "note": body.note,
            },
        )
        late = body.action == "report_in" and call.now > call.report_due_at
        record(
            conn,
            principal,
            f"whistle.{body.action}",
            "whistle_call",
            call.id,
            {"status": call.status, "version": call.version},
            {"status": to_status, "version": version, "late": late},
            call.grid_id,
            ip,
        )
    return {
        "id": call.id,
        "hazard_id": call.hazard_id,
        "status": to_status,
        "status_name": WHISTLE_STATUSES[to_status],
        "version": version,
        "late": late if body.action == "report_in" else None,
    }


def list_calls(
    conn: Connection,
    principal: Principal,
    *,
    hazard: int | None,
    grid: int | None,
    status: str | None,
    late: bool | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Calls in the caller's scope, newest first, each with its history and late flag."""
    if not principal.authenticated:
        raise Unauthorized("Log in to see 吹哨 calls.")
    rows = conn.execute(
        sql.LIST_CALLS,
        {
            "scope": principal.scope_filter(),
            "hazard": hazard,
            "grid": grid,
            "status": status,
            "late": late,
            "limit": limit,
            "offset": offset,
        },
    ).all()
    items = []
    for r in rows:
        item = dict(r._mapping)
        item.pop("matched")
        for k in ("called_at", "report_due_at", "act_due_at", "reported_in_at", "finished_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["allowed_actions"] = WHISTLE_MACHINE.allowed(r.status)
        items.append(item)
    return {
        "number_matched": rows[0].matched if rows else 0,
        "number_returned": len(items),
        "statuses": WHISTLE_STATUSES,
        "moves": WHISTLE_MACHINE.table(),
        "items": items,
    }
