"""The SQL of the care registry: the roster (view ``care_roster``, revision 0007), households,
coverage per grid and the overdue tint of micro-grids. Every value is a bound parameter."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.db.geojson import feature_collection_sql, geometry_json
from gis_service.geo.areas import bbox_sql

# The caller's subtree (None: the whole territory) and an optional grid inside it.
_SCOPED = """
    (CAST(:scope AS bigint[]) IS NULL OR r.grid_path && CAST(:scope AS bigint[]))
    AND (CAST(:grid AS bigint) IS NULL OR r.grid_path @> ARRAY[CAST(:grid AS bigint)])
"""

# Due state of a roster row against the office's today (gis_local_day, revision 0007).
DUE_STATUS = """
    CASE WHEN r.next_due IS NULL THEN 'none'
         WHEN r.next_due < gis_local_day(now()) THEN 'overdue'
         WHEN r.next_due = gis_local_day(now()) THEN 'today'
         ELSE 'later' END
"""

_PERSON_COLUMNS = f"""
    r.id, r.name, r.gender, r.birth_year, r.phone, r.categories, r.note, r.care_since,
    r.last_visit_at, r.every_days, r.next_due, {DUE_STATUS} AS due_status,
    gis_local_day(now()) - r.next_due AS days_overdue,
    r.household_id, r.household_code, r.address, r.household_phone,
    r.grid_id, r.grid_code, r.grid_name, r.grid_path,
    (gis_from_wgs84(ST_X(r.geom), ST_Y(r.geom), :crs))[1] AS lon,
    (gis_from_wgs84(ST_X(r.geom), ST_Y(r.geom), :crs))[2] AS lat,
    (gis_from_wgs84(ST_X(r.geom), ST_Y(r.geom), 'gcj02'))[1] AS gcj_lon,
    (gis_from_wgs84(ST_X(r.geom), ST_Y(r.geom), 'gcj02'))[2] AS gcj_lat
"""

PEOPLE = text(
    f"""
    SELECT {_PERSON_COLUMNS},
           CASE WHEN CAST(:near_lon AS float8) IS NULL OR r.geom IS NULL THEN NULL
                ELSE ST_Distance(r.geom::geography,
                                 ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography)
           END AS distance_m,
           count(*) OVER () AS matched
      FROM care_roster r
     WHERE {_SCOPED}
       AND (CAST(:categories AS text[]) IS NULL OR r.categories && CAST(:categories AS text[]))
       AND (CAST(:household AS bigint) IS NULL OR r.household_id = CAST(:household AS bigint))
       AND (CAST(:due AS text[]) IS NULL OR {DUE_STATUS} = ANY (CAST(:due AS text[])))
       AND (CAST(:q AS text) IS NULL OR strpos(r.name, CAST(:q AS text)) > 0
            OR strpos(r.address, CAST(:q AS text)) > 0
            OR r.household_code = CAST(:q AS text))
     ORDER BY CASE WHEN CAST(:near_lon AS float8) IS NOT NULL THEN
                   ST_Distance(r.geom::geography,
                               ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography)
              END NULLS LAST,
              r.next_due NULLS LAST, r.id
     LIMIT :limit OFFSET :offset
    """
)

PERSON = text(f"SELECT {_PERSON_COLUMNS} FROM care_roster r WHERE r.id = :id")

# Where a person lives, for scope checks of a write (a visit) before anything is read out.
PERSON_PLACE = text(
    """
    SELECT r.id, r.household_id, r.grid_id, r.grid_path, r.every_days, r.name, r.address,
           ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
      FROM care_roster r WHERE r.id = :id
    """
)

HOUSEHOLDS = text(
    f"""
    WITH h AS (
        SELECT DISTINCT ON (r.household_id) r.household_id
          FROM care_roster r
         WHERE {_SCOPED}
           AND (CAST(:q AS text) IS NULL OR strpos(r.address, CAST(:q AS text)) > 0
                OR strpos(r.name, CAST(:q AS text)) > 0 OR r.household_code = CAST(:q AS text))
    )
    SELECT h.household_id, count(*) OVER () AS matched
      FROM h ORDER BY h.household_id
     LIMIT :limit OFFSET :offset
    """
)

# Households by id (one, or a page of the list in one round trip).
HOUSEHOLD = text(
    """
    SELECT hh.id, hh.code, hh.address, hh.phone, hh.attributes,
           coalesce(gc.id, g.id) AS grid_id, coalesce(gc.path, g.path) AS grid_path,
           coalesce(gc.name, g.name) AS grid_name, coalesce(gc.code, g.code) AS grid_code,
           (gis_from_wgs84(ST_X(hh.geom), ST_Y(hh.geom), :crs))[1] AS lon,
           (gis_from_wgs84(ST_X(hh.geom), ST_Y(hh.geom), :crs))[2] AS lat
      FROM households hh
      JOIN grids g ON g.id = hh.grid_id
      LEFT JOIN grids gc ON gc.code = g.code AND gc.valid_to IS NULL AND g.valid_to IS NOT NULL
     WHERE hh.id = ANY (CAST(:ids AS bigint[])) AND hh.active
    """
)

HOUSEHOLD_PEOPLE = text(
    f"""
    SELECT {_PERSON_COLUMNS} FROM care_roster r
     WHERE r.household_id = ANY (CAST(:ids AS bigint[]))
     ORDER BY r.household_id, r.id
    """
)

# Counts only (no person): how many people, and how many overdue, per category in a subtree.
COUNTS = text(
    f"""
    SELECT c.code, c.name_zh, c.visit_every_days,
           count(r.id) AS people,
           count(r.id) FILTER (WHERE {DUE_STATUS} = 'overdue') AS overdue,
           count(r.id) FILTER (WHERE {DUE_STATUS} = 'today') AS due_today
      FROM care_categories c
      LEFT JOIN care_roster r ON c.code = ANY (r.categories) AND {_SCOPED}
     WHERE c.active
     GROUP BY c.code, c.name_zh, c.visit_every_days, c.rank
     ORDER BY c.rank
    """
)

# Visit coverage per child grid for a month: a person was visited on time when at no moment
# of the month (up to now) their next-due day had passed without a visit. Each stretch
# between two visits (or from care_since to the first) is overdue from the local midnight
# after its due day until the next visit; the person missed when such a stretch overlaps the
# month. Counts only.
COVERAGE = text(
    f"""
    WITH m AS (
        SELECT coalesce(CAST(:first_day AS date),
                        date_trunc('month', gis_local_day(now()))::date) AS d
    ),
    b AS (
        SELECT (m.d::timestamp AT TIME ZONE s.tz) AS s,
               least((m.d + interval '1 month')::timestamp AT TIME ZONE s.tz, now()) AS e,
               s.tz, m.d AS first_day
          FROM work_schedule s CROSS JOIN m LIMIT 1
    ),
    kids AS (
        SELECT g.id, g.code, g.name, g.level FROM grids g
         WHERE g.valid_to IS NULL AND g.level <> 'special'
           AND (g.parent_id = CAST(:grid AS bigint)
                OR (CAST(:grid AS bigint) IS NULL AND g.parent_id IS NULL))
        UNION ALL
        SELECT g.id, g.code, g.name, g.level FROM grids g
         WHERE g.id = CAST(:grid AS bigint)
           AND NOT EXISTS (SELECT 1 FROM grids c WHERE c.parent_id = CAST(:grid AS bigint)
                              AND c.valid_to IS NULL AND c.level <> 'special')
    ),
    p AS (
        SELECT r.id, r.grid_path, r.every_days, r.next_due, r.care_since,
               {DUE_STATUS} AS due_status
          FROM care_roster r
         WHERE (CAST(:grid AS bigint) IS NULL OR r.grid_path @> ARRAY[CAST(:grid AS bigint)])
           AND r.every_days IS NOT NULL
    ),
    seq AS (
        SELECT p.id, p.every_days, x.t,
               lead(x.t) OVER (PARTITION BY p.id ORDER BY x.t) AS nxt
          FROM p CROSS JOIN b
          CROSS JOIN LATERAL (
              SELECT p.care_since::timestamp AT TIME ZONE b.tz AS t
              UNION ALL
              SELECT v.visited_at FROM visits v
               WHERE v.person_id = p.id AND v.visited_at < b.e
          ) x
    ),
    per AS (
        SELECT seq.id,
               bool_or(greatest((gis_local_day(seq.t) + seq.every_days + 1)::timestamp
                                    AT TIME ZONE b.tz, b.s)
                       < least(coalesce(seq.nxt, b.e), b.e)) AS missed
          FROM seq CROSS JOIN b
         GROUP BY seq.id
    ),
    visited AS (
        SELECT v.person_id, count(*) AS visits
          FROM visits v CROSS JOIN b
         WHERE v.visited_at >= b.s AND v.visited_at < b.e
           AND v.person_id IN (SELECT id FROM p)
         GROUP BY v.person_id
    )
    SELECT k.id, k.code, k.name, k.level, (SELECT first_day FROM b) AS first_day,
           count(p.id) AS people,
           count(p.id) FILTER (WHERE NOT per.missed) AS on_time,
           count(p.id) FILTER (WHERE vi.visits > 0) AS visited,
           coalesce(sum(vi.visits), 0) AS visits,
           count(p.id) FILTER (WHERE p.due_status = 'overdue') AS overdue,
           count(p.id) FILTER (WHERE p.due_status = 'today') AS due_today
      FROM kids k
      LEFT JOIN p ON k.id = ANY (p.grid_path)
      LEFT JOIN per ON per.id = p.id
      LEFT JOIN visited vi ON vi.person_id = p.id
     GROUP BY k.id, k.code, k.name, k.level
     ORDER BY k.code
    """
)

# Micro-grids of a subtree that hold people under care, with counts for the map's tint.
_TINT = f"""
    SELECT g.id, g.code, g.name, g.geom,
           count(r.id) AS people,
           count(r.id) FILTER (WHERE {DUE_STATUS} = 'overdue') AS overdue,
           count(r.id) FILTER (WHERE {DUE_STATUS} = 'today') AS due_today
      FROM care_roster r
      JOIN grids g ON g.id = r.grid_id
     WHERE {_SCOPED}
       AND {bbox_sql("g.geom", "{geom} && {box}")}
     GROUP BY g.id, g.code, g.name, g.geom
"""
OVERDUE_MAP = text(
    feature_collection_sql(
        _TINT,
        f"""json_build_object('type', 'Feature', 'id', t.id,
               'geometry', {geometry_json("ST_SimplifyPreserveTopology(t.geom, 0.00001)")},
               'properties', json_build_object('code', t.code, 'name', t.name,
                   'people', t.people, 'overdue', t.overdue, 'due_today', t.due_today))""",
        "t.overdue DESC, t.id",
    )
)

GRID_BRIEF = text("SELECT id, code, name, level, path FROM grids WHERE id = :id")
