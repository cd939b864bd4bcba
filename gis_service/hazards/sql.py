"""The SQL of the hazards read side, in one place. Every value is a bound parameter.

Only public fields leave these queries: the reporter's name and phone never do.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from gis_service.auth.visibility import private_sql
from gis_service.db.geojson import feature_collection_sql, geometry_json
from gis_service.geo.areas import bbox_sql
from gis_service.hazards.states import (
    STATUS_NAMES_SQL,
    open_sql,
    overdue_sql,
)

OVERDUE = overdue_sql("t")

_MATCHED = """
    SELECT h.*
      FROM hazards h
     WHERE (CAST(:statuses AS text[]) IS NULL OR h.status = ANY (CAST(:statuses AS text[])))
       AND (CAST(:categories AS text[]) IS NULL
            OR h.category_code = ANY (CAST(:categories AS text[])))
       AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND {bbox}
       AND (CAST(:near_lon AS float8) IS NULL
            OR ST_DWithin(h.geom::geography,
                          ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography,
                          :radius))
       AND (CAST(:since AS timestamptz) IS NULL OR h.reported_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR h.reported_at < CAST(:until AS timestamptz))
       AND (CAST(:overdue AS boolean) IS NULL OR
            {overdue} = CAST(:overdue AS boolean))
""".format(overdue=overdue_sql("h"), bbox=bbox_sql("h.geom"))

_PROPERTIES = f"""
    json_build_object(
        'public_code', t.public_code,
        'category', t.category_code,
        'category_name', (SELECT name_zh FROM hazard_categories WHERE code = t.category_code),
        'description', t.description,
        'severity', t.severity,
        'status', t.status,
        'status_name', (SELECT s.name FROM {STATUS_NAMES_SQL} AS s (code, name)
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

# ---- the write side ---------------------------------------------------------------------------
# Hazard photos as JSON (URLs relative to the API root), used by the feature and history.
_PHOTOS_OF = """
    (SELECT coalesce(json_agg(json_build_object(
                'id', ph.id,
                'url', '/api/v1/hazards/' || ph.hazard_id || '/photos/' || ph.id,
                'thumbnail_url',
                    '/api/v1/hazards/' || ph.hazard_id || '/photos/' || ph.id || '?variant=thumb',
                'content_type', ph.content_type, 'width', ph.width, 'height', ph.height)
            ORDER BY ph.created_at, ph.position), '[]'::json)
       FROM hazard_photos ph WHERE {where})
"""

# Who may see the reporter, and the actors and notes of the history (auth.visibility).
_PRIVATE = private_sql("t.grid_path", "t.assignee_person_id")

# One hazard with its history and photos, and its version for the ETag.
HAZARD_FEATURE_V = text(
    f"""
    SELECT json_build_object(
        'type', 'Feature', 'id', t.id,
        'geometry', {geometry_json("t.geom")},
        'properties', {_PROPERTIES}::jsonb || jsonb_build_object(
            'accepted_at', t.accepted_at, 'dispatched_at', t.dispatched_at,
            'accept_due_at', t.accept_due_at, 'close_due_at', t.close_due_at,
            'time_limits', (SELECT c.time_limits FROM hazard_categories c
                             WHERE c.code = t.category_code),
            'resolved_at', t.resolved_at, 'verified_at', t.verified_at,
            'location_accuracy_m', t.location_accuracy_m,
            'observed_at', t.observed_at,
            'patrol_ref', CASE WHEN {_PRIVATE} THEN t.patrol_ref END,
            'grid_path', t.grid_path,
            'duplicate_of', (SELECT json_build_object('id', d.id, 'public_code', d.public_code)
                               FROM hazards d WHERE d.id = t.duplicate_of_id),
            'assignee', (SELECT json_build_object('id', p.id, 'name', p.name,
                                                  'work_phone', p.work_phone)
                           FROM people p WHERE p.id = t.assignee_person_id),
            'assignee_department', (SELECT json_build_object('code', d.code, 'name', d.name_zh)
                                      FROM departments d WHERE d.id = t.assignee_department_id),
            -- The request waiting for a decision, so the approver sees what is asked.
            'pending_request', (SELECT json_build_object(
                                    'id', x.id, 'kind', x.kind,
                                    'extension', x.extension ->> 'text',
                                    'reason', CASE WHEN {_PRIVATE} THEN x.reason END,
                                    'requester', CASE WHEN {_PRIVATE} THEN x.requester_name END,
                                    'requested_at', x.requested_at)
                                  FROM case_exceptions x
                                 WHERE x.hazard_id = t.id AND x.status = 'pending'),
            'photos', {_PHOTOS_OF.format(where="ph.hazard_id = t.id")},
            'reporter', CASE WHEN {_PRIVATE} THEN json_build_object(
                            'name', t.reporter_name, 'phone', t.reporter_phone,
                            'submitted_by', t.reporter_principal) END,
            'history', (SELECT coalesce(json_agg(json_build_object(
                                   'id', e.id, 'action', e.action, 'from_status', e.from_status,
                                   'to_status', e.to_status,
                                   'actor', CASE WHEN {_PRIVATE} THEN e.actor_name END,
                                   'note', CASE WHEN {_PRIVATE} THEN e.note END,
                                   'at', e.created_at,
                                   'occurred_at', e.occurred_at,
                                   -- 延期: the time asked for, and the deadline it gave.
                                   'extension', e.data #>> '{{exception,extension,text}}',
                                   'new_due_at', e.data #>> '{{exception,due_at}}',
                                   'photos', {_PHOTOS_OF.format(where="ph.event_id = e.id")})
                               ORDER BY e.created_at, e.id), '[]'::json)
                          FROM hazard_events e WHERE e.hazard_id = t.id))
    )::text,
    t.version
      FROM hazards t
     WHERE t.id = :id
    """
)

# Private fields, for principals allowed to read them inside their scope.
HAZARD_PRIVATE = text(
    """
    SELECT reporter_name, reporter_phone, reporter_principal
      FROM hazards WHERE id = :id
    """
)

# The new row's routing, read back within the report's transaction.
NEW_HAZARD = text("SELECT id, grid_id, grid_path, status, version FROM hazards WHERE id = :id")

SELECT_BY_IDEMPOTENCY_KEY = text(
    "SELECT id, idempotency_fingerprint FROM hazards WHERE idempotency_key = :key"
)

# Routing, snapshot and insert in one statement: the finest grid at this instant (the rule
# lives in gis_finest_grid), its chain and primary responsible person frozen on the row, so
# later redrawing changes nothing here. Nothing is inserted when the point is in no grid, or
# when a concurrent request already holds the idempotency key.
INSERT_HAZARD = text(
    """
    WITH q AS (
        SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt, now() AS at
    ),
    r AS (
        SELECT g.id AS grid_id, g.path, gis_grid_chain(g.id) AS chain,
               gis_responsible_person(g.id, q.at) AS person_id, q.pt, q.at
          FROM q
          JOIN grids g ON g.id = gis_finest_grid(q.pt, q.at)
    )
    INSERT INTO hazards (
        public_code, category_code, description, severity, status, source, geom,
        location_accuracy_m, address, facility_id, facility_code, grid_id, grid_path, grid_chain,
        responsible_person_id, responsible_snapshot, department_id, reporter_name,
        reporter_phone, idempotency_key, idempotency_fingerprint, reporter_principal,
        reported_at, updated_at, accept_due_at, observed_at, patrol_ref)
    SELECT 'YH' || to_char(r.at AT TIME ZONE :tz, 'YYYYMMDD') || '-'
               || lpad(nextval('hazard_public_code_seq')::text, 6, '0'),
           :category, :description, :severity, 'reported', :source, r.pt,
           :accuracy, :address, :facility_id, :facility_code, r.grid_id, r.path, r.chain,
           r.person_id,
           (SELECT jsonb_build_object('person_id', p.id, 'name', p.name, 'role', a.role,
                                      'role_name', ar.name_zh, 'work_phone', p.work_phone,
                                      'grid_id', a.grid_id)
              FROM grid_assignments a
              JOIN people p ON p.id = a.person_id
              JOIN assignment_roles ar ON ar.code = a.role
             WHERE a.person_id = r.person_id AND a.grid_id = ANY (r.path) AND a.is_primary
               AND gis_valid_at(a.valid_from, a.valid_to, r.at)
             ORDER BY array_position(r.path, a.grid_id) DESC
             LIMIT 1),
           (SELECT id FROM departments WHERE code = :department),
           :reporter_name, :reporter_phone, :key, :fingerprint, :principal, r.at, r.at,
           -- 立案 limit, in working time from the report (GB/T 30428.8)
           gis_work_due(r.at, (SELECT time_limits -> 'accept' FROM hazard_categories
                                WHERE code = :category)),
           CAST(:observed_at AS timestamptz), CAST(:patrol_ref AS uuid)
      FROM r
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
    """
)

# The nearest current territorial grid and the distance to it, for the 422 of a point that
# lies in none. KNN on the index picks candidates; the spheroid decides among them.
NEAREST_GRID = text(
    """
    WITH q AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt),
    c AS (
        SELECT g.id, g.code, g.name, g.level, g.geom
          FROM grids g, q
         WHERE gis_valid_at(g.valid_from, g.valid_to, now())
           AND g.level IN (SELECT code FROM grid_levels WHERE territorial)
         ORDER BY g.geom <-> q.pt
         LIMIT 20
    )
    SELECT c.id, c.code, c.name, c.level,
           round(ST_Distance(c.geom::geography, q.pt::geography)::numeric, 1) AS distance_m
      FROM c, q, grid_levels l
     WHERE l.code = c.level
     ORDER BY distance_m, l.rank DESC, c.code
     LIMIT 1
    """
)

# The box prefilter (:deg, at least the radius in degrees) lets the GiST index on geom work;
# the spheroid distance then decides.
SNAP_FACILITY = text(
    """
    WITH q AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt)
    SELECT f.id, f.code, f.type_code,
           round(ST_Distance(f.geom::geography, q.pt::geography)::numeric, 1) AS distance_m
      FROM facilities f, q
     WHERE f.type_code = ANY (CAST(:types AS text[]))
       AND f.status <> 'retired'
       AND f.geom && ST_Expand(q.pt, :deg)
       AND ST_DWithin(f.geom::geography, q.pt::geography, :radius)
     ORDER BY distance_m, f.code
     LIMIT 1
    """
)

FACILITY_BY_CODE = text(
    """
    SELECT f.id, f.code, f.type_code, f.status,
           round(ST_Distance(f.geom::geography,
                             ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)::numeric, 1)
               AS distance_m
      FROM facilities f
     WHERE f.code = :code
    """
)

# Open hazards of the same category near a point (FixMyStreet's duplicate suggestions).
DUPLICATE_SUGGESTIONS = text(
    f"""
    WITH q AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt)
    SELECT h.id, h.public_code, h.status, h.description, h.reported_at, h.facility_code,
           round(ST_Distance(h.geom::geography, q.pt::geography)::numeric, 1) AS distance_m
      FROM hazards h, q
     WHERE h.category_code = :category
       AND {open_sql("h")}
       AND h.id <> coalesce(CAST(:exclude AS bigint), -1)
       AND h.geom && ST_Expand(q.pt, :deg)
       AND ST_DWithin(h.geom::geography, q.pt::geography, :radius)
     ORDER BY distance_m, h.reported_at DESC
     LIMIT 10
    """
)

# The row a move works on, locked for the rest of the transaction: a concurrent move waits
# here, then sees the new version and gets 412.
# What the guards of the moves look at (gis_service.hazards.policy.case_facts): the request
# waiting for a decision, and whether an unsatisfied callback may still send the case back.
_CASE_FACTS = """
           x.id AS pending_id, x.kind AS pending_kind, x.requester_role,
           x.requested_by AS pending_requested_by,
           EXISTS (SELECT 1 FROM case_callbacks cb
                    WHERE cb.hazard_id = h.id AND cb.closed_at = h.closed_at) AS callback_taken,
           (h.status = 'closed'
            AND h.closed_at > now() - make_interval(days => CAST(:rework_days AS integer))
            AND EXISTS (SELECT 1 FROM case_callbacks cb
                         WHERE cb.hazard_id = h.id AND cb.closed_at = h.closed_at
                           AND cb.rating = 'dissatisfied')) AS rework_open"""

LOCK_HAZARD = text(
    f"""
    SELECT h.id, h.public_code, h.status, h.version, h.category_code, h.grid_id, h.grid_path,
           h.grid_chain, h.assignee_person_id, h.assignee_department_id, h.department_id,
           h.due_at, h.dispatched_at, h.closed_at, h.duplicate_of_id,
           ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat,
           (SELECT code FROM departments WHERE id = h.assignee_department_id)
               AS assignee_department,
           -- The deadlines a move may start, in working time from now (migration 0006).
           gis_work_due(now(), c.time_limits -> 'handle') AS handle_due,
           gis_work_due(now(), c.time_limits -> 'close') AS close_due,
           h.suspended_at, h.rework_count, h.reported_at,
           -- an approved extension moves the 处置 deadline by the time asked for
           gis_work_due(h.due_at, x.extension) AS extension_due,
           -- 缓办 ends: the working time left at its start runs again from now
           CASE WHEN h.suspended_at IS NOT NULL THEN
               gis_work_add(now(), greatest(0, gis_work_seconds(h.suspended_at, h.due_at)))
           END AS resume_due,
           {_CASE_FACTS},
           now() AS now
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
      LEFT JOIN case_exceptions x ON x.hazard_id = h.id AND x.status = 'pending'
     WHERE h.id = :id
       FOR UPDATE OF h
    """
)

HAZARD_REF = text(
    """
    SELECT id, public_code, status, category_code, grid_path
      FROM hazards
     WHERE id = CAST(:id AS bigint) OR public_code = :code
    """
)

PERSON = text("SELECT id, name, active FROM people WHERE id = :id")
# Whether a person works now on a grid inside a subtree (ids of its root's versions).
PERSON_IN_SCOPE = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
         WHERE a.person_id = :id AND gis_valid_at(a.valid_from, a.valid_to, now())
           AND g.path && CAST(:scope AS bigint[]))
    """
)
DEPARTMENT = text("SELECT id, code, name_zh, active FROM departments WHERE code = :code")

# The leader a case escalates to: the primary responsible person of the grid above ``grid``
# (walking further up when that grid has nobody).
PARENT_LEADER = text(
    """
    SELECT p.id AS grid_id, p.code, p.name, p.level,
           gis_responsible_person(p.id) AS person_id,
           (SELECT name FROM people WHERE id = gis_responsible_person(p.id)) AS person_name
      FROM grids g
      JOIN grids p ON p.id = g.parent_id
     WHERE g.id = :grid
    """
)

# The grid a case was last escalated to (吹哨 walks up from there).
LAST_ESCALATION_GRID = text(
    """
    SELECT (data ->> 'to_grid_id')::bigint FROM hazard_events
     WHERE hazard_id = :id AND action = 'escalate' AND data ? 'to_grid_id'
     ORDER BY id DESC LIMIT 1
    """
)


def move_statement(columns: list[str]) -> TextClause:
    """The compare-and-set UPDATE of one move, setting ``columns`` (names of ours) from
    :c_<column>; it matches nothing when the version moved on meanwhile."""
    sets = "".join(f", {col} = :c_{col}" for col in columns)
    return text(
        f"UPDATE hazards SET status = :status, version = version + 1, updated_at = now(){sets}"
        " WHERE id = :id AND version = :version RETURNING version"
    )


INSERT_EVENT = text(
    """
    INSERT INTO hazard_events (hazard_id, action, from_status, to_status, actor_person_id,
                               actor_name, note, data, created_at, occurred_at)
    VALUES (:hazard_id, :action, :from_status, :to_status, :actor_person_id, :actor_name,
            :note, CAST(:data AS jsonb), now(), CAST(:occurred_at AS timestamptz))
    RETURNING id
    """
)

INSERT_PHOTO = text(
    """
    INSERT INTO hazard_photos (id, hazard_id, event_id, position, content_type, bytes, width,
                               height, sha256, original_name, had_exif, had_gps, uploaded_by)
    VALUES (:id, :hazard_id, :event_id, :position, :content_type, :bytes, :width, :height,
            :sha256, :original_name, :had_exif, :had_gps, :uploaded_by)
    """
)

SELECT_PHOTO = text(
    """
    SELECT ph.id, ph.content_type, ph.archived_to, h.grid_path
      FROM hazard_photos ph
      JOIN hazards h ON h.id = ph.hazard_id
     WHERE ph.hazard_id = :hazard_id AND ph.id = CAST(:photo_id AS uuid)
    """
)

# What the permission rule needs of a hazard (status, subtree, assignee).
HAZARD_ROW = text(
    f"""
    SELECT h.id, h.public_code, h.status, h.grid_path, h.assignee_person_id, {_CASE_FACTS}
      FROM hazards h
      LEFT JOIN case_exceptions x ON x.hazard_id = h.id AND x.status = 'pending'
     WHERE h.id = :id
    """
)
