"""The SQL of the hazards read side, in one place. Every value is a bound parameter.

Only public fields leave these queries: the reporter's name and phone never do.
"""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.models import STATUS_NAMES_ZH
from gis_service.listing import feature_collection_sql, geometry_json

# Status names as a VALUES list built from a constant of ours (no user input in it).
_STATUS_NAMES = "(VALUES " + ", ".join(f"('{k}', '{v}')" for k, v in STATUS_NAMES_ZH.items()) + ")"

OVERDUE = "(t.due_at < now() AND t.status IN ('accepted', 'dispatched', 'in_progress'))"

_MATCHED = """
    SELECT h.*
      FROM hazards h
     WHERE (CAST(:statuses AS text[]) IS NULL OR h.status = ANY (CAST(:statuses AS text[])))
       AND (CAST(:categories AS text[]) IS NULL
            OR h.category_code = ANY (CAST(:categories AS text[])))
       AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND (CAST(:minx AS float8) IS NULL
            OR ST_Intersects(h.geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)))
       AND (CAST(:near_lon AS float8) IS NULL
            OR ST_DWithin(h.geom::geography,
                          ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography,
                          :radius))
       AND (CAST(:since AS timestamptz) IS NULL OR h.reported_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR h.reported_at < CAST(:until AS timestamptz))
       AND (CAST(:overdue AS boolean) IS NULL OR
            (h.due_at < now() AND h.status IN ('accepted', 'dispatched', 'in_progress'))
               = CAST(:overdue AS boolean))
"""

_PROPERTIES = f"""
    json_build_object(
        'public_code', t.public_code,
        'category', t.category_code,
        'category_name', (SELECT name_zh FROM hazard_categories WHERE code = t.category_code),
        'description', t.description,
        'severity', t.severity,
        'status', t.status,
        'status_name', (SELECT s.name FROM {_STATUS_NAMES} AS s (code, name)
                         WHERE s.code = t.status),
        'source', t.source,
        'address', t.address,
        'facility_code', t.facility_code,
        'grid_id', t.grid_id,
        'grid_chain', t.grid_chain,
        'responsible', t.responsible_snapshot,
        'department', (SELECT name_zh FROM departments WHERE id = t.department_id),
        'reported_at', t.reported_at,
        'due_at', t.due_at,
        'closed_at', t.closed_at,
        'updated_at', t.updated_at,
        'overdue', {OVERDUE},
        'version', t.version)
"""

_FEATURE = f"""
    json_build_object('type', 'Feature', 'id', t.id,
                      'geometry', {geometry_json("t.geom")},
                      'properties', {_PROPERTIES})
"""

HAZARD_LIST = text(feature_collection_sql(_MATCHED, _FEATURE, "t.reported_at DESC, t.id DESC"))

HAZARD_LIST_CSV = text(
    f"""
    SELECT t.id, t.public_code, t.category_code AS category,
           c.name_zh AS category_name, t.severity, t.status, t.source, t.description,
           t.address, t.facility_code, t.grid_id,
           t.grid_chain -> -1 ->> 'name' AS grid_name,
           t.responsible_snapshot ->> 'name' AS responsible_name,
           t.reported_at, t.due_at, t.closed_at, {OVERDUE} AS overdue,
           (gis_from_wgs84(ST_X(t.geom), ST_Y(t.geom), :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(t.geom), ST_Y(t.geom), :crs))[2] AS lat
      FROM ({_MATCHED}) t
      JOIN hazard_categories c ON c.code = t.category_code
     ORDER BY t.reported_at DESC, t.id DESC
     LIMIT :limit OFFSET :offset
    """
)

# One hazard with its full history (who moved it, from what to what, when and why).
HAZARD_FEATURE = text(
    f"""
    SELECT json_build_object(
        'type', 'Feature', 'id', t.id,
        'geometry', {geometry_json("t.geom")},
        'properties', {_PROPERTIES}::jsonb || jsonb_build_object(
            'accepted_at', t.accepted_at, 'dispatched_at', t.dispatched_at,
            'resolved_at', t.resolved_at, 'verified_at', t.verified_at,
            'duplicate_of', (SELECT public_code FROM hazards WHERE id = t.duplicate_of_id),
            'assignee', (SELECT json_build_object('name', p.name, 'work_phone', p.work_phone)
                           FROM people p WHERE p.id = t.assignee_person_id),
            'assignee_department', (SELECT name_zh FROM departments
                                     WHERE id = t.assignee_department_id),
            'history', (SELECT coalesce(json_agg(json_build_object(
                                   'action', e.action, 'from_status', e.from_status,
                                   'to_status', e.to_status, 'actor', e.actor_name,
                                   'note', e.note, 'at', e.created_at)
                               ORDER BY e.created_at, e.id), '[]'::json)
                          FROM hazard_events e WHERE e.hazard_id = t.id))
    )::text
      FROM hazards t
     WHERE t.id = :id
    """
)
