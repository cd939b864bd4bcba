"""The SQL of supervision over hazards: the overdue list and count, statistics and my tasks.

Every value is a bound parameter; split from hazards/sql.py (issue 10: modules by concern).
"""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.states import (
    CLOCK_SQL,
    accept_overdue_sql,
    close_overdue_sql,
    due_soon_sql,
    open_sql,
    overdue_sql,
    real_close_sql,
)

# ---- overdue, statistics and my tasks ---------------------------------------------------------
_OVERDUE_H = overdue_sql("h")
# The overdue cases of a subtree, most overdue first, one page: the list and its CSV alike.
_OVERDUE_PAGE = f"""WHERE {_OVERDUE_H}
       AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
     ORDER BY h.due_at, h.id
     LIMIT :limit OFFSET :offset"""

GRID_PATH = text("SELECT path FROM grids WHERE id = :id")

OVERDUE_COUNT = text(
    f"""
    SELECT count(*) FROM hazards h
     WHERE {_OVERDUE_H}
       AND (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
    """
)

OVERDUE_LIST = text(
    f"""
    SELECT h.id, h.public_code, h.category_code, c.name_zh AS category_name, h.status,
           h.severity, h.description, h.grid_id, h.grid_chain -> -1 ->> 'name' AS grid_name,
           h.due_at, h.dispatched_at, h.reported_at,
           round(extract(epoch FROM now() - h.due_at)::numeric / 3600, 1) AS overdue_hours,
           round((gis_work_seconds(h.due_at, now()) / 3600)::numeric, 1) AS overdue_work_hours,
           (SELECT json_build_object('id', p.id, 'name', p.name, 'work_phone', p.work_phone)
              FROM people p WHERE p.id = h.assignee_person_id) AS assignee,
           (SELECT json_build_object('code', d.code, 'name', d.name_zh)
              FROM departments d WHERE d.id = h.assignee_department_id) AS assignee_department,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[2] AS lat,
           count(*) OVER () AS matched
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
     {_OVERDUE_PAGE}
    """
)

# The overdue list as CSV: the same rows and order, the handler as plain columns.
OVERDUE_CSV = text(
    f"""
    SELECT h.id, h.public_code, h.category_code AS category, c.name_zh AS category_name,
           h.status, h.severity, h.grid_id, h.grid_chain -> -1 ->> 'name' AS grid_name,
           h.reported_at, h.dispatched_at, h.due_at,
           round(extract(epoch FROM now() - h.due_at)::numeric / 3600, 1) AS overdue_hours,
           p.name AS assignee_name, p.work_phone AS assignee_work_phone,
           d.name_zh AS assignee_department,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[2] AS lat
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
      LEFT JOIN people p ON p.id = h.assignee_person_id
      LEFT JOIN departments d ON d.id = h.assignee_department_id
     {_OVERDUE_PAGE}
    """
)

STATS = text(
    f"""
    WITH m AS (
        SELECT h.*
          FROM hazards h
         WHERE (CAST(:grid AS bigint) IS NULL OR h.grid_path @> ARRAY[CAST(:grid AS bigint)])
           AND (CAST(:since AS timestamptz) IS NULL
                OR h.reported_at >= CAST(:since AS timestamptz))
           AND (CAST(:until AS timestamptz) IS NULL
                OR h.reported_at < CAST(:until AS timestamptz))
    )
    SELECT json_build_object(
        'total', (SELECT count(*) FROM m),
        'open', (SELECT count(*) FROM m WHERE {open_sql("m")}),
        'overdue', (SELECT count(*) FROM m h WHERE {_OVERDUE_H}),
        'due_within_24_work_hours', (SELECT count(*) FROM m h WHERE {due_soon_sql("h")}),
        'accept_overdue', (SELECT count(*) FROM m h WHERE {accept_overdue_sql("h")}),
        'close_overdue', (SELECT count(*) FROM m h WHERE {close_overdue_sql("h")}),
        'by_status', (SELECT coalesce(json_object_agg(status, n), '{{}}'::json)
                        FROM (SELECT status, count(*) AS n FROM m GROUP BY status) s),
        'by_category', (SELECT coalesce(json_agg(json_build_object(
                                    'category', x.category_code, 'name', c.name_zh,
                                    'total', x.n, 'open', x.open, 'overdue', x.overdue)
                                ORDER BY x.n DESC, x.category_code), '[]'::json)
                          FROM (SELECT h.category_code, count(*) AS n,
                                       count(*) FILTER (
                                           WHERE {open_sql("h")}) AS open,
                                       count(*) FILTER (WHERE {_OVERDUE_H}) AS overdue
                                  FROM m h GROUP BY h.category_code) x
                          JOIN hazard_categories c ON c.code = x.category_code),
        'closed', (SELECT count(*) FROM m WHERE status = 'closed'),
        'median_hours_to_close', (
            SELECT round((percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM closed_at - reported_at)) / 3600)::numeric, 2)
              FROM m h WHERE {real_close_sql("h")} AND h.closed_at IS NOT NULL),
        'median_work_hours_to_close', (
            SELECT round((percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY gis_work_seconds(reported_at, closed_at)) / 3600)::numeric, 2)
              FROM m h WHERE {real_close_sql("h")} AND h.closed_at IS NOT NULL),
        'top_grids', (SELECT coalesce(json_agg(json_build_object(
                                 'grid_id', x.grid_id, 'code', x.code, 'name', x.name,
                                 'level', x.level, 'open', x.n, 'overdue', x.overdue)
                             ORDER BY x.n DESC, x.code), '[]'::json)
                        FROM (SELECT h.grid_id,
                                     min(h.grid_chain -> -1 ->> 'code') AS code,
                                     min(h.grid_chain -> -1 ->> 'name') AS name,
                                     min(h.grid_chain -> -1 ->> 'level') AS level,
                                     count(*) AS n,
                                     count(*) FILTER (WHERE {_OVERDUE_H}) AS overdue
                                FROM m h
                               WHERE {open_sql("h")}
                               GROUP BY h.grid_id
                               ORDER BY n DESC, code
                               LIMIT :top) x)
    )::text
    """
)

# Hazards assigned to one person that still wait for them, nearest first when a point is
# given (spheroid distance), else by deadline.
MY_TASKS = text(
    f"""
    WITH q AS (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                           ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END AS pt)
    SELECT h.id, h.public_code, h.category_code, c.name_zh AS category_name, h.status,
           h.severity, h.description, h.address, h.due_at, h.version, {_OVERDUE_H} AS overdue,
           h.grid_chain -> -1 ->> 'name' AS grid_name,
           ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), 'gcj02'))[1] AS gcj_lon,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), 'gcj02'))[2] AS gcj_lat,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[1] AS out_lon,
           (gis_from_wgs84(ST_X(h.geom), ST_Y(h.geom), :crs))[2] AS out_lat,
           CASE WHEN q.pt IS NULL THEN NULL
                ELSE round(ST_Distance(h.geom::geography, q.pt::geography)::numeric, 1)
           END AS distance_m
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
      CROSS JOIN q
     WHERE h.assignee_person_id = :person
       AND h.status IN {CLOCK_SQL}
     ORDER BY distance_m NULLS LAST, h.due_at NULLS LAST, h.id
     LIMIT :limit
    """
)
