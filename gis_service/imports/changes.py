"""Redrawn boundaries: the changes feed (what was added, redrawn or retired since a time) and
the reassignment of open hazards that now lie in another grid (dry run first, then apply)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gis_service.imports.sql import same_geometry


def parse_when(value: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it names no zone)."""
    from datetime import UTC, date, time

    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_ROOT_IDS = "(SELECT array_agg(id) FROM grids WHERE code = CAST(:root AS text))"

# Each event: a version that started since (added, or changed when a previous version ended
# at that very moment), or a version that ended since with no successor (retired).
CHANGES = text(
    f"""
    WITH ev AS (
        SELECT g.code, g.valid_from AS at, g.id AS new_id,
               (SELECT o.id FROM grids o
                 WHERE o.code = g.code AND o.valid_to = g.valid_from
                 ORDER BY o.valid_from DESC LIMIT 1) AS old_id
          FROM grids g
         WHERE g.valid_from >= :since AND g.valid_from < coalesce(CAST(:until AS timestamptz),
                                                                  'infinity')
        UNION ALL
        SELECT o.code, o.valid_to, NULL, o.id
          FROM grids o
         WHERE o.valid_to >= :since
           AND o.valid_to < coalesce(CAST(:until AS timestamptz), 'infinity')
           AND NOT EXISTS (SELECT 1 FROM grids n
                            WHERE n.code = o.code AND n.valid_from = o.valid_to)
    )
    SELECT ev.code, ev.at,
           CASE WHEN ev.new_id IS NULL THEN 'retired'
                WHEN ev.old_id IS NULL THEN 'added' ELSE 'changed' END AS change,
           coalesce(n.name, o.name) AS name, coalesce(n.level, o.level) AS level,
           o.id AS old_id, n.id AS new_id,
           op.code AS old_parent, np.code AS new_parent,
           o.name AS old_name,
           array_remove(ARRAY[
               CASE WHEN o.id IS NOT NULL AND n.id IS NOT NULL
                         AND NOT {same_geometry("o.geom", "n.geom")} THEN 'geometry' END,
               CASE WHEN o.name IS DISTINCT FROM n.name AND n.id IS NOT NULL
                         AND o.id IS NOT NULL THEN 'name' END,
               CASE WHEN o.level IS DISTINCT FROM n.level AND n.id IS NOT NULL
                         AND o.id IS NOT NULL THEN 'level' END,
               CASE WHEN op.code IS DISTINCT FROM np.code AND n.id IS NOT NULL
                         AND o.id IS NOT NULL THEN 'parent' END,
               CASE WHEN o.attributes IS DISTINCT FROM n.attributes AND n.id IS NOT NULL
                         AND o.id IS NOT NULL THEN 'attributes' END], NULL) AS fields,
           round(ST_Area(o.geom::geography)::numeric, 1)::float8 AS old_area_m2,
           round(ST_Area(n.geom::geography)::numeric, 1)::float8 AS new_area_m2,
           CASE WHEN :geometry THEN gis_geojson(coalesce(n.geom, o.geom), :crs)::text END AS geom
      FROM ev
      LEFT JOIN grids n ON n.id = ev.new_id
      LEFT JOIN grids o ON o.id = ev.old_id
      LEFT JOIN grids np ON np.id = n.parent_id
      LEFT JOIN grids op ON op.id = o.parent_id
     WHERE (CAST(:root AS text) IS NULL
            OR n.path && {_ROOT_IDS} OR o.path && {_ROOT_IDS})
       AND (CAST(:level AS text) IS NULL OR coalesce(n.level, o.level) = :level)
     ORDER BY ev.at, coalesce(n.level, o.level), ev.code
     LIMIT :limit
    """
)


def changes(
    conn: Connection,
    since: datetime,
    until: datetime | None = None,
    root: str | None = None,
    level: str | None = None,
    geometry: bool = False,
    crs: str = "wgs84",
    limit: int = 10000,
) -> dict[str, Any]:
    """Grid versions added, changed (redrawn, renamed, moved) or retired in [since, until)."""
    rows = conn.execute(
        CHANGES,
        {
            "since": since,
            "until": until,
            "root": root,
            "level": level,
            "geometry": geometry,
            "crs": crs,
            "limit": limit,
        },
    ).mappings()
    items = []
    for r in rows:
        item: dict[str, Any] = {
            "code": r["code"],
            "name": r["name"],
            "level": r["level"],
            "change": r["change"],
            "at": r["at"].isoformat(),
            "fields": list(r["fields"] or []),
            "old": None
            if r["old_id"] is None
            else {
                "id": r["old_id"],
                "name": r["old_name"],
                "parent": r["old_parent"],
                "area_m2": r["old_area_m2"],
            },
            "new": None
            if r["new_id"] is None
            else {"id": r["new_id"], "parent": r["new_parent"], "area_m2": r["new_area_m2"]},
        }
        if geometry:
            item["geometry"] = json.loads(r["geom"]) if r["geom"] else None
        items.append(item)
    counts: dict[str, int] = {}
    for it in items:
        counts[it["change"]] = counts.get(it["change"], 0) + 1
    return {
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "root": root,
        "count": len(items),
        "counts": counts,
        "truncated": len(items) >= limit,
        "changes": items,
    }


# ---- reassignment -------------------------------------------------------------------------
# Open hazards whose routing (grid and chain of ids) is not what the current grids give:
# 'move' when the finest grid is now another code, 'relink' when it is the same code in a new
# version (or an ancestor was redrawn), 'outside' when no current grid covers the point.
_CANDIDATES = f"""
    WITH h AS (
        SELECT h.id, h.public_code, h.status, h.category_code, h.grid_id, h.grid_path,
               h.grid_chain, h.responsible_person_id,
               gis_finest_grid(h.geom, now()) AS new_grid
          FROM hazards h
         WHERE h.status NOT IN ('closed', 'rejected')
           AND (CAST(:codes AS text[]) IS NULL OR h.public_code = ANY (CAST(:codes AS text[])))
    ),
    c AS MATERIALIZED (
        SELECT h.id, h.public_code, h.status, h.category_code, h.grid_chain AS old_chain,
               og.code AS old_code, og.name AS old_name, ng.id AS new_id, ng.code AS new_code,
               ng.name AS new_name, ng.path AS new_path,
               CASE WHEN ng.id IS NULL THEN 'outside'
                    WHEN og.code = ng.code THEN 'relink' ELSE 'move' END AS kind,
               (SELECT p.name FROM people p WHERE p.id = h.responsible_person_id) AS old_person,
               (SELECT p.name FROM people p
                 WHERE p.id = gis_responsible_person(ng.id, now())) AS new_person
          FROM h
          LEFT JOIN grids og ON og.id = h.grid_id
          LEFT JOIN grids ng ON ng.id = h.new_grid
         WHERE (h.new_grid IS DISTINCT FROM h.grid_id OR ng.path IS DISTINCT FROM h.grid_path)
           AND (CAST(:root AS text) IS NULL
                OR h.grid_path && {_ROOT_IDS} OR ng.path && {_ROOT_IDS})
    )
"""

REASSIGN_PLAN = text(
    _CANDIDATES
    + """
    SELECT id, public_code, status, category_code, kind, old_code, old_name, new_code,
           new_name, old_person, new_person
      FROM c ORDER BY kind, public_code
    """
)

REASSIGN_APPLY = text(
    _CANDIDATES
    + """,
    upd AS (
        UPDATE hazards h
           SET grid_id = c.new_id,
               grid_path = c.new_path,
               grid_chain = gis_grid_chain(c.new_id),
               responsible_person_id = gis_responsible_person(c.new_id, now()),
               responsible_snapshot = (
                   SELECT jsonb_build_object('name', p.name, 'role', a.role,
                                             'work_phone', p.work_phone)
                     FROM grid_assignments a JOIN people p ON p.id = a.person_id
                    WHERE a.person_id = gis_responsible_person(c.new_id, now())
                      AND a.grid_id = ANY (c.new_path) AND a.is_primary
                      AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())
                    ORDER BY array_position(c.new_path, a.grid_id) DESC
                    LIMIT 1),
               version = h.version + 1,
               updated_at = now()
          FROM c
         WHERE h.id = c.id AND c.kind IN ('move', 'relink')
        RETURNING h.id, h.status, h.grid_chain
    )
    INSERT INTO hazard_events (hazard_id, action, from_status, to_status, actor_name, note, data)
    SELECT u.id, 'update', u.status, u.status, :actor,
           CASE WHEN c.kind = 'move'
                THEN '网格调整，改派: ' || coalesce(c.old_code, '-') || ' → ' || c.new_code
                ELSE '网格边界重绘，关联新版本: ' || c.new_code END,
           jsonb_build_object('reassign', jsonb_build_object(
               'kind', c.kind, 'from', c.old_chain, 'to', u.grid_chain,
               'from_person', c.old_person, 'to_person', c.new_person))
      FROM upd u JOIN c ON c.id = u.id
    RETURNING hazard_id
    """
)


def reassign(
    conn: Connection,
    root: str | None = None,
    apply: bool = False,
    codes: list[str] | None = None,
    actor: str = "gis-service",
) -> dict[str, Any]:
    """What would move (dry run), or move it: each move is a hazard event with both chains."""
    params = {"root": root, "codes": codes or None}
    plan = [dict(r) for r in conn.execute(REASSIGN_PLAN, params).mappings()]
    applied = 0
    if apply:
        applied = len(conn.execute(REASSIGN_APPLY, {**params, "actor": actor}).all())
    counts: dict[str, int] = {}
    for p in plan:
        counts[p["kind"]] = counts.get(p["kind"], 0) + 1
    return {
        "root": root,
        "dry_run": not apply,
        "counts": counts,
        "applied": applied,
        "hazards": plan,
    }
