"""The SQL of 吹哨报到; deadlines by the working-time functions of migration 0006."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.cases.machine import sql_names
from gis_service.whistles.workflow import WHISTLE_STATUSES

_STATUS_NAMES = sql_names(WHISTLE_STATUSES)

LOCK_HAZARD = text(
    """
    SELECT id, public_code, status, grid_id, grid_path, assignee_person_id
      FROM hazards WHERE id = :id FOR UPDATE
    """
)

DEPARTMENT = text("SELECT id, code, name_zh, active FROM departments WHERE code = :code")
PARTNER = text("SELECT id, name, active FROM partner_units WHERE id = :id")

INSERT_CALL = text(
    """
    INSERT INTO whistle_calls (hazard_id, department_id, partner_id, party_name, report_limit,
                               act_limit, report_due_at, act_due_at, called_by, note, grid_path)
    VALUES (:hazard_id, :department_id, :partner_id, :party_name, CAST(:report AS jsonb),
            CAST(:act AS jsonb), gis_work_due(now(), CAST(:report AS jsonb)),
            gis_work_due(now(), CAST(:act AS jsonb)), :called_by, :note,
            CAST(:grid_path AS bigint[]))
    RETURNING id, report_due_at, act_due_at
    """
)

LOCK_CALL = text(
    """
    SELECT w.*, h.public_code, h.grid_path AS hazard_path, h.assignee_person_id,
           h.grid_id, now() AS now
      FROM whistle_calls w
      JOIN hazards h ON h.id = w.hazard_id
     WHERE w.id = :id
       FOR UPDATE OF w
    """
)


def update_call(columns: list[str]):
    """Compare-and-set UPDATE of a call (column names are ours)."""
    sets = "".join(f", {c} = :c_{c}" for c in columns)
    return text(
        f"UPDATE whistle_calls SET status = :status, version = version + 1{sets}"
        " WHERE id = :id AND version = :version RETURNING version"
    )


INSERT_EVENT = text(
    """
    INSERT INTO whistle_events (call_id, action, from_status, to_status, actor_name, note)
    VALUES (:call_id, :action, :from_status, :to_status, :actor_name, :note)
    """
)


def late_sql(alias: str, at: str = "now()") -> str:
    """SQL: is the call ``alias`` late at ``at``: reported in after its deadline, or still
    not reported in past it (a call withdrawn before reporting in is not late)?"""
    return (
        f"({alias}.reported_in_at > {alias}.report_due_at"
        f" OR ({alias}.status = 'called' AND {alias}.report_due_at < {at}))"
    )


LATE = late_sql("w")

LIST_CALLS = text(
    f"""
    SELECT w.id, w.hazard_id, h.public_code, w.status,
           (SELECT s.name FROM {_STATUS_NAMES} AS s (code, name) WHERE s.code = w.status)
               AS status_name,
           w.party_name, (SELECT code FROM departments WHERE id = w.department_id) AS department,
           w.partner_id, w.report_limit ->> 'text' AS report_in_limit,
           w.act_limit ->> 'text' AS act_limit, w.called_at, w.called_by, w.report_due_at,
           w.act_due_at, w.reported_in_at, w.finished_at, w.note, w.version,
           {LATE} AS late,
           (w.status = 'reported_in' AND w.act_due_at < now()) AS act_overdue,
           (SELECT coalesce(json_agg(json_build_object(
                        'action', e.action, 'to_status', e.to_status, 'actor', e.actor_name,
                        'note', e.note, 'at', e.created_at) ORDER BY e.created_at, e.id),
                    '[]'::json)
              FROM whistle_events e WHERE e.call_id = w.id) AS history,
           count(*) OVER () AS matched
      FROM whistle_calls w
      JOIN hazards h ON h.id = w.hazard_id
     WHERE (CAST(:scope AS bigint[]) IS NULL OR w.grid_path && CAST(:scope AS bigint[]))
       AND (CAST(:hazard AS bigint) IS NULL OR w.hazard_id = CAST(:hazard AS bigint))
       AND (CAST(:grid AS bigint) IS NULL OR w.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND (CAST(:status AS text) IS NULL OR w.status = CAST(:status AS text))
       AND (CAST(:late AS boolean) IS NULL OR {LATE} = CAST(:late AS boolean))
     ORDER BY w.called_at DESC, w.id DESC
     LIMIT :limit OFFSET :offset
    """
)
