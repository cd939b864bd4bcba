"""The SQL of the assessment: one table of per-case flags (CASES) that every aggregate and
every drill-down reads, so a figure and the cases behind it cannot disagree.

Population: the cases (hazards) reported in [since, until) inside the caller's scope and the
chosen subtree. Deadlines were set in working time when the cases moved (migration 0006);
"now" for a case still open is the end of the period, or the present if that is earlier.
"""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.states import real_close_sql
from gis_service.whistles.sql import late_sql

# Per-case flags; the names are the indicator keys of gis_service.assessment.service.
CASES = f"""
    WITH p AS (
        SELECT CAST(:since AS timestamptz) AS t0, CAST(:until AS timestamptz) AS t1,
               least(CAST(:until AS timestamptz), now()) AS t_eval
    ),
    c AS (
        SELECT h.id, h.public_code, h.category_code, h.status, h.grid_path, h.grid_chain,
               h.assignee_department_id, h.assignee_person_id, h.reported_at, h.closed_at,
               h.due_at, h.resolved_at,
               true AS reported,
               (h.accepted_at IS NOT NULL) AS accepted,
               (h.status = 'voided') AS voided,
               {real_close_sql("h")} AS closed,
               -- 应结案: filed (not voided) and closed, or past its 处置 or 结案 deadline; a
               -- case still inside its limits is not yet due to close (CJ/T 292 应结案数)
               (h.accepted_at IS NOT NULL AND h.status <> 'voided'
                AND (h.status = 'closed' OR h.due_at < p.t_eval OR h.close_due_at < p.t_eval))
                   AS due_close,
               -- 应处置: dispatched, and handled or past its 处置 deadline
               (h.due_at IS NOT NULL AND (h.resolved_at IS NOT NULL OR h.due_at < p.t_eval))
                   AS due_handle,
               (h.due_at IS NOT NULL AND h.resolved_at IS NOT NULL AND h.resolved_at <= h.due_at)
                   AS on_time_handle,
               ({real_close_sql("h")}
                AND (h.due_at IS NULL OR h.resolved_at <= h.due_at)
                AND (h.close_due_at IS NULL OR h.closed_at <= h.close_due_at)) AS on_time_close,
               -- handled at least once (a report back exists)
               EXISTS (SELECT 1 FROM hazard_events e
                        WHERE e.hazard_id = h.id AND e.action = 'resolve') AS handled,
               (h.rework_count > 0) AS reworked,
               (h.due_at IS NOT NULL) AS dispatched,
               EXISTS (SELECT 1 FROM case_exceptions x
                        WHERE x.hazard_id = h.id AND x.status = 'approved') AS excepted,
               cb.rating
          FROM hazards h
         CROSS JOIN p
          LEFT JOIN LATERAL (
              SELECT rating FROM case_callbacks
               WHERE hazard_id = h.id ORDER BY id DESC LIMIT 1) cb ON true
         WHERE h.reported_at >= p.t0 AND h.reported_at < p.t1
           AND (CAST(:scope AS bigint[]) IS NULL OR h.grid_path && CAST(:scope AS bigint[]))
           AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
    )
"""

# Drill-down conditions on a row of c (constants of ours, chosen by key).
FLAGS: dict[str, str] = {
    "reported": "c.reported",
    "accepted": "c.accepted",
    "voided": "c.voided",
    "due_close": "c.due_close",
    "closed": "c.closed",
    "due_handle": "c.due_handle",
    "on_time_handle": "c.on_time_handle",
    "overdue": "(c.due_handle AND NOT c.on_time_handle)",
    "on_time_close": "c.on_time_close",
    "handled": "c.handled",
    "reworked": "c.reworked",
    "excepted": "c.excepted",
    "called_back": "c.rating IS NOT NULL",
    "satisfied": "c.rating IN ('satisfied', 'basically_satisfied')",
    "dissatisfied": "c.rating = 'dissatisfied'",
}

# Every count the aggregates report: one per flag, and the cases dispatched (the base of
# the 处置率), each counted by its drill-down condition so figure and cases agree.
_COUNTS = ",\n".join(
    f"count(*) FILTER (WHERE {cond}) AS {key}"
    for key, cond in {**FLAGS, "dispatched": "c.dispatched"}.items()
)

# The area of a case at a level: its chain's grid of that level (the routing snapshot).
AREAS = text(
    CASES
    + f"""
    , a AS (
        SELECT (e ->> 'id')::bigint AS area_id, e ->> 'code' AS code, e ->> 'name' AS name, c.*
          FROM c
          CROSS JOIN LATERAL jsonb_array_elements(c.grid_chain) AS e
         WHERE e ->> 'level' = :level
    ),
    -- 7-day median: cases closed in the last 7 days of the period, wherever reported
    recent AS (
        SELECT (e ->> 'id')::bigint AS area_id,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY gis_work_seconds(h.reported_at, h.closed_at)) / 3600 AS median_h
          FROM hazards h
          CROSS JOIN p
          CROSS JOIN LATERAL jsonb_array_elements(h.grid_chain) AS e
         WHERE {real_close_sql("h")}
           AND h.closed_at >= p.t1 - interval '7 days' AND h.closed_at < p.t1
           AND e ->> 'level' = :level
           AND (CAST(:scope AS bigint[]) IS NULL OR h.grid_path && CAST(:scope AS bigint[]))
           AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
         GROUP BY 1
    )
    SELECT a.area_id, min(a.code) AS code, min(a.name) AS name, {_COUNTS.replace("c.", "a.")},
           (SELECT round(r.median_h::numeric, 2) FROM recent r WHERE r.area_id = a.area_id)
               AS median_work_hours_to_close_7d
      FROM a
     GROUP BY a.area_id
     ORDER BY min(a.code)
    """
)

DEPARTMENTS = text(
    CASES
    + f"""
    , w AS (
        SELECT w.department_id,
               count(*) AS whistle_calls,
               count(*) FILTER (WHERE w.reported_in_at <= w.report_due_at)
                   AS whistle_on_time,
               count(*) FILTER (WHERE {late_sql("w", "p.t_eval")}) AS whistle_late
          FROM whistle_calls w
          CROSS JOIN p
         WHERE w.called_at >= p.t0 AND w.called_at < p.t1 AND w.department_id IS NOT NULL
           AND (CAST(:scope AS bigint[]) IS NULL OR w.grid_path && CAST(:scope AS bigint[]))
           AND (CAST(:grid AS bigint) IS NULL OR w.grid_path @> ARRAY[CAST(:grid AS bigint)])
         GROUP BY w.department_id
    ),
    d AS (
        SELECT c.assignee_department_id AS department_id, {_COUNTS}
          FROM c WHERE c.assignee_department_id IS NOT NULL
         GROUP BY c.assignee_department_id
    )
    SELECT dep.code, dep.name_zh AS name,
           coalesce(d.reported, 0) AS reported, coalesce(d.dispatched, 0) AS dispatched,
           coalesce(d.due_handle, 0) AS due_handle,
           coalesce(d.on_time_handle, 0) AS on_time_handle,
           coalesce(d.overdue, 0) AS overdue, coalesce(d.handled, 0) AS handled,
           coalesce(d.reworked, 0) AS reworked,
           coalesce(d.called_back, 0) AS called_back, coalesce(d.satisfied, 0) AS satisfied,
           coalesce(w.whistle_calls, 0) AS whistle_calls,
           coalesce(w.whistle_on_time, 0) AS whistle_on_time,
           coalesce(w.whistle_late, 0) AS whistle_late
      FROM departments dep
      LEFT JOIN d ON d.department_id = dep.id
      LEFT JOIN w ON w.department_id = dep.id
     WHERE d.department_id IS NOT NULL OR w.department_id IS NOT NULL
     ORDER BY dep.code
    """
)

# People: reporters (上报, 有效上报), verifiers (核查 on time against the category's 结案
# limit, counted from the report back it verifies) and dispatchers (派遣, accurate unless an
# approved 退回 followed before the next dispatch).
PEOPLE = text(
    CASES
    + """
    , ev AS (
        SELECT e.*, h.category_code
          FROM hazard_events e
          JOIN hazards h ON h.id = e.hazard_id
          CROSS JOIN p
         WHERE e.created_at >= p.t0 AND e.created_at < p.t1 AND e.actor_person_id IS NOT NULL
           AND (CAST(:scope AS bigint[]) IS NULL OR h.grid_path && CAST(:scope AS bigint[]))
           AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
    ),
    rep AS (
        SELECT e.actor_person_id AS person_id, count(*) AS reports,
               count(*) FILTER (WHERE c.accepted AND NOT c.voided) AS valid_reports
          FROM hazard_events e JOIN c ON c.id = e.hazard_id
         WHERE e.action = 'report' AND e.actor_person_id IS NOT NULL
         GROUP BY 1
    ),
    ver AS (
        SELECT ev.actor_person_id AS person_id, count(*) AS verifications,
               count(*) FILTER (WHERE gis_work_seconds(
                   (SELECT max(r.created_at) FROM hazard_events r
                     WHERE r.hazard_id = ev.hazard_id AND r.action = 'resolve'
                       AND r.created_at <= ev.created_at), ev.created_at)
                   <= gis_limit_seconds((SELECT time_limits -> 'close' FROM hazard_categories
                                          WHERE code = ev.category_code)))
                   AS verifications_on_time
          FROM ev WHERE ev.action IN ('verify', 'fail_verification')
         GROUP BY 1
    ),
    dis AS (
        SELECT ev.actor_person_id AS person_id, count(*) AS dispatches,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM hazard_events b
                    WHERE b.hazard_id = ev.hazard_id AND b.action = 'approve_send_back'
                      AND b.created_at > ev.created_at
                      AND NOT EXISTS (SELECT 1 FROM hazard_events n
                                       WHERE n.hazard_id = ev.hazard_id
                                         AND n.action = 'dispatch'
                                         AND n.created_at > ev.created_at
                                         AND n.created_at < b.created_at)))
                   AS dispatches_sent_back
          FROM ev WHERE ev.action = 'dispatch'
         GROUP BY 1
    ),
    -- handlers: the callbacks (回访) of the cases they handle, as the cases' own rating
    han AS (
        SELECT c.assignee_person_id AS person_id,
               count(*) FILTER (WHERE c.rating IS NOT NULL) AS called_back,
               count(*) FILTER (WHERE c.rating IN ('satisfied', 'basically_satisfied'))
                   AS satisfied
          FROM c WHERE c.assignee_person_id IS NOT NULL AND c.rating IS NOT NULL
         GROUP BY 1
    ),
    who AS (SELECT person_id FROM rep UNION SELECT person_id FROM ver
            UNION SELECT person_id FROM dis UNION SELECT person_id FROM han)
    SELECT w.person_id, pe.name,
           (SELECT u.role FROM users u WHERE u.person_id = w.person_id ORDER BY u.id LIMIT 1)
               AS role,
           coalesce(rep.reports, 0) AS reports, coalesce(rep.valid_reports, 0) AS valid_reports,
           coalesce(ver.verifications, 0) AS verifications,
           coalesce(ver.verifications_on_time, 0) AS verifications_on_time,
           coalesce(dis.dispatches, 0) AS dispatches,
           coalesce(dis.dispatches_sent_back, 0) AS dispatches_sent_back,
           coalesce(han.called_back, 0) AS called_back, coalesce(han.satisfied, 0) AS satisfied
      FROM who w
      JOIN people pe ON pe.id = w.person_id
      LEFT JOIN rep ON rep.person_id = w.person_id
      LEFT JOIN ver ON ver.person_id = w.person_id
      LEFT JOIN dis ON dis.person_id = w.person_id
      LEFT JOIN han ON han.person_id = w.person_id
     ORDER BY pe.name, w.person_id
    """
)

# Points of grid workers for a period (a month): counts of each rule's events per person,
# the points (Σ rule value × count, the values of layers/assessment.yaml bound as :rules)
# and the rank (ties share one: rank()), highest first, then by name (code point order, as
# Python sorts) and id. Set-based: each count is one grouped pass over the period's cases
# (or callbacks), joined to the staff once; a per-person subquery rescanned the cases for
# each of the ~100,000 grid workers of a city and ran into the statement timeout.
_POINTS_ROWS = (
    CASES
    + """
    , staff AS (
        SELECT DISTINCT a.person_id
          FROM grid_assignments a
          JOIN grids g ON g.id = a.grid_id
          CROSS JOIN p
         WHERE a.role = ANY (CAST(:roles AS text[]))
           AND a.valid_from < p.t1 AND (a.valid_to IS NULL OR a.valid_to > p.t0)
           AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
           AND (CAST(:grid AS bigint) IS NULL OR g.path @> ARRAY[CAST(:grid AS bigint)])
    ),
    reports AS (
        SELECT e.actor_person_id AS person_id, count(*) AS valid_report
          FROM c JOIN hazard_events e ON e.hazard_id = c.id
         WHERE e.action = 'report' AND e.actor_person_id IS NOT NULL
           AND c.accepted AND NOT c.voided
         GROUP BY 1
    ),
    handled AS (
        SELECT c.assignee_person_id AS person_id,
               count(*) FILTER (WHERE c.on_time_handle) AS on_time_handle,
               count(*) FILTER (WHERE c.due_handle AND NOT c.on_time_handle) AS overdue_task
          FROM c
         WHERE c.assignee_person_id IS NOT NULL
         GROUP BY 1
    ),
    unhappy AS (
        SELECT cb.handler_person_id AS person_id, count(*) AS dissatisfied_callback
          FROM case_callbacks cb CROSS JOIN p
         WHERE cb.handler_person_id IS NOT NULL AND cb.rating = 'dissatisfied'
           AND cb.created_at >= p.t0 AND cb.created_at < p.t1
         GROUP BY 1
    ),
    -- the grid shown beside each name: a current assignment, the primary one first
    home AS (
        SELECT DISTINCT ON (a.person_id) a.person_id, g.name
          FROM grid_assignments a
          JOIN grids g ON g.id = a.grid_id
         WHERE gis_valid_at(a.valid_from, a.valid_to, now())
           AND a.person_id IN (SELECT person_id FROM staff)
         ORDER BY a.person_id, a.is_primary DESC, a.id
    ),
    counted AS (
        SELECT s.person_id,
               coalesce(r.valid_report, 0) AS valid_report,
               coalesce(h.on_time_handle, 0) AS on_time_handle,
               coalesce(h.overdue_task, 0) AS overdue_task,
               coalesce(u.dissatisfied_callback, 0) AS dissatisfied_callback,
               pe.name, home.name AS grid_name
          FROM staff s
          JOIN people pe ON pe.id = s.person_id
          LEFT JOIN reports r ON r.person_id = s.person_id
          LEFT JOIN handled h ON h.person_id = s.person_id
          LEFT JOIN unhappy u ON u.person_id = s.person_id
          LEFT JOIN home ON home.person_id = s.person_id
    ),
    scored AS (
        SELECT counted.*,
               -- the rules' names are the counts (catalog.schemas.PointsRule)
               (SELECT CAST(coalesce(sum(CAST(v.value AS bigint) * CASE v.key
                           WHEN 'valid_report' THEN counted.valid_report
                           WHEN 'on_time_handle' THEN counted.on_time_handle
                           WHEN 'overdue_task' THEN counted.overdue_task
                           WHEN 'dissatisfied_callback' THEN counted.dissatisfied_callback
                       END), 0) AS bigint)
                  FROM jsonb_each_text(CAST(:rules AS jsonb)) AS v) AS points
          FROM counted
    ),
    ranked AS (
        SELECT scored.*, rank() OVER (ORDER BY scored.points DESC) AS rank FROM scored
    )
    """
)
_POINTS_ORDER = 'ORDER BY {t}.rank, {t}.name COLLATE "C", {t}.person_id'
POINTS = text(_POINTS_ROWS + "SELECT * FROM ranked " + _POINTS_ORDER.format(t="ranked"))
# The same ranking as a JSON array text, built by the database (a city has ~100,000 grid
# workers: as Python dicts they took longer than the query).
POINTS_JSON = text(
    _POINTS_ROWS
    + "SELECT coalesce(json_agg(r "
    + _POINTS_ORDER.format(t="r")
    + "), '[]')::text FROM ranked r"
)


# Each holds when its parameter is null (not narrowed), so one statement serves all.
_NARROW = """(CAST(:area AS bigint) IS NULL OR c.grid_path @> ARRAY[CAST(:area AS bigint)])
       AND (CAST(:department AS text) IS NULL OR c.assignee_department_id =
            (SELECT id FROM departments WHERE code = CAST(:department AS text)))
       AND (CAST(:person AS bigint) IS NULL OR c.assignee_person_id = CAST(:person AS bigint))"""


def drill(flag: str) -> str:
    """The cases behind one figure: a flag of CASES (a constant of ours), narrowed to an
    area, a department and a person when given."""
    narrow = _NARROW
    return (
        CASES
        + f"""
    SELECT c.id, c.public_code, c.category_code,
           (SELECT name_zh FROM hazard_categories WHERE code = c.category_code)
               AS category_name,
           c.status, c.grid_chain -> -1 ->> 'name' AS grid_name, c.reported_at, c.due_at,
           c.resolved_at, c.closed_at, c.rating, count(*) OVER () AS matched
      FROM c
     WHERE {FLAGS[flag]} AND {narrow}
     ORDER BY c.reported_at, c.id
     LIMIT :limit OFFSET :offset
    """
    )
