"""Reassignment after a redraw: open hazards whose grid is no longer the one that covers them
now, shown first (dry run) and then moved, each move recorded as a hazard event with the old
and new grid chain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.grids.sql import ROOT_IDS
from gis_service.hazards.states import open_sql

# Open hazards whose routing (grid and chain of ids) is not what the current grids give:
# 'move' when the finest grid is now another code, 'relink' when it is the same code in a new
# version (or an ancestor was redrawn), 'outside' when no current grid covers the point.
_CANDIDATES = f"""
    WITH h AS (
        SELECT h.id, h.public_code, h.status, h.category_code, h.grid_id, h.grid_path,
               h.grid_chain, h.responsible_person_id,
               gis_finest_grid(h.geom, now()) AS new_grid
          FROM hazards h
         WHERE {open_sql("h")}
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
                OR h.grid_path && {ROOT_IDS} OR ng.path && {ROOT_IDS})
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
                      AND gis_valid_at(a.valid_from, a.valid_to, now())
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
