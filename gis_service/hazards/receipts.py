"""The reporter's receipt (回执): a link that carries a capability token, not the reporter's
identity. Through it the reporter follows the case and, after 结案, answers the callback
(回访: 满意 / 基本满意 / 不满意), asking for rework (返工) within the window."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import ANONYMOUS
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import Conflict, NotFound
from gis_service.hazards import sql, sql_cases
from gis_service.hazards.exceptions import RATINGS_ZH, record_callback
from gis_service.hazards.moves import commit_move, rework_columns
from gis_service.hazards.states import STATUS_NAMES_ZH

TOKEN_PREFIX = "rc_"
# The reporter, as the history and the audit log name them (no identity: the link is all).
REPORTER = dataclasses.replace(ANONYMOUS, name="报告人（回执链接）")


def digest(token: str) -> bytes:
    """SHA-256 of a token: only this is stored."""
    return hashlib.sha256(token.encode()).digest()


def issue(conn: Connection, hazard_id: int) -> str:
    """A new receipt token for a case (replacing any earlier one), in the caller's transaction."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    conn.execute(sql_cases.SET_RECEIPT, {"id": hazard_id, "digest": digest(token)})
    return token


def receipt_url(token: str) -> str:
    """Where the reporter opens the receipt."""
    return f"/api/v1/receipts/{token}"


def _missing() -> NotFound:
    return NotFound(
        "No case has this receipt; check the link you were given when you reported.",
        code="receipt_not_found",
    )


def view(conn: Connection, settings: Settings, token: str) -> dict[str, Any]:
    """What the reporter may see: the case's public fields, its steps and the callback."""
    row = conn.execute(sql_cases.RECEIPT_VIEW, {"digest": digest(token)}).first()
    if row is None:
        raise _missing()
    item = dict(row._mapping)
    for k in ("reported_at", "closed_at", "due_at", "accept_due_at"):
        item[k] = item[k].isoformat() if item[k] else None
    item["steps"] = [
        {**s, "status_name": STATUS_NAMES_ZH.get(s.get("to_status") or "", None)}
        for s in (item["steps"] or [])
    ]
    item["may_answer_callback"] = row.status == "closed" and row.callback is None
    item["ratings"] = RATINGS_ZH
    item["rework_days"] = settings.callback_rework_days
    return item


def answer(
    conn: Connection,
    settings: Settings,
    token: str,
    rating: str,
    comment: str | None,
    rework: bool,
    ip: str | None,
) -> dict[str, Any]:
    """The reporter's callback; 不满意 with ``rework`` inside the window sends the case back
    to its handler (返工), in the same transaction."""
    with transaction(conn):
        hid = conn.execute(sql_cases.RECEIPT_HAZARD, {"digest": digest(token)}).scalar()
        if hid is None:
            raise _missing()
        hazard = conn.execute(
            sql.LOCK_HAZARD, {"id": hid, "rework_days": settings.callback_rework_days}
        ).one()
        if hazard.status != "closed":
            raise Conflict(
                f"Case {hazard.public_code} is not closed yet ({STATUS_NAMES_ZH[hazard.status]});"
                " the callback comes after 结案.",
                code="not_closed",
                status=hazard.status,
            )
        if hazard.callback_taken:
            raise Conflict(
                "This case was already called back after it was closed.", code="callback_taken"
            )
        if rework and rating != "dissatisfied":
            raise Conflict("Rework is for an unsatisfied answer (不满意).", code="rework_refused")
        data = {"callback": {"rating": rating, "rating_zh": RATINGS_ZH[rating], "via": "receipt"}}
        record_callback(conn, hazard, rating, comment, "receipt", "reporter")
        commit_move(conn, hazard, "callback", {}, data, REPORTER, comment, ip)
        reworked = False
        if rework:
            # Read again: the answer just written opens the rework window (policy.case_facts).
            hazard = conn.execute(
                sql.LOCK_HAZARD, {"id": hid, "rework_days": settings.callback_rework_days}
            ).one()
            if not hazard.rework_open:
                raise Conflict(
                    f"Rework may be asked within {settings.callback_rework_days} days of 结案; "
                    f"this case was closed on {hazard.closed_at:%Y-%m-%d}.",
                    code="rework_window_passed",
                    rework_days=settings.callback_rework_days,
                )
            conn.execute(
                sql_cases.MARK_CALLBACK_REWORK, {"hazard_id": hid, "closed_at": hazard.closed_at}
            )
            commit_move(
                conn,
                hazard,
                "rework",
                rework_columns(hazard),
                {"reason": "回访不满意"},
                REPORTER,
                comment,
                ip,
            )
            reworked = True
    return {"hazard_id": hid, "rating": rating, "rework": reworked}
