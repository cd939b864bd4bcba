"""A city-sized synthetic dataset for benchmarks, generated inside PostgreSQL.

About 100,000 micro-grids under 20 streets, 320 communities and 2,880 grids laid out as a
regular lattice east of 二七区, one leader per grid, 1,000,000 facilities and 200,000
hazards. Every row carries ``attributes->>'dataset' = 'city'`` (hazards: a ``CITY-`` code)
so it can be removed again without touching anything else. One transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from gis_service.hazards.states import CLOSED_SQL
from gis_service.interchange.sql import BULK_OFF, BULK_ON

log = logging.getLogger(__name__)

# Lattice: 5 × 4 streets of 3 km; 4 × 4 communities each; 3 × 3 grids each; 6 × 6 micro-grids.
ORIGIN_LON, ORIGIN_LAT = 113.70, 34.62
KM_LAT = 1 / 110.574
KM_LON = 1 / 91.40  # at 34.7° N

PARAMS = {
    "lon0": ORIGIN_LON,
    "lat0": ORIGIN_LAT,
    "dx": 3 * KM_LON,
    "dy": 3 * KM_LAT,
}

DELETE = [
    "DELETE FROM hazards WHERE starts_with(public_code, 'CITY-')",
    "DELETE FROM facilities WHERE attributes->>'dataset' = 'city'",
    "DELETE FROM grids WHERE attributes->>'dataset' = 'city' AND level = 'micro_grid'",
    "DELETE FROM grids WHERE attributes->>'dataset' = 'city' AND level = 'grid'",
    "DELETE FROM grids WHERE attributes->>'dataset' = 'city' AND level = 'community'",
    "DELETE FROM grids WHERE attributes->>'dataset' = 'city' AND level = 'street'",
    "DELETE FROM people WHERE attributes->>'dataset' = 'city'",
]

# Each level: n × n children of a parent square, codes = parent code + 3-digit serial. The
# rows are inserted with their paths and their one part each (a rectangle needs no
# subdividing), set-based under gis.bulk_import as the importer does: the row triggers that
# would derive them ran a statement per micro-grid, each joining the whole grids table
# (over an hour for 100,000 micro-grids).
_CHILDREN = """
    WITH x AS MATERIALIZED (
        SELECT nextval(CAST(pg_get_serial_sequence('grids', 'id') AS regclass)) AS id,
               p.id AS parent_id, p.path AS parent_path, p.code AS parent_code, p.valid_from,
               ST_XMin(p.geom) AS x0, ST_YMin(p.geom) AS y0,
               (ST_XMax(p.geom) - ST_XMin(p.geom)) / :n AS w,
               (ST_YMax(p.geom) - ST_YMin(p.geom)) / :n AS h, ix, iy
          FROM grids p, generate_series(0, :n - 1) AS ix, generate_series(0, :n - 1) AS iy
         WHERE p.level = :parent_level AND p.attributes->>'dataset' = 'city'
    ),
    ins AS (
        INSERT INTO grids (id, code, name, level, parent_id, path, geom, attributes, valid_from)
        SELECT x.id, x.parent_code || lpad((x.iy * :n + x.ix + 1)::text, 3, '0'),
               :name_prefix || (x.iy * :n + x.ix + 1) || :name_suffix,
               :level, x.parent_id, x.parent_path || x.id,
               ST_Multi(ST_MakeEnvelope(x.x0 + x.ix * x.w, x.y0 + x.iy * x.h,
                                        x.x0 + (x.ix + 1) * x.w, x.y0 + (x.iy + 1) * x.h,
                                        4326)),
               '{"dataset": "city"}'::jsonb, x.valid_from
          FROM x
        RETURNING id, level, geom
    )
    INSERT INTO grid_parts (grid_id, rank, geom)
    SELECT ins.id, l.rank, ST_GeometryN(ins.geom, 1)
      FROM ins JOIN grid_levels l ON l.code = ins.level
"""

STREETS = """
    INSERT INTO grids (code, name, level, geom, attributes, valid_from)
    SELECT '410100' || lpad((iy * 5 + ix + 1)::text, 3, '0'),
           '压测' || (iy * 5 + ix + 1) || '街道', 'street',
           ST_Multi(ST_MakeEnvelope(:lon0 + ix * :dx, :lat0 + iy * :dy,
                                    :lon0 + (ix + 1) * :dx, :lat0 + (iy + 1) * :dy, 4326)),
           '{"dataset": "city"}'::jsonb, now() - interval '2 years'
      FROM generate_series(0, 4) AS ix, generate_series(0, 3) AS iy
"""

# One primary person per grid, with the role of its level.
PEOPLE = """
    WITH g AS (
        SELECT id, level, row_number() OVER (ORDER BY id) AS n
          FROM grids WHERE attributes->>'dataset' = 'city'
    ),
    p AS (
        INSERT INTO people (name, work_phone, attributes)
        SELECT '压测人员' || g.n, '0371-6' || lpad((g.n % 10000000)::text, 7, '0'),
               jsonb_build_object('dataset', 'city', 'grid_id', g.id)
          FROM g
        RETURNING id, (attributes->>'grid_id')::bigint AS grid_id
    )
    INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)
    SELECT p.grid_id, p.id,
           CASE g.level WHEN 'grid' THEN 'grid_leader' WHEN 'micro_grid' THEN 'micro_grid_member'
                ELSE 'party_secretary' END,
           true, now() - interval '1 year'
      FROM p JOIN g ON g.id = p.grid_id
"""

# Facilities at random points of the lattice, types weighted as in layers/ (demo density);
# line types get a short segment. Serial per type keeps the 16-digit component code.
FACILITIES = """
    WITH types AS (
        SELECT code, class_code, geometry_kind,
               coalesce((definition->'demo'->>'per_micro_grid')::float8, 0.5) AS w
          FROM facility_types WHERE active
    ),
    cum AS (
        SELECT code, class_code, geometry_kind,
               sum(w) OVER (ORDER BY code) / sum(w) OVER () AS hi,
               (sum(w) OVER (ORDER BY code) - w) / sum(w) OVER () AS lo
          FROM types
    ),
    pts AS (
        SELECT i, random() AS r,
               :lon0 + random() * 5 * :dx AS x, :lat0 + random() * 4 * :dy AS y
          FROM generate_series(1, :n) AS i
    ),
    typed AS (
        SELECT pts.*, cum.code, cum.class_code, cum.geometry_kind,
               row_number() OVER (PARTITION BY cum.code ORDER BY pts.i) AS serial
          FROM pts JOIN cum ON pts.r >= cum.lo AND pts.r < cum.hi
    )
    INSERT INTO facilities (code, type_code, status, geom, attributes)
    SELECT '410100' || class_code || lpad(serial::text, 6, '0'), code,
           CASE WHEN random() < 0.03 THEN 'damaged' ELSE 'in_service' END,
           CASE WHEN geometry_kind = 'point' THEN ST_SetSRID(ST_MakePoint(x, y), 4326)
                ELSE ST_SetSRID(ST_MakeLine(ST_MakePoint(x, y),
                                            ST_MakePoint(x + 0.0002, y + 0.0001)), 4326) END,
           '{"dataset": "city"}'::jsonb
      FROM typed
"""

HAZARDS = f"""
    WITH cats AS (
        SELECT code, default_severity, sla_hours,
               row_number() OVER (ORDER BY code) - 1 AS k, count(*) OVER () AS total
          FROM hazard_categories WHERE active
    ),
    pts AS (
        SELECT i, :lon0 + random() * 5 * :dx AS x, :lat0 + random() * 4 * :dy AS y,
               (random() * 1000)::int AS pick,
               (ARRAY['reported', 'accepted', 'dispatched', 'in_progress', 'resolved',
                      'verified', 'closed', 'closed', 'closed', 'rejected'])[1 + (i % 10)] AS st,
               now() - random() * interval '120 days' AS at
          FROM generate_series(1, :n) AS i
    )
    INSERT INTO hazards (public_code, category_code, description, severity, status, source,
                         geom, reported_at, accepted_at, dispatched_at, due_at, resolved_at,
                         verified_at, closed_at)
    SELECT 'CITY-' || lpad(pts.i::text, 7, '0'), cats.code, '压测隐患 ' || pts.i,
           cats.default_severity, pts.st,
           (ARRAY['patrol', 'resident', 'camera', 'hotline', 'superior'])[1 + pts.i % 5],
           ST_SetSRID(ST_MakePoint(pts.x, pts.y), 4326), pts.at,
           CASE WHEN pts.st NOT IN ('reported', 'rejected') THEN pts.at + interval '2 hours' END,
           CASE WHEN pts.st NOT IN ('reported', 'rejected', 'accepted')
                THEN pts.at + interval '4 hours' END,
           CASE WHEN pts.st NOT IN ('reported', 'rejected', 'accepted')
                THEN pts.at + interval '4 hours' + cats.sla_hours * interval '1 hour' END,
           CASE WHEN pts.st IN ('resolved', 'verified', 'closed')
                THEN pts.at + interval '1 day' END,
           CASE WHEN pts.st IN ('verified', 'closed') THEN pts.at + interval '2 days' END,
           CASE WHEN pts.st IN {CLOSED_SQL} THEN pts.at + interval '3 days' END
      FROM pts JOIN cats ON cats.k = pts.pick % cats.total
"""

# Route every city hazard with the same rule as live reports, set-based.
ROUTE = """
    WITH r AS (
        SELECT h.id, gis_finest_grid(h.geom, h.reported_at) AS gid
          FROM hazards h WHERE starts_with(h.public_code, 'CITY-')
    )
    UPDATE hazards h
       SET grid_id = r.gid, grid_path = g.path, grid_chain = gis_grid_chain(r.gid),
           responsible_person_id = gis_responsible_person(r.gid, h.reported_at)
      FROM r JOIN grids g ON g.id = r.gid
     WHERE h.id = r.id
"""

EVENTS = """
    INSERT INTO hazard_events (hazard_id, action, to_status, actor_name, note, created_at)
    SELECT id, 'report', 'reported', '压测', '压测数据', reported_at
      FROM hazards WHERE starts_with(public_code, 'CITY-')
"""

LEVELS = [
    # (level, parent level, n per side, name prefix, name suffix)
    ("community", "street", 4, "压测社区", ""),
    ("grid", "community", 3, "第", "网格"),
    ("micro_grid", "grid", 6, "", "号微网格"),
]


def generate_city(
    engine: Engine,
    facilities: int = 1_000_000,
    hazards: int = 200_000,
    progress: Callable[[str], None] = log.info,
) -> dict[str, int | float]:
    """Replace the city dataset; return counts and seconds per step."""
    out: dict[str, int | float] = {}
    t_all = time.perf_counter()
    with engine.begin() as conn:
        # Bulk steps run longer than the service's per-statement guard allows.
        conn.execute(text("SET LOCAL statement_timeout = 0"))

        def step(name: str, sql: str, **params) -> None:
            t0 = time.perf_counter()
            res = conn.execute(text(sql), {**PARAMS, **params})
            dt = time.perf_counter() - t0
            progress(f"{name}: {res.rowcount} rows in {dt:.1f}s")
            out[f"{name}_rows"] = res.rowcount
            out[f"{name}_s"] = round(dt, 1)

        for i, sql in enumerate(DELETE):
            step(f"delete_{i}", sql)
        step("streets", STREETS)
        conn.execute(text(BULK_ON))
        for level, parent, n, prefix, suffix in LEVELS:
            step(
                level,
                _CHILDREN,
                n=n,
                level=level,
                parent_level=parent,
                name_prefix=prefix,
                name_suffix=suffix,
            )
        conn.execute(text(BULK_OFF))
        # Every city grid gets its person here, which (re)builds every card and chain.
        step("people", PEOPLE)
        step("facilities", FACILITIES, n=facilities)
        step("hazards", HAZARDS, n=hazards)
        step("route", ROUTE)
        step("events", EVENTS)
        _analyze(conn)
    out["total_s"] = round(time.perf_counter() - t_all, 1)
    return out


def _analyze(conn: Connection) -> None:
    # Real data arrives area by area (one street's survey at a time), so rows that lie close
    # together sit on the same pages; random generation scatters them, which would make
    # every tile read ~100x more pages than in production. Restore the realistic order.
    for table, index in (
        ("facilities", "facilities_geom_gist"),
        ("hazards", "hazards_geom_gist"),
    ):
        conn.execute(text(f"CLUSTER {table} USING {index}"))  # names are our constants
    for table in ("grids", "grid_parts", "people", "grid_assignments", "facilities", "hazards"):
        conn.execute(text(f"ANALYZE {table}"))
