"""The SQL of a case's side records: exception requests (延期, 退回, 缓办), callbacks (回访) and
the reporter's receipt. Every value is a bound parameter; split from hazards/sql.py (issue 10).
"""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.states import STATUS_NAMES_SQL

# ---- exceptions, callbacks and receipts ------------------------------------------------------
INSERT_EXCEPTION = text(
    """
    INSERT INTO case_exceptions (hazard_id, kind, reason, extension, from_status, requested_by,
                                 requester_name, requester_role, requester_person_id, grid_path)
    VALUES (:hazard_id, :kind, :reason, CAST(:extension AS jsonb), :from_status, :requested_by,
            :requester_name, :requester_role, :requester_person_id,
            CAST(:grid_path AS bigint[]))
    """
)

DECIDE_EXCEPTION = text(
    """
    UPDATE case_exceptions
       SET status = :status, decided_by = :decided_by, decider_name = :decider_name,
           decider_role = :decider_role, decided_at = now(), decision_note = :note
     WHERE id = :id AND status = 'pending'
    """
)

INSERT_CALLBACK = text(
    """
    INSERT INTO case_callbacks (hazard_id, rating, comment, via, taken_by, closed_at,
                                handler_person_id, handler_department_id, grid_path)
    VALUES (:hazard_id, :rating, :comment, :via, :taken_by, :closed_at, :handler_person_id,
            :handler_department_id, CAST(:grid_path AS bigint[]))
    """
)

# The approval queue: requests inside a scope (NULL: everywhere), newest first.
EXCEPTION_LIST = text(
    """
    SELECT x.id, x.hazard_id, h.public_code, h.status AS hazard_status, x.kind, x.status,
           x.reason, x.extension, x.requester_name, x.requester_role, x.requested_at,
           x.decider_name, x.decider_role, x.decided_at, x.decision_note,
           h.grid_chain -> -1 ->> 'name' AS grid_name,
           (SELECT name_zh FROM hazard_categories WHERE code = h.category_code) AS category_name,
           count(*) OVER () AS matched
      FROM case_exceptions x
      JOIN hazards h ON h.id = x.hazard_id
     WHERE x.status = :status
       AND (CAST(:scope AS bigint[]) IS NULL OR x.grid_path && CAST(:scope AS bigint[]))
     ORDER BY x.requested_at DESC, x.id DESC
     LIMIT :limit OFFSET :offset
    """
)

SET_RECEIPT = text("UPDATE hazards SET receipt_digest = :digest WHERE id = :id")

# What a reporter sees through the receipt link: public fields and the steps, no actors.
RECEIPT_VIEW = text(
    f"""
    SELECT h.id, h.public_code, h.status, h.category_code, c.name_zh AS category_name,
           h.description, h.address, h.reported_at, h.closed_at, h.due_at, h.accept_due_at,
           h.grid_chain -> -1 ->> 'name' AS grid_name,
           (SELECT s.name FROM {STATUS_NAMES_SQL} AS s (code, name) WHERE s.code = h.status)
               AS status_name,
           (SELECT json_agg(json_build_object('action', e.action, 'to_status', e.to_status,
                                              'at', e.created_at) ORDER BY e.created_at, e.id)
              FROM hazard_events e WHERE e.hazard_id = h.id) AS steps,
           (SELECT json_build_object('rating', cb.rating, 'comment', cb.comment,
                                     'at', cb.created_at, 'rework', cb.rework)
              FROM case_callbacks cb WHERE cb.hazard_id = h.id AND cb.closed_at = h.closed_at
             ORDER BY cb.id DESC LIMIT 1) AS callback
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
     WHERE h.receipt_digest = :digest
    """
)

RECEIPT_HAZARD = text("SELECT id FROM hazards WHERE receipt_digest = :digest")

MARK_CALLBACK_REWORK = text(
    """
    UPDATE case_callbacks SET rework = true
     WHERE hazard_id = :hazard_id AND closed_at = :closed_at
    """
)
