"""The changes feed of redrawn boundaries: which grid versions were added, redrawn (with the
fields that changed) or retired in a period."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gis_service.geo.sql import same_geometry
from gis_service.grids.sql import ROOT_IDS

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
            OR n.path && {ROOT_IDS} OR o.path && {ROOT_IDS})
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
