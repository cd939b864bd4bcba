"""The SQL of the Open311 endpoints. Every value is a bound parameter."""

from __future__ import annotations

from sqlalchemy import text

# One row per request, with what agency_responsible and media_url need.
_REQUEST = """
    SELECT h.id, h.public_code, h.status, h.category_code, c.name_zh AS service_name,
           h.description, h.address, h.reported_at, h.updated_at, h.due_at, h.closed_at,
           ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat,
           (SELECT public_code FROM hazards WHERE id = h.duplicate_of_id) AS duplicate_of,
           (SELECT name_zh FROM departments WHERE id = h.assignee_department_id)
               AS assignee_department,
           (SELECT name FROM people WHERE id = h.assignee_person_id) AS assignee_name,
           h.responsible_snapshot ->> 'name' AS responsible_name,
           h.responsible_snapshot ->> 'role_name' AS responsible_role,
           (SELECT name_zh FROM departments WHERE id = h.department_id) AS department,
           (SELECT ph.id::text FROM hazard_photos ph WHERE ph.hazard_id = h.id
             ORDER BY ph.created_at, ph.position LIMIT 1) AS photo_id
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
"""

REQUESTS = text(
    _REQUEST
    + """
     WHERE (CAST(:codes AS text[]) IS NULL OR h.public_code = ANY (CAST(:codes AS text[])))
       AND (CAST(:services AS text[]) IS NULL
            OR h.category_code = ANY (CAST(:services AS text[])))
       AND (CAST(:statuses AS text[]) IS NULL OR h.status = ANY (CAST(:statuses AS text[])))
       AND (CAST(:start AS timestamptz) IS NULL OR h.reported_at >= CAST(:start AS timestamptz))
       AND (CAST(:end AS timestamptz) IS NULL OR h.reported_at <= CAST(:end AS timestamptz))
     ORDER BY h.reported_at DESC, h.id DESC
     LIMIT :limit
    """
)

# Open311 tokens live in their own namespace of idempotency keys (hazards.reporting).
REQUEST_BY_TOKEN = text(
    "SELECT id, public_code FROM hazards WHERE idempotency_key = 'open311|' || :token"
)

REQUEST_CODE = text("SELECT public_code FROM hazards WHERE id = :id")
