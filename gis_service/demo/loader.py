"""Load the demo district into PostGIS: once, in one transaction, fast, and re-loadable.

The load is recorded in ``service_meta`` under the key ``demo``. A second call with the same
seed and generator version does nothing; ``force`` (or another seed or version) deletes the
previous demo rows and loads again in the same transaction. Demo rows carry
``attributes->>'demo' = 'true'`` (grids, people, facilities) or a ``DEMO-`` public code
(hazards); no other row is ever deleted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import struct
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import execute_values
from shapely.geometry import MultiPolygon, shape
from sqlalchemy import Connection, Engine

from gis_service.catalog import sync_catalog
from gis_service.demo.generator import (
    GENERATOR_VERSION,
    HAZARD_PREFIX,
    DemoData,
    generate,
    iter_levels,
)
from gis_service.demo.history import add_history, remove_history
from gis_service.grids.levels import GRID_LEVELS

log = logging.getLogger(__name__)

META_KEY = "demo"
# Any fixed number: two service processes starting together must not both load the demo.
_LOCK_ID = 410103_0001
_PAGE = 1000

# ---- SQL ----------------------------------------------------------------------------------
LOCK = "SELECT pg_advisory_xact_lock(%(lock)s)"

SELECT_META = "SELECT value FROM service_meta WHERE key = %(key)s"

UPSERT_META = """
    INSERT INTO service_meta (key, value, updated_at)
    VALUES (%(key)s, %(value)s::jsonb, now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
"""

# A non-demo grid under a demo parent would block the delete (ON DELETE RESTRICT); say so
# plainly instead of failing on a constraint name.
ORPHANS_OF_DEMO = """
    SELECT c.code
      FROM grids c
      JOIN grids p ON p.id = c.parent_id
     WHERE p.attributes->>'demo' = 'true'
       AND coalesce(c.attributes->>'demo', '') <> 'true'
     LIMIT 5
"""

DELETE_HAZARDS = "DELETE FROM hazards WHERE starts_with(public_code, %(prefix)s)"
# People under care and their visits go with their households.
DELETE_HOUSEHOLDS = "DELETE FROM households WHERE attributes->>'demo' = 'true'"
DELETE_PATROLS = "DELETE FROM patrols WHERE principal = %(principal)s"
DEMO_PRINCIPAL = "demo"
DELETE_FACILITIES = "DELETE FROM facilities WHERE attributes->>'demo' = 'true'"
# Finest level first, so that no parent is deleted before its children.
DELETE_GRIDS_OF_LEVEL = """
    DELETE FROM grids WHERE attributes->>'demo' = 'true' AND level = %(level)s
"""
DELETE_PEOPLE = "DELETE FROM people WHERE attributes->>'demo' = 'true'"
DELETE_LEVELS = tuple(reversed(GRID_LEVELS))  # children before their parents

# Codes the demo would take that real rows already hold (grid codes are unique over time,
# facility codes for ever).
CONFLICTING_GRIDS = """
    SELECT code FROM grids
     WHERE code = ANY (%(codes)s) AND coalesce(attributes->>'demo', '') <> 'true'
     LIMIT 5
"""
CONFLICTING_FACILITIES = """
    SELECT code FROM facilities
     WHERE code = ANY (%(codes)s) AND coalesce(attributes->>'demo', '') <> 'true'
     LIMIT 5
"""

INSERT_GRIDS = """
    INSERT INTO grids (code, name, level, parent_id, geom, attributes, valid_from)
    VALUES %s
    RETURNING id, code
"""
INSERT_GRIDS_TEMPLATE = "(%s, %s, %s, %s, ST_GeomFromWKB(%s, 4326), %s::jsonb, %s)"

INSERT_PEOPLE = """
    INSERT INTO people (name, work_phone, mobile_phone, attributes)
    VALUES %s
    RETURNING id, attributes->>'demo_key'
"""
INSERT_PEOPLE_TEMPLATE = "(%s, %s, %s, %s::jsonb)"

COPY_ASSIGNMENTS = """
    COPY grid_assignments (grid_id, person_id, role, is_primary, valid_from)
    FROM STDIN WITH (FORMAT csv)
"""

# Geometry goes in as hex EWKB (SRID included), which the geometry type reads from text.
COPY_FACILITIES = """
    COPY facilities (code, type_code, name, status, geom, attributes)
    FROM STDIN WITH (FORMAT csv)
"""

SELECT_DEPARTMENTS = "SELECT code, id FROM departments"

INSERT_HAZARDS = """
    INSERT INTO hazards (public_code, category_code, description, severity, status, source,
                         geom, location_accuracy_m, address, facility_code,
                         assignee_person_id, assignee_department_id, reporter_name,
                         reporter_phone, reported_at, accepted_at, dispatched_at, due_at,
                         resolved_at, verified_at, closed_at, updated_at)
    VALUES %s
    RETURNING id, public_code
"""
INSERT_HAZARDS_TEMPLATE = (
    "(%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

# Routing uses the same SQL functions as a live report, evaluated at the report's own time,
# so the demo hazards look exactly as if they had been reported through the API.
ROUTE_HAZARDS = """
    UPDATE hazards SET grid_id = gis_finest_grid(geom, reported_at)
     WHERE id = ANY (%(ids)s)
"""
# Deadlines in working time, by the same SQL as a live case (migration 0006): the generator
# only decides when each step happened.
DEADLINES = """
    UPDATE hazards h
       SET accept_due_at = gis_work_due(h.reported_at, c.time_limits -> 'accept'),
           due_at = CASE WHEN h.dispatched_at IS NOT NULL
                         THEN gis_work_due(h.dispatched_at, c.time_limits -> 'handle') END,
           close_due_at = CASE WHEN h.resolved_at IS NOT NULL
                               THEN gis_work_due(h.resolved_at, c.time_limits -> 'close') END
      FROM hazard_categories c
     WHERE c.code = h.category_code AND h.id = ANY (%(ids)s)
"""
SNAPSHOT_HAZARDS = """
    WITH routed AS (
        SELECT h.id, g.path, gis_grid_chain(h.grid_id) AS chain,
               gis_responsible_person(h.grid_id, h.reported_at) AS person_id
          FROM hazards h
          JOIN grids g ON g.id = h.grid_id
         WHERE h.id = ANY (%(ids)s)
    )
    UPDATE hazards h
       SET grid_path = r.path,
           grid_chain = r.chain,
           responsible_person_id = r.person_id,
           responsible_snapshot = (
               SELECT jsonb_build_object('name', p.name, 'role', a.role,
                                         'work_phone', p.work_phone)
                 FROM grid_assignments a
                 JOIN people p ON p.id = a.person_id
                WHERE a.person_id = r.person_id
                  AND a.grid_id = ANY (r.path)
                  AND a.is_primary
                ORDER BY array_position(r.path, a.grid_id) DESC
                LIMIT 1),
           department_id = (
               SELECT d.id
                 FROM hazard_categories c
                 JOIN departments d ON d.code = c.default_department_code
                WHERE c.code = h.category_code),
           facility_id = (SELECT f.id FROM facilities f WHERE f.code = h.facility_code)
      FROM routed r
     WHERE h.id = r.id
"""

COPY_EVENTS = """
    COPY hazard_events (hazard_id, action, from_status, to_status, actor_person_id,
                        actor_name, note, data, created_at)
    FROM STDIN WITH (FORMAT csv)
"""

INSERT_HOUSEHOLDS = """
    INSERT INTO households (code, grid_id, address, phone, geom, attributes)
    VALUES %s
    RETURNING id, code
"""
INSERT_HOUSEHOLDS_TEMPLATE = "(%s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s::jsonb)"
INSERT_CARE_PEOPLE = """
    INSERT INTO care_people (household_id, name, gender, birth_year, phone, categories,
                             care_since, attributes)
    VALUES %s
    RETURNING id
"""
INSERT_CARE_PEOPLE_TEMPLATE = "(%s, %s, %s, %s, %s, %s::text[], %s, '{}'::jsonb)"
COPY_VISITS = """
    COPY visits (person_id, household_id, grid_id, grid_path, visitor_person_id,
                 visitor_name, principal, visited_at, received_at, geom, accuracy_m,
                 findings, needs)
    FROM STDIN WITH (FORMAT csv)
"""
LAST_VISITS = """
    UPDATE care_people p SET last_visit_at = v.last
      FROM (SELECT person_id, max(visited_at) AS last FROM visits GROUP BY person_id) v
     WHERE p.id = v.person_id AND p.id = ANY (%(ids)s)
"""
COPY_PATROLS = """
    COPY patrols (ref, principal, person_id, walker_name, source, started_at, ended_at,
                  received_at, track, points, length_m)
    FROM STDIN WITH (FORMAT csv)
"""
# Where each patrol lies, by the same rules as an upload: the grid of its first point and
# the micro-grids it passes.
PLACE_PATROLS = """
    UPDATE patrols p
       SET grid_id = s.grid, grid_path = coalesce(s.path, '{}'),
           length_m = ST_Length(ST_Force2D(p.track)::geography),
           micro_grids = ARRAY(SELECT DISTINCT g.id FROM grid_parts gp
                                 JOIN grids g ON g.id = gp.grid_id
                                WHERE gp.rank = 4 AND ST_Intersects(gp.geom, ST_Force2D(p.track))
                                  AND g.valid_to IS NULL ORDER BY g.id)
      FROM (SELECT q.id, f.grid, (SELECT path FROM grids WHERE id = f.grid) AS path
              FROM patrols q,
                   LATERAL (SELECT gis_finest_grid(ST_StartPoint(ST_Force2D(q.track))) AS grid) f
             WHERE q.principal = %(principal)s) s
     WHERE p.id = s.id
"""

# Fresh statistics, so the first API queries after start-up get sensible plans.
ANALYZE = (
    "ANALYZE grids, grid_parts, grid_assignments, people, facilities, hazards, hazard_events,"
    " households, care_people, visits, patrols"
)


class DemoError(RuntimeError):
    """The demo cannot be loaded without touching non-demo rows."""


# ---- helpers ------------------------------------------------------------------------------
def read_boundary(path: Path) -> MultiPolygon:
    """The district polygon from a GeoJSON Feature, FeatureCollection or bare geometry."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("type") == "FeatureCollection":
        doc = doc["features"][0]
    if doc.get("type") == "Feature":
        doc = doc["geometry"]
    geom = shape(doc)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon([geom])
    if geom.geom_type != "MultiPolygon" or not geom.is_valid:
        raise DemoError(f"{path}: need a valid (Multi)Polygon, got {geom.geom_type}")
    return geom


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _copy(cur: Cursor, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows in CSV; None becomes an unquoted empty field, which CSV COPY reads as NULL."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    buf.seek(0)
    cur.copy_expert(sql, buf)


def _ewkb_hex(geoms: Sequence[Any]) -> list[str]:
    return list(shapely.to_wkb(shapely.set_srid(list(geoms), 4326), hex=True, include_srid=True))


def _check_orphans(cur: Cursor) -> None:
    """Refuse to reload while a non-demo grid sits under a demo grid."""
    cur.execute(ORPHANS_OF_DEMO)
    orphans = [r[0] for r in cur.fetchall()]
    if orphans:
        raise DemoError(
            "grids that are not demo grids sit under demo grids: "
            f"{', '.join(orphans)}; move or delete them before reloading the demo"
        )


def _delete_demo(cur: Cursor) -> dict[str, int]:
    """Remove every demo row (events and assignments go with their hazards, grids, people)."""
    deleted: dict[str, int] = {}
    remove_history(cur)  # volunteers and orders point at the demo's grids
    cur.execute(DELETE_PATROLS, {"principal": DEMO_PRINCIPAL})
    deleted["patrols"] = cur.rowcount
    cur.execute(DELETE_HOUSEHOLDS)
    deleted["households"] = cur.rowcount
    cur.execute(DELETE_HAZARDS, {"prefix": HAZARD_PREFIX})
    deleted["hazards"] = cur.rowcount
    cur.execute(DELETE_FACILITIES)
    deleted["facilities"] = cur.rowcount
    deleted["grids"] = 0
    for level in DELETE_LEVELS:
        cur.execute(DELETE_GRIDS_OF_LEVEL, {"level": level})
        deleted["grids"] += cur.rowcount
    cur.execute(DELETE_PEOPLE)
    deleted["people"] = cur.rowcount
    return deleted


def _check_conflicts(cur: Cursor, data: DemoData) -> None:
    """Refuse to load over real rows holding the demo's codes."""
    for sql, codes, what in (
        (CONFLICTING_GRIDS, [g.code for g in data.grids], "grids"),
        (CONFLICTING_FACILITIES, [f.code for f in data.facilities], "facilities"),
    ):
        cur.execute(sql, {"codes": codes})
        taken = [r[0] for r in cur.fetchall()]
        if taken:
            raise DemoError(f"non-demo {what} already use demo codes: {', '.join(taken)}")


def _linestring_m(points: Sequence[tuple[float, float, float]]) -> str:
    """Hex EWKB of a LINESTRING M in SRID 4326 (shapely writes no M), little-endian."""
    head = struct.pack("<BII", 1, 2 | 0x40000000 | 0x20000000, 4326)
    coords = np.asarray(points, dtype="<f8")
    return (head + struct.pack("<I", len(coords)) + coords.tobytes()).hex()


def _insert_fieldwork(
    cur: Cursor, data: DemoData, grid_ids: dict[str, int], person_ids: dict[str, int]
) -> None:
    """Households, people under care, their visits, and patrols (placed by SQL)."""
    work = data.fieldwork
    names = {p.key: p.name for p in data.people}
    if work.households:
        got = execute_values(
            cur,
            INSERT_HOUSEHOLDS,
            [
                (
                    h.code,
                    grid_ids[h.micro_code],
                    h.address,
                    h.phone,
                    h.lon,
                    h.lat,
                    _json({"demo": True}),
                )
                for h in work.households
            ],
            template=INSERT_HOUSEHOLDS_TEMPLATE,
            page_size=_PAGE,
            fetch=True,
        )
        household_ids = {code: hid for hid, code in got}
        flat = [(h, p) for h in work.households for p in h.people]
        got = execute_values(
            cur,
            INSERT_CARE_PEOPLE,
            [
                (
                    household_ids[h.code],
                    p.name,
                    p.gender,
                    p.birth_year,
                    p.phone,
                    "{" + ",".join(p.categories) + "}",
                    p.care_since.date(),
                )
                for h, p in flat
            ],
            template=INSERT_CARE_PEOPLE_TEMPLATE,
            page_size=_PAGE,
            fetch=True,
        )
        ids = [r[0] for r in got]
        cur.execute(
            "SELECT id, path FROM grids WHERE id = ANY (%(ids)s)",
            {"ids": list({grid_ids[h.micro_code] for h in work.households})},
        )
        paths = {gid: "{" + ",".join(str(x) for x in path) + "}" for gid, path in cur.fetchall()}
        _copy(
            cur,
            COPY_VISITS,
            (
                (
                    pid,
                    household_ids[h.code],
                    grid_ids[h.micro_code],
                    paths[grid_ids[h.micro_code]],
                    person_ids.get(v.visitor_key),
                    names.get(v.visitor_key, "网格员"),
                    DEMO_PRINCIPAL,
                    v.at.isoformat(),
                    v.at.isoformat(),
                    f"SRID=4326;POINT({v.lon} {v.lat})",
                    v.accuracy_m,
                    v.findings,
                    "{" + ",".join(v.needs) + "}",
                )
                for pid, (h, p) in zip(ids, flat, strict=True)
                for v in p.visits
            ),
        )
        cur.execute(LAST_VISITS, {"ids": ids})
    if work.patrols:
        _copy(
            cur,
            COPY_PATROLS,
            (
                (
                    p.ref,
                    DEMO_PRINCIPAL,
                    person_ids.get(p.walker_key),
                    names.get(p.walker_key, "网格员"),
                    "app",
                    datetime.fromtimestamp(p.points[0][2], UTC).isoformat(),
                    datetime.fromtimestamp(p.points[-1][2], UTC).isoformat(),
                    datetime.fromtimestamp(p.points[-1][2], UTC).isoformat(),
                    _linestring_m(p.points),
                    len(p.points),
                    0,
                )
                for p in work.patrols
            ),
        )
        cur.execute(PLACE_PATROLS, {"principal": DEMO_PRINCIPAL})


def _insert(cur: Cursor, data: DemoData) -> None:
    """Insert grids level by level, then people, assignments, facilities, hazards, events."""
    grid_ids: dict[str, int] = {}
    for _level, grids in iter_levels(data):
        if not grids:
            continue
        wkb = shapely.to_wkb([g.geom for g in grids])
        rows = [
            (
                g.code,
                g.name,
                g.level,
                grid_ids[g.parent_code] if g.parent_code else None,
                wkb[i],
                _json({**g.attributes, "demo": True}),
                data.valid_from,
            )
            for i, g in enumerate(grids)
        ]
        got = execute_values(
            cur, INSERT_GRIDS, rows, template=INSERT_GRIDS_TEMPLATE, page_size=_PAGE, fetch=True
        )
        grid_ids.update((code, gid) for gid, code in got)

    people_rows = [
        (
            p.name,
            p.work_phone,
            p.mobile_phone,
            _json({**p.attributes, "demo": True, "demo_key": p.key}),
        )
        for p in data.people
    ]
    got = execute_values(
        cur,
        INSERT_PEOPLE,
        people_rows,
        template=INSERT_PEOPLE_TEMPLATE,
        page_size=_PAGE,
        fetch=True,
    )
    person_ids: dict[str, int] = {key: pid for pid, key in got}
    _insert_fieldwork(cur, data, grid_ids, person_ids)

    _copy(
        cur,
        COPY_ASSIGNMENTS,
        (
            (grid_ids[a.grid_code], person_ids[a.person_key], a.role, a.is_primary, data.valid_from)
            for a in data.assignments
        ),
    )

    if data.facilities:
        hexes = _ewkb_hex([f.geom for f in data.facilities])
        _copy(
            cur,
            COPY_FACILITIES,
            (
                (
                    f.code,
                    f.type_code,
                    f.name,
                    f.status,
                    hexes[i],
                    _json({**f.attributes, "demo": True}),
                )
                for i, f in enumerate(data.facilities)
            ),
        )

    if not data.hazards:
        return
    cur.execute(SELECT_DEPARTMENTS)
    department_ids = dict(cur.fetchall())
    hazard_rows = [
        (
            h.public_code,
            h.category_code,
            h.description,
            h.severity,
            h.status,
            h.source,
            h.lon,
            h.lat,
            h.location_accuracy_m,
            h.address,
            h.facility_code,
            person_ids.get(h.assignee_person_key) if h.assignee_person_key else None,
            department_ids.get(h.assignee_department_code) if h.assignee_department_code else None,
            h.reporter_name,
            h.reporter_phone,
            h.reported_at,
            h.accepted_at,
            h.dispatched_at,
            h.due_at,
            h.resolved_at,
            h.verified_at,
            h.closed_at,
            h.updated_at,
        )
        for h in data.hazards
    ]
    got = execute_values(
        cur,
        INSERT_HAZARDS,
        hazard_rows,
        template=INSERT_HAZARDS_TEMPLATE,
        page_size=_PAGE,
        fetch=True,
    )
    hazard_ids: dict[str, int] = {code: hid for hid, code in got}
    ids = list(hazard_ids.values())
    cur.execute(ROUTE_HAZARDS, {"ids": ids})
    cur.execute(SNAPSHOT_HAZARDS, {"ids": ids})
    cur.execute(DEADLINES, {"ids": ids})

    _copy(
        cur,
        COPY_EVENTS,
        (
            (
                hazard_ids[h.public_code],
                e.action,
                e.from_status,
                e.to_status,
                person_ids[e.actor_person_key] if e.actor_person_key else None,
                e.actor_name,
                e.note,
                "{}",
                e.at.isoformat(),
            )
            for h in data.hazards
            for e in h.events
        ),
    )


# ---- the entry point ----------------------------------------------------------------------
def load_demo(
    engine: Engine, catalog: Any, boundary_path: Path, seed: int, force: bool = False
) -> dict[str, Any]:
    """Load the demo district once (all or nothing); return what was done, counts and time."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        result = _load(conn, catalog, boundary_path, seed, force)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    log.info("demo %s in %.1f s: %s", result["status"], result["seconds"], result.get("counts"))
    return result


def _load(
    conn: Connection, catalog: Any, boundary_path: Path, seed: int, force: bool
) -> dict[str, Any]:
    """The body of load_demo, inside its transaction."""
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(LOCK, {"lock": _LOCK_ID})
        cur.execute(SELECT_META, {"key": META_KEY})
        row = cur.fetchone()
        meta: dict[str, Any] | None = row[0] if row else None
        if (
            meta is not None
            and not force
            and meta.get("seed") == seed
            and meta.get("generator_version") == GENERATOR_VERSION
        ):
            return {"status": "skipped", **meta}

        _check_orphans(cur)  # before the slow part, so a refusal is quick
        # The demo's facility types, categories and departments must exist first.
        sync_catalog(conn, catalog)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        now = datetime.now(UTC).replace(microsecond=0)
        data = generate(read_boundary(boundary_path), catalog, seed, now)
        timings["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        deleted = _delete_demo(cur)
        _check_conflicts(cur, data)
        timings["delete"] = time.perf_counter() - t

        t = time.perf_counter()
        _insert(cur, data)
        services = {code: t.name_zh for code, t in catalog.services.items()}
        history = add_history(cur, HAZARD_PREFIX, services)
        cur.execute(ANALYZE)
        timings["insert"] = time.perf_counter() - t

        counts = data.counts()
        meta = {
            "seed": seed,
            "generator_version": GENERATOR_VERSION,
            "loaded_at": now.isoformat(),
            "counts": counts,
        }
        cur.execute(UPSERT_META, {"key": META_KEY, "value": _json(meta)})
        return {
            "status": "loaded",
            **meta,
            "deleted": deleted,
            "history": history,
            "timings": {k: round(v, 2) for k, v in timings.items()},
        }
    finally:
        cur.close()
