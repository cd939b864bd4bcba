"""Exceptions (延期, 缓办, 退回, 作废) and callbacks (回访) of a case with no HTTP: what each
step sets on the case, the ledger rows it writes inside the move's transaction, and the
approval queue.

An exception is requested with a reason by whoever works on the case and decided by a role
above the requester (gis_service.hazards.policy); the request and the decision are steps of
the case's history and rows of case_exceptions, which the assessment counts.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Row

from gis_service.auth.principal import Principal
from gis_service.errors import Conflict, Invalid
from gis_service.hazards import sql_cases
from gis_service.hazards.policy import principal_tag
from gis_service.hazards.schemas import ActionIn
from gis_service.hazards.workflow import EXCEPTION_OF_ACTION, EXCEPTIONS
from gis_service.worktime.schemas import TimeLimit

RATINGS_ZH = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


def extension_limit(body: ActionIn) -> TimeLimit:
    """The time asked for by request_extension: ``extension`` ('2 工作日') or
    ``extension_days`` (whole 工作日, as the workbench sends it)."""
    if body.extension is not None and body.extension_days is not None:
        raise Invalid("Send extension or extension_days, not both.")
    if body.extension_days is not None:
        return TimeLimit(amount=body.extension_days, unit="work_days")
    if body.extension is None:
        raise Invalid(
            "request_extension needs extension (e.g. '2 工作日') or extension_days.",
            action=body.action,
        )
    try:
        lim = TimeLimit.model_validate(body.extension)
    except ValidationError:
        raise Invalid(
            f"extension must look like '2 工作日' or '4 工作时', not {body.extension!r}.",
            extension=body.extension,
        ) from None
    if lim.unit == "hours":
        raise Invalid("An extension is counted in working time: 工作时 or 工作日.")
    return lim


def exception_changes(
    hazard: Row, body: ActionIn, principal: Principal
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns an exception step sets and the event data it records."""
    kind, step = EXCEPTION_OF_ACTION[body.action]
    name = EXCEPTIONS[kind].name_zh
    cols: dict[str, Any] = {}
    data: dict[str, Any] = {"exception": {"kind": kind, "name_zh": name, "step": step}}
    if step in ("request", "refuse") and not body.note:
        what = "request" if step == "request" else "refusal"
        raise Invalid(
            f"'{body.action}' needs a note: the reason for the {what}.", action=body.action
        )
    if step == "request":
        if kind == "extension":
            lim = extension_limit(body)
            data["exception"]["extension"] = lim.as_json()
        return cols, data
    data["exception"]["request_id"] = hazard.pending_id
    if step == "refuse":
        return cols, data
    now = hazard.now
    if kind == "extension":
        cols["due_at"] = hazard.extension_due
        data["exception"]["due_at"] = hazard.extension_due.isoformat()
    elif kind == "suspension":
        cols["suspended_at"] = now
    elif kind == "send_back":
        # Back to dispatch: the wrong handler is released and the clock starts again at the
        # next dispatch (the history keeps who had it).
        cols.update(
            assignee_person_id=None,
            assignee_department_id=None,
            dispatched_at=None,
            due_at=None,
        )
    return cols, data


def record_exception_step(
    conn: Connection, hazard: Row, body: ActionIn, principal: Principal, data: dict[str, Any]
) -> None:
    """Write the request, or the decision on it, in case_exceptions."""
    kind, step = EXCEPTION_OF_ACTION[body.action]
    if step == "request":
        conn.execute(
            sql_cases.INSERT_EXCEPTION,
            {
                "hazard_id": hazard.id,
                "kind": kind,
                "reason": body.note,
                "extension": json.dumps(data["exception"].get("extension"))
                if kind == "extension"
                else None,
                "from_status": hazard.status,
                "requested_by": principal_tag(principal),
                "requester_name": principal.name,
                "requester_role": principal.role if principal.kind == "user" else None,
                "requester_person_id": principal.person_id,
                "grid_path": list(hazard.grid_path or ()),
            },
        )
        return
    done = conn.execute(
        sql_cases.DECIDE_EXCEPTION,
        {
            "id": hazard.pending_id,
            "status": "approved" if step == "approve" else "refused",
            "decided_by": principal_tag(principal),
            "decider_name": principal.name,
            "decider_role": principal.role if principal.kind == "user" else None,
            "note": body.note,
        },
    ).rowcount
    if done != 1:  # pragma: no cover - the case row lock makes this unreachable
        raise Conflict("The request was decided meanwhile; reload.", code="request_decided")


def callback_changes(hazard: Row, body: ActionIn) -> dict[str, Any]:
    """The event data of a callback (the answer itself goes to case_callbacks)."""
    if body.rating is None:
        raise Invalid(
            "callback needs rating: satisfied (满意), basically_satisfied (基本满意) or "
            "dissatisfied (不满意).",
            action="callback",
        )
    if hazard.callback_taken:
        raise Conflict(
            f"Hazard {hazard.public_code} was already called back after this closing.",
            code="callback_taken",
        )
    return {"callback": {"rating": body.rating, "rating_zh": RATINGS_ZH[body.rating]}}


def record_callback(
    conn: Connection, hazard: Row, rating: str, comment: str | None, via: str, taken_by: str
) -> None:
    """The answer, with who handled the case and where it lies, for satisfaction rates."""
    conn.execute(
        sql_cases.INSERT_CALLBACK,
        {
            "hazard_id": hazard.id,
            "rating": rating,
            "comment": comment,
            "via": via,
            "taken_by": taken_by,
            "closed_at": hazard.closed_at,
            "handler_person_id": hazard.assignee_person_id,
            "handler_department_id": hazard.assignee_department_id,
            "grid_path": list(hazard.grid_path or ()),
        },
    )


def pending_requests(
    conn: Connection, scope: list[int] | None, status: str, limit: int, offset: int
) -> dict[str, Any]:
    """Exception requests in a scope (the approval queue), newest first."""
    rows = conn.execute(
        sql_cases.EXCEPTION_LIST,
        {"scope": scope, "status": status, "limit": limit, "offset": offset},
    ).all()
    items = []
    for r in rows:
        item = dict(r._mapping)
        item.pop("matched")
        item["name_zh"] = EXCEPTIONS[r.kind].name_zh
        for k in ("requested_at", "decided_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["url"] = f"/api/v1/hazards/{r.hazard_id}"
        items.append(item)
    return {
        "status": status,
        "number_matched": rows[0].matched if rows else 0,
        "number_returned": len(items),
        "items": items,
    }
