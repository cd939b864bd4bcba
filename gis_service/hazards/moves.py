"""The moves of the closed loop with no HTTP: lock the hazard, authorise, check the version
and the state, set what the move sets, and record the event, its photos and the audit row,
all in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row

from gis_service.auth.audit import record
from gis_service.auth.principal import Principal
from gis_service.config import Settings
from gis_service.db.transaction import transaction
from gis_service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionRequired,
    StaleVersion,
)
from gis_service.hazards import photos as photo_store
from gis_service.hazards import sql
from gis_service.hazards.exceptions import (
    callback_changes,
    exception_changes,
    record_callback,
    record_exception_step,
)
from gis_service.hazards.history import record_event, store_photos
from gis_service.hazards.photos import Photo
from gis_service.hazards.policy import authorize_move, case_facts, moves_for, principal_tag
from gis_service.hazards.queries import lookup_ref
from gis_service.hazards.schemas import ActionIn
from gis_service.hazards.states import CLOSED_STATUSES, STATUS_NAMES_ZH
from gis_service.hazards.versions import etag
from gis_service.hazards.workflow import (
    EXCEPTION_OF_ACTION,
    EXCEPTIONS,
    MOVES,
    allowed_actions,
    is_allowed,
    target_status,
)
from gis_service.idempotency import earlier, remember
from gis_service.idempotency import fingerprint as body_fingerprint
from gis_service.instants import check_recorded


@dataclass
class MoveResult:
    """A move that was made: the hazard, its new state and version, the event."""

    hazard_id: int
    action: str
    from_status: str
    to_status: str
    version: int
    event_id: int
    photo_ids: list[str]
    replayed: bool = False

    def as_result(self) -> dict[str, Any]:
        """What an idempotency key keeps of the move, to answer a retry."""
        return {
            "action": self.action,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "version": self.version,
            "event_id": self.event_id,
            "photo_ids": self.photo_ids,
        }


def _unused_fields(action: str, body: ActionIn) -> None:
    """422 for fields that the action does not take (a typo must not pass silently)."""
    takes = {
        "dispatch": {"assignee_person_id", "assignee_department"},
        "escalate": {"assignee_department"},
        "mark_duplicate": {"duplicate_of"},
        "request_extension": {"extension", "extension_days"},
        "callback": {"rating"},
    }.get(action, set())
    sent = {
        f
        for f in (
            "assignee_person_id",
            "assignee_department",
            "duplicate_of",
            "extension",
            "extension_days",
            "rating",
        )
        if getattr(body, f) is not None
    }
    extra = sorted(sent - takes)
    if extra:
        raise Invalid(
            f"'{action}' does not take {', '.join(extra)}.", action=action, unexpected=extra
        )


def _department(conn: Connection, code: str) -> Row:
    row = conn.execute(sql.DEPARTMENT, {"code": code}).first()
    if row is None or not row.active:
        raise Invalid(f"No active department has the code {code!r}.", assignee_department=code)
    return row


def _escalation_target(conn: Connection, hazard: Row) -> dict[str, Any]:
    """The leader of the grid above the level the case sits at now (吹哨 upwards)."""
    last = conn.execute(sql.LAST_ESCALATION_GRID, {"id": hazard.id}).scalar()
    grid = last or hazard.grid_id
    for _ in range(8):  # deeper than any hierarchy: street › community › grid › micro-grid
        if grid is None:
            break
        parent = conn.execute(sql.PARENT_LEADER, {"grid": grid}).first()
        if parent is None:
            break
        if parent.person_id is not None and parent.person_id != hazard.assignee_person_id:
            return {
                "to_grid_id": parent.grid_id,
                "to_grid": f"{parent.name} ({parent.code})",
                "assignee_person_id": parent.person_id,
                "assignee_name": parent.person_name,
            }
        grid = parent.grid_id
    raise Conflict(
        "There is no grid leader above this case to escalate to; name a department with "
        "assignee_department (社区吹哨、部门报到).",
        code="nowhere_to_escalate",
        hazard_id=hazard.id,
    )


def _changes(
    conn: Connection, settings: Settings, hazard: Row, body: ActionIn, principal: Principal
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns a move sets and the event data it records; 4xx for a bad move body."""
    action = body.action
    now: datetime = hazard.now
    cols: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if action in ("reject", "fail_verification", "reopen") and not body.note:
        raise Invalid(f"'{action}' needs a note saying why.", action=action)
    if action == "accept":
        cols["accepted_at"] = now
    elif action == "dispatch":
        if body.assignee_person_id is None and body.assignee_department is None:
            raise Invalid(
                "dispatch needs assignee_person_id or assignee_department (or both).",
                action=action,
            )
        person_id = dept_id = None
        if body.assignee_person_id is not None:
            person = conn.execute(sql.PERSON, {"id": body.assignee_person_id}).first()
            if person is None or not person.active:
                raise Invalid(
                    f"No active person has the id {body.assignee_person_id}.",
                    assignee_person_id=body.assignee_person_id,
                )
            scope = principal.scope_filter()
            # The assignee reads the reporter's contact: only people who work in the
            # dispatcher's own area may be given the case.
            if (
                scope is not None
                and not conn.execute(
                    sql.PERSON_IN_SCOPE, {"id": person.id, "scope": scope}
                ).scalar()
            ):
                raise Forbidden(
                    f"Person {person.id} does not work in your area; dispatch to someone on a "
                    "grid of your subtree, or to a department.",
                    code="assignee_outside_scope",
                    assignee_person_id=person.id,
                )
            person_id = person.id
            data["assignee"] = {"id": person.id, "name": person.name}
        if body.assignee_department is not None:
            dept = _department(conn, body.assignee_department)
            dept_id = dept.id
            data["assignee_department"] = {"code": dept.code, "name": dept.name_zh}
        cols["assignee_person_id"] = person_id
        cols["assignee_department_id"] = dept_id
        if hazard.status == "accepted":
            # The deadline clock starts at the first dispatch; a re-dispatch keeps it.
            cols["dispatched_at"] = now
            cols["due_at"] = hazard.handle_due  # 处置 limit in working time
            data["due_at"] = cols["due_at"].isoformat()
    elif action == "escalate":
        if body.assignee_department is not None:
            dept = _department(conn, body.assignee_department)
            cols["assignee_department_id"] = dept.id
            cols["assignee_person_id"] = None
            data["assignee_department"] = {"code": dept.code, "name": dept.name_zh}
        else:
            target = _escalation_target(conn, hazard)
            cols["assignee_person_id"] = target["assignee_person_id"]
            cols["assignee_department_id"] = None
            data.update(target)
        if hazard.dispatched_at is None:
            cols["dispatched_at"] = now
        if hazard.due_at is None:
            cols["due_at"] = hazard.handle_due
    elif action == "resolve":
        cols["resolved_at"] = now
        cols["close_due_at"] = hazard.close_due  # 结案 limit runs from the report back
    elif action == "verify":
        cols["verified_at"] = now
    elif action == "fail_verification":
        # Rework keeps the 处置 deadline; the 结案 clock starts again at the next report back.
        cols["resolved_at"] = None
        cols["close_due_at"] = None
        cols["rework_count"] = hazard.rework_count + 1
    elif action == "close":
        cols["closed_at"] = now
    elif action == "reopen":
        days = settings.hazard_reopen_days
        if hazard.closed_at is None or now - hazard.closed_at > timedelta(days=days):
            raise Conflict(
                f"A closed hazard may be reopened within {days} days of closing; this one was "
                f"closed on {hazard.closed_at:%Y-%m-%d}. Report it again instead.",
                code="reopen_window_passed",
                closed_at=hazard.closed_at.isoformat() if hazard.closed_at else None,
                reopen_days=days,
            )
        cols.update(
            closed_at=None,
            verified_at=None,
            resolved_at=None,
            due_at=None,
            close_due_at=None,
            dispatched_at=None,
            assignee_person_id=None,
            assignee_department_id=None,
            duplicate_of_id=None,
        )
    elif action == "mark_duplicate":
        if body.duplicate_of is None:
            raise Invalid("mark_duplicate needs duplicate_of: the id or code of the original.")
        other = lookup_ref(conn, body.duplicate_of)
        if other is None:
            raise Invalid(
                f"No hazard {body.duplicate_of!r} to mark this one a duplicate of.",
                duplicate_of=body.duplicate_of,
            )
        if other.id == hazard.id:
            raise Invalid("A hazard cannot be a duplicate of itself.", duplicate_of=other.id)
        if other.status in CLOSED_STATUSES:
            raise Conflict(
                f"{other.public_code} is {other.status}; mark a duplicate of an open hazard.",
                code="duplicate_target_closed",
                duplicate_of=other.id,
                status=other.status,
            )
        cols["duplicate_of_id"] = other.id
        cols["closed_at"] = now
        data["duplicate_of"] = {"id": other.id, "public_code": other.public_code}
    elif action in EXCEPTION_OF_ACTION:
        cols, data = exception_changes(hazard, body, principal)
    elif action == "resume":
        # 缓办 ends: the working time that was left when it began runs again from now.
        cols["due_at"] = hazard.resume_due
        cols["suspended_at"] = None
        data["due_at"] = hazard.resume_due.isoformat() if hazard.resume_due else None
    elif action == "callback":
        data = callback_changes(hazard, body)
    elif action == "rework":
        cols = rework_columns(hazard)
        data["reason"] = "回访不满意"
    elif action == "comment":
        pass
    return cols, data


def rework_columns(hazard: Row) -> dict[str, Any]:
    """返工 after an unsatisfied callback: back to the same handler with a new 处置 deadline."""
    return {
        "closed_at": None,
        "verified_at": None,
        "resolved_at": None,
        "close_due_at": None,
        "due_at": hazard.handle_due,
        "rework_count": hazard.rework_count + 1,
    }


def _guard_refusal(action: str, hazard: Row, facts: list[str]) -> Conflict:
    """409 for a move the state allows but the case's facts do not."""
    guard = MOVES[action].guard or ""
    if guard == "no_pending":
        kind = hazard.pending_kind
        return Conflict(
            f"A {EXCEPTIONS[kind].name_zh} request is waiting for approval on "
            f"{hazard.public_code}; it must be decided first.",
            code="request_pending",
            pending=kind,
        )
    if guard.startswith("pending:"):
        kind = guard.split(":", 1)[1]
        return Conflict(
            f"There is no {EXCEPTIONS[kind].name_zh} request waiting on {hazard.public_code}.",
            code="no_such_request",
            needs=kind,
        )
    return Conflict(
        "Rework (返工) follows an unsatisfied callback (不满意) within the window after 结案.",
        code="rework_not_open",
    )


def commit_move(
    conn: Connection,
    hazard: Row,
    action: str,
    cols: dict[str, Any],
    data: dict[str, Any],
    principal: Principal,
    note: str | None,
    ip: str | None,
    occurred_at: datetime | None = None,
) -> tuple[str, int, int]:
    """Write a checked move inside the caller's transaction: the compare-and-set UPDATE, the
    history event and the audit row; returns the new state, version and event id.
    ``occurred_at`` is when an offline phone made the move (None: now)."""
    to_status = target_status(action, hazard.status)
    sets = list(cols)  # column names are ours, never the client's
    new_version = conn.execute(
        sql.move_statement(sets),
        {
            "status": to_status,
            "id": hazard.id,
            "version": hazard.version,
            **{f"c_{k}": v for k, v in cols.items()},
        },
    ).scalar()
    if new_version is None:  # pragma: no cover - the row lock makes this unreachable
        raise StaleVersion("The hazard changed meanwhile; reload.", version=hazard.version)
    data["principal"] = principal_tag(principal)
    event_id = record_event(
        conn, hazard.id, action, hazard.status, to_status, principal, note, data, occurred_at
    )
    before = {"status": hazard.status, "version": hazard.version}
    before.update({k: getattr(hazard, k, None) for k in cols if hasattr(hazard, k)})
    after = {"status": to_status, "version": new_version, **cols}
    for key in ("exception", "callback"):
        if key in data:
            after[key] = data[key]
    if occurred_at is not None:
        after["occurred_at"] = occurred_at
    record(
        conn, principal, f"hazard.{action}", "hazard", hazard.id, before, after, hazard.grid_id, ip
    )
    return to_status, new_version, event_id


def apply_move(
    conn: Connection,
    *,
    settings: Settings,
    principal: Principal,
    hazard_id: int,
    body: ActionIn,
    if_match: int | None,
    photos: list[Photo],
    ip: str | None,
    idempotency_key: str | None = None,
) -> MoveResult:
    """Make one move in one transaction: lock, authorise, check version and state, update
    (compare-and-set on version), record the event, its photos and the audit row.

    With an idempotency key, a retry of the same move by the same caller (an offline queue
    that did not hear back) answers with the first result instead of moving again."""
    action = body.action
    _unused_fields(action, body)
    caller = principal_tag(principal)
    fp = body_fingerprint(
        {**body.model_dump(mode="json"), "hazard_id": hazard_id, "if_match": if_match},
        [p.sha256 for p in photos],
        caller,
    )
    if body.occurred_at is not None:
        try:
            check_recorded(
                body.occurred_at, datetime.now(UTC), timedelta(days=settings.field_max_age_days)
            )
        except ValueError as exc:
            raise Invalid(f"occurred_at: {exc}.", code="bad_recorded_time") from None
    written: list[Path] = []
    try:
        with transaction(conn):
            hazard = conn.execute(
                sql.LOCK_HAZARD,
                {"id": hazard_id, "rework_days": settings.callback_rework_days},
            ).first()
            if hazard is None:
                raise NotFound(f"Hazard {hazard_id} does not exist.", id=hazard_id)
            # After the row lock: a concurrent retry waits for the first and then sees its key.
            first = earlier(conn, caller, idempotency_key, "hazard.move", fp)
            if first is not None:
                return MoveResult(hazard_id=hazard.id, replayed=True, **first.result)
            authorize_move(principal, hazard, action)
            expected = if_match if if_match is not None else body.version
            if expected is None:
                raise PreconditionRequired(
                    "Send If-Match with the hazard's ETag (from GET /api/v1/hazards/{id}) or a "
                    "version field, so that two people cannot overwrite each other's moves.",
                    version=hazard.version,
                    etag=etag(hazard.version),
                )
            if expected != hazard.version:
                raise StaleVersion(
                    f"Hazard {hazard.public_code} has changed since you loaded it (you sent "
                    f"version {expected}, it is now {hazard.version}). Reload it and decide "
                    "again.",
                    version=hazard.version,
                    etag=etag(hazard.version),
                    sent=expected,
                )
            facts = case_facts(hazard)
            if is_allowed(action, hazard.status) and not is_allowed(action, hazard.status, facts):
                raise _guard_refusal(action, hazard, facts)
            if not is_allowed(action, hazard.status, facts):
                allowed = allowed_actions(hazard.status, facts)
                raise Conflict(
                    f"'{action}' is not possible while the hazard is {hazard.status} "
                    f"({STATUS_NAMES_ZH[hazard.status]}). Allowed now: {', '.join(allowed)}.",
                    code="move_not_allowed",
                    status=hazard.status,
                    action=action,
                    allowed=allowed,
                    allowed_for_you=moves_for(principal, hazard),
                )
            if action == "comment" and not body.note and not photos:
                raise Invalid("A comment needs a note or photos.")
            cols, data = _changes(conn, settings, hazard, body, principal)
            to_status, new_version, event_id = commit_move(
                conn, hazard, action, cols, data, principal, body.note, ip, body.occurred_at
            )
            if action in EXCEPTION_OF_ACTION:
                record_exception_step(conn, hazard, body, principal, data)
            elif action == "callback":
                assert body.rating is not None  # callback_changes checked it
                record_callback(conn, hazard, body.rating, body.note, "staff", principal.name)
            photo_ids, written = store_photos(
                conn, settings, hazard.id, event_id, photos, principal_tag(principal)
            )
            result = MoveResult(
                hazard.id, action, hazard.status, to_status, new_version, event_id, photo_ids
            )
            # Retries of this move wait on the hazard's row lock; only a concurrent request
            # that reused the key for something else can have taken it meanwhile.
            if not remember(
                conn,
                caller,
                idempotency_key,
                "hazard.move",
                fp,
                "hazard_event",
                event_id,
                result.as_result(),
            ):
                raise Invalid(
                    "This Idempotency-Key was used for another request at the same moment.",
                    code="idempotency_key_reused",
                    idempotency_key=idempotency_key,
                )
    except BaseException:
        photo_store.discard(written)
        raise
    return result
