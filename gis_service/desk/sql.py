"""The SQL of the staff desk, in one place: queue counts and rows, the units of a scope,
dispatch candidates and ledger rows. Every value is a bound parameter; the only text built
from code are the queue conditions below, which are constants of ours."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.states import (
    CLOCK_SQL,
    CLOSED_SQL,
    STATUS_ORDER_SQL,
    due_soon_sql,
    overdue_sql,
    real_close_sql,
)

_CLOCK = CLOCK_SQL
_CLOSED = CLOSED_SQL

# IN, not EXISTS: the planner hashes the few pending requests once instead of probing the
# index for each of the 120,000 open cases of a city (0.56 s instead of 1.17 s for the counts).
_PENDING = "h.id IN (SELECT x.hazard_id FROM case_exceptions x WHERE x.status = 'pending')"

# Each queue as a condition on a hazard row h (the work of the closed loop that waits).
QUEUE_CONDITIONS: dict[str, str] = {
    "to_accept": "h.status = 'reported'",
    "to_dispatch": "h.status = 'accepted'",
    "in_progress": "h.status IN ('dispatched', 'in_progress')",
    "to_verify": "h.status IN ('resolved', 'verified')",
    # a request for 延期, 缓办, 退回 or 作废 waits for its decision
    "to_approve": _PENDING,
    # 缓办: the clock stops until someone resumes it, so it must stay in sight
    "suspended": "h.status = 'suspended'",
    "overdue": overdue_sql("h"),
    # due within 24 working hours (工作时): the calendar's rule, like every deadline
    "due_24h": due_soon_sql("h"),
    "mine": f"(h.assignee_person_id = CAST(:person AS bigint) AND h.status IN {_CLOCK})",
}
QUEUES: tuple[str, ...] = tuple(QUEUE_CONDITIONS)

# The caller's scope (NULL: the whole territory); "mine" counts wherever the case lies.
_IN_SCOPE = "(CAST(:scope AS bigint[]) IS NULL OR h.grid_path && CAST(:scope AS bigint[]))"

# The filters of the desk; a NULL parameter switches its filter off.
_FILTERS = """
       AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND (CAST(:categories AS text[]) IS NULL
            OR h.category_code = ANY (CAST(:categories AS text[])))
       AND (CAST(:severities AS text[]) IS NULL
            OR h.severity = ANY (CAST(:severities AS text[])))
       AND (CAST(:sources AS text[]) IS NULL OR h.source = ANY (CAST(:sources AS text[])))
       AND (CAST(:since AS timestamptz) IS NULL OR h.reported_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR h.reported_at < CAST(:until AS timestamptz))
"""


def _scoped(queue: str) -> str:
    cond = QUEUE_CONDITIONS[queue]
    return cond if queue == "mine" else f"({cond} AND {_IN_SCOPE})"


QUEUE_COUNTS = text(
    "SELECT "
    + ", ".join(f"count(*) FILTER (WHERE {_scoped(q)}) AS {q}" for q in QUEUES)
    + f"""
      FROM hazards h
     WHERE h.status NOT IN {_CLOSED}
       AND ({_IN_SCOPE} OR h.assignee_person_id = CAST(:person AS bigint))
       {_FILTERS}
    """
)

# Sort keys of a queue's table: a column expression each (constants of ours).
SORTS: dict[str, str] = {
    "reported_at": "h.reported_at",
    "due_at": "h.due_at",
    "severity": (
        "CASE h.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"
    ),
    "category": "h.category_code",
    "status": f"array_position({STATUS_ORDER_SQL}, h.status)",
    "code": "h.public_code",
    "grid": "h.grid_chain -> -1 ->> 'code'",
}


def queue_rows(queue: str, sort: str, descending: bool):
    """The rows of one queue, sorted (sort and queue are keys of our own tables)."""
    order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, h.id DESC"
    return text(
        f"""
        SELECT h.id, h.public_code, h.category_code AS category, c.name_zh AS category_name,
               h.severity, h.status, h.source, h.address, h.grid_id,
               h.grid_chain -> -1 ->> 'name' AS grid_name,
               (SELECT e ->> 'name' FROM jsonb_array_elements(h.grid_chain) e
                 WHERE e ->> 'level' = 'community' LIMIT 1) AS community_name,
               h.grid_chain -> 0 ->> 'name' AS street_name,
               h.reported_at, h.due_at,
               {overdue_sql("h")} AS overdue,
               p.name AS assignee_name, d.name_zh AS department_name,
               (SELECT x.kind FROM case_exceptions x
                 WHERE x.hazard_id = h.id AND x.status = 'pending') AS pending_kind,
               h.version, count(*) OVER () AS matched
          FROM hazards h
          JOIN hazard_categories c ON c.code = h.category_code
          LEFT JOIN people p ON p.id = h.assignee_person_id
          LEFT JOIN departments d ON d.id = h.assignee_department_id
         WHERE {_scoped(queue)}
           {_FILTERS}
         ORDER BY {order}
         LIMIT :limit OFFSET :offset
        """
    )


# The current grids of a scope at one level, without geometry, with the names above them.
UNITS = text(
    """
    SELECT g.id, g.code, g.name, g.level, g.parent_id,
           (SELECT string_agg(a.name, ' › ' ORDER BY u.ord)
              FROM unnest(g.path[1:array_length(g.path, 1) - 1]) WITH ORDINALITY AS u (gid, ord)
              JOIN grids a ON a.id = u.gid) AS context
      FROM grids g
     WHERE g.valid_to IS NULL AND gis_valid_at(g.valid_from, g.valid_to, now())
       AND g.level = :level
       AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
       AND (CAST(:within AS bigint) IS NULL OR g.path @> ARRAY[CAST(:within AS bigint)])
     ORDER BY g.code, g.id
     LIMIT 5000
    """
)

# People who may take a case: those with a current assignment on a grid in the dispatcher's
# scope, nearest first (the distance from the hazard to their grid; 0 inside it), each with
# the open cases they hold now. KNN on the grid index picks the candidates.
CANDIDATES = text(
    f"""
    WITH h AS (SELECT id, geom, grid_path FROM hazards WHERE id = :id),
    near AS (
        SELECT a.person_id, a.role, a.is_primary, g.id AS grid_id, g.name AS grid_name,
               g.level, g.path, g.geom
          FROM grid_assignments a
          JOIN grids g ON g.id = a.grid_id
          JOIN people p ON p.id = a.person_id, h
         WHERE gis_valid_at(a.valid_from, a.valid_to, now())
           AND g.valid_to IS NULL AND p.active
           AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
         ORDER BY g.geom <-> h.geom
         LIMIT 600
    ),
    best AS (
        SELECT DISTINCT ON (n.person_id) n.*,
               round(ST_Distance(n.geom::geography, h.geom::geography)::numeric, 0)
                   AS distance_m,
               h.grid_path @> ARRAY[n.grid_id] AS in_grid
          FROM near n, h
         ORDER BY n.person_id, h.grid_path @> ARRAY[n.grid_id] DESC,
                  ST_Distance(n.geom::geography, h.geom::geography), n.is_primary DESC
    )
    SELECT b.person_id, p.name, b.role, r.name_zh AS role_name, b.grid_id, b.grid_name,
           b.level, (SELECT a.name FROM grids a WHERE a.id = b.path[2]) AS community_name,
           (SELECT a.name FROM grids a WHERE a.id = b.path[1]) AS street_name,
           b.distance_m, b.in_grid,
           (SELECT count(*) FROM hazards t
             WHERE t.assignee_person_id = b.person_id AND t.status IN {_CLOCK}) AS open_tasks
      FROM best b
      JOIN people p ON p.id = b.person_id
      JOIN assignment_roles r ON r.code = b.role
     ORDER BY b.in_grid DESC, b.distance_m, open_tasks, p.name
     LIMIT 200
    """
)

DEPARTMENTS = text("SELECT code, name_zh AS name FROM departments WHERE active ORDER BY code")

# A hazard as the dispatch rule needs it (the subtree it lies in, who has it).
HAZARD_SCOPE = text(
    "SELECT id, public_code, status, grid_path, assignee_person_id FROM hazards WHERE id = :id"
)

# One unit (a grid of any level) with the names above it, for the ledger's title block.
UNIT = text(
    """
    SELECT g.id, g.code, g.name, g.level, l.name_zh AS level_name,
           (SELECT string_agg(a.name, ' › ' ORDER BY u.ord)
              FROM unnest(g.path) WITH ORDINALITY AS u (gid, ord)
              JOIN grids a ON a.id = u.gid) AS chain
      FROM grids g JOIN grid_levels l ON l.code = g.level
     WHERE g.id = :id
    """
)

# The ledger: every hazard reported in the period in the unit's subtree, oldest first,
# times in Beijing time (:tz), coordinates in WGS84 (no WKT).
LEDGER_ROWS = text(
    f"""
    SELECT h.id, h.public_code, c.name_zh AS category_name, h.severity, h.status, h.source,
           h.grid_chain -> 0 ->> 'name' AS street_name,
           (SELECT e ->> 'name' FROM jsonb_array_elements(h.grid_chain) e
             WHERE e ->> 'level' = 'community' LIMIT 1) AS community_name,
           h.grid_chain -> -1 ->> 'name' AS grid_name,
           h.address,
           round(ST_X(h.geom)::numeric, 6) AS lon, round(ST_Y(h.geom)::numeric, 6) AS lat,
           (h.reported_at AT TIME ZONE :tz) AS reported_local,
           (h.due_at AT TIME ZONE :tz) AS due_local,
           (h.closed_at AT TIME ZONE :tz) AS closed_local,
           h.reported_at, h.due_at, h.closed_at,
           p.name AS handler_name, d.name_zh AS department_name,
           {overdue_sql("h")} AS overdue
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
      LEFT JOIN people p ON p.id = h.assignee_person_id
      LEFT JOIN departments d ON d.id = h.assignee_department_id
     WHERE (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND h.reported_at >= CAST(:since AS timestamptz)
       AND h.reported_at < CAST(:until AS timestamptz)
     ORDER BY h.reported_at, h.id
     LIMIT :limit
    """
)

# ---- the dashboard (统计) ----------------------------------------------------------------------
_SCOPED_PERIOD = """
    SELECT h.* FROM hazards h
     WHERE (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND h.reported_at >= CAST(:since AS timestamptz)
       AND h.reported_at < CAST(:until AS timestamptz)
"""
# The community and the grid of a case: the 2nd and 3rd grids of its path (street first);
# the joins below keep only those of the right level (a special grid may sit there instead).
_COMMUNITY_OF = "h.grid_path[2]"
_GRID_OF = "h.grid_path[3]"
# A case closed on time: its handler fed back by the deadline (the clock stops at 反馈).
_ON_TIME = "(h.resolved_at IS NOT NULL AND (h.due_at IS NULL OR h.resolved_at <= h.due_at))"
_REAL_CLOSE = f"({real_close_sql('h')} AND h.closed_at IS NOT NULL)"
_HOURS_TO_CLOSE = "extract(epoch FROM h.closed_at - h.reported_at) / 3600"

# Everything the dashboard draws, in one statement. :step is '1 day' or '1 week'; periods
# are local (Beijing) calendar days or ISO weeks starting on Monday.
DASHBOARD = text(
    f"""
    WITH m AS ({_SCOPED_PERIOD}),
    buckets AS (
        SELECT b AS start
          FROM generate_series(
                   date_trunc(:unit, CAST(:since AS timestamptz) AT TIME ZONE :tz),
                   (CAST(:until AS timestamptz) - interval '1 microsecond') AT TIME ZONE :tz,
                   CAST(:step AS interval)) AS b
    ),
    closed_in AS (
        SELECT date_trunc(:unit, h.closed_at AT TIME ZONE :tz) AS start, count(*) AS n
          FROM hazards h
         WHERE (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
           AND h.status = 'closed'
           AND h.closed_at >= CAST(:since AS timestamptz)
           AND h.closed_at < CAST(:until AS timestamptz)
         GROUP BY 1
    ),
    reported_in AS (
        SELECT date_trunc(:unit, h.reported_at AT TIME ZONE :tz) AS start, count(*) AS n
          FROM m h GROUP BY 1
    ),
    comm AS (
        SELECT {_COMMUNITY_OF} AS unit_id, h.* FROM m h
    ),
    grid AS (
        SELECT {_GRID_OF} AS unit_id, h.* FROM m h
    )
    SELECT json_build_object(
        'total', (SELECT count(*) FROM m),
        'open', (SELECT count(*) FROM m WHERE status NOT IN {_CLOSED}),
        'closed', (SELECT count(*) FROM m WHERE status = 'closed'),
        'overdue', (SELECT count(*) FROM m h WHERE {overdue_sql("h")}),
        'series', (SELECT coalesce(json_agg(json_build_object(
                            'period', to_char(b.start, 'YYYY-MM-DD'),
                            'reported', coalesce(r.n, 0), 'closed', coalesce(c.n, 0))
                        ORDER BY b.start), '[]'::json)
                     FROM buckets b
                     LEFT JOIN reported_in r ON r.start = b.start
                     LEFT JOIN closed_in c ON c.start = b.start),
        'by_category', (SELECT coalesce(json_agg(json_build_object(
                                 'category', x.category_code, 'name', c.name_zh,
                                 'total', x.n, 'open', x.open)
                             ORDER BY x.n DESC, x.category_code), '[]'::json)
                          FROM (SELECT h.category_code, count(*) AS n,
                                       count(*) FILTER (WHERE h.status NOT IN {_CLOSED}) AS open
                                  FROM m h GROUP BY h.category_code) x
                          JOIN hazard_categories c ON c.code = x.category_code),
        'by_community', (SELECT coalesce(json_agg(json_build_object(
                                  'grid_id', x.id, 'name', g.name, 'total', x.n, 'open', x.open,
                                  'closed', x.closed, 'closed_on_time', x.on_time,
                                  'on_time_rate', CASE WHEN x.closed > 0
                                      THEN round(x.on_time::numeric / x.closed, 4) END,
                                  'median_hours_to_close', round(x.median::numeric, 2))
                              ORDER BY x.n DESC, g.code), '[]'::json)
                           FROM (SELECT h.unit_id AS id, count(*) AS n,
                                        count(*) FILTER (WHERE h.status NOT IN {_CLOSED})
                                            AS open,
                                        count(*) FILTER (WHERE {_REAL_CLOSE}) AS closed,
                                        count(*) FILTER (WHERE {_REAL_CLOSE} AND {_ON_TIME})
                                            AS on_time,
                                        percentile_cont(0.5) WITHIN GROUP (
                                            ORDER BY {_HOURS_TO_CLOSE})
                                            FILTER (WHERE {_REAL_CLOSE}) AS median
                                   FROM comm h WHERE h.unit_id IS NOT NULL
                                  GROUP BY h.unit_id) x
                           JOIN grids g ON g.id = x.id AND g.level = 'community'),
        'by_grid', (SELECT coalesce(json_agg(json_build_object(
                             'grid_id', x.id, 'name', g.name, 'code', g.code,
                             'context', (SELECT a.name FROM grids a WHERE a.id = g.parent_id),
                             'total', x.n, 'open', x.open)
                         ORDER BY x.n DESC, g.code), '[]'::json)
                      FROM (SELECT h.unit_id AS id, count(*) AS n,
                                   count(*) FILTER (WHERE h.status NOT IN {_CLOSED}) AS open
                              FROM grid h WHERE h.unit_id IS NOT NULL
                               AND EXISTS (SELECT 1 FROM grids l
                                            WHERE l.id = h.unit_id AND l.level = 'grid')
                             GROUP BY h.unit_id ORDER BY n DESC LIMIT :top) x
                      JOIN grids g ON g.id = x.id),
        'oldest_open', (SELECT coalesce(json_agg(o ORDER BY o.reported_at, o.id), '[]'::json)
                          FROM (SELECT h.id, h.public_code, c.name_zh AS category_name, h.status,
                                       h.reported_at,
                                       round((extract(epoch FROM now() - h.reported_at)
                                              / 86400)::numeric, 1) AS age_days,
                                       h.grid_chain -> -1 ->> 'name' AS grid_name,
                                       (SELECT p.name FROM people p
                                         WHERE p.id = h.assignee_person_id) AS handler_name
                                  FROM hazards h
                                  JOIN hazard_categories c ON c.code = h.category_code
                                 WHERE (CAST(:grid AS bigint) IS NULL
                                        OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
                                   AND h.status NOT IN {_CLOSED}
                                 ORDER BY h.reported_at, h.id
                                 LIMIT 10) o),
        'heat', (SELECT coalesce(json_agg(json_build_array(y.lat, y.lon, y.n)), '[]'::json)
                   FROM (SELECT round(ST_Y(c)::numeric, 5) AS lat,
                                round(ST_X(c)::numeric, 5) AS lon, count(*) AS n
                           FROM (SELECT ST_SnapToGrid(h.geom, 0.002) AS c
                                   FROM hazards h
                                  WHERE (CAST(:grid AS bigint) IS NULL
                                         OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
                                    AND h.status NOT IN {_CLOSED}) s
                          GROUP BY c ORDER BY count(*) DESC LIMIT 5000) y)
    )::text
    """
)
