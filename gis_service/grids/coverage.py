"""Coverage check (横向到边、纵向到底), in SQL: gaps a parent's children leave, overlaps between
siblings, children sticking out of their parent, slivers, and grids with no leader.

Territorial levels (street, community, grid, micro-grid) must tile their parent; special grids
(专属网格) are an overlay, so they are checked only for lying inside their parent and for
having a leader. Pieces smaller than ``noise_m2`` are floating-point dust and ignored; pieces
smaller than ``sliver_m2`` or thinner than ``sliver_width_m`` are reported as slivers.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis_service.grids.sql import ROOT_IDS

KINDS = ("gap", "overlap", "outside_parent", "sliver", "no_leader")

MESSAGES = {
    "gap": "part of {code} that none of its child grids covers",
    "overlap": "{code} and {other} (siblings) overlap",
    "outside_parent": "{code} sticks out of its parent {other}",
    "sliver": "a sliver ({of}) at {code}{with_other}",
    "no_leader": "{code} has no responsible leader (no current primary person)",
}
FIXES = {
    "gap": "extend the children to cover it, or add a child grid there",
    "overlap": "move the shared boundary so that each point lies in one grid",
    "outside_parent": "clip the child to its parent, or move it under the right parent",
    "sliver": "snap the boundaries together (QGIS: Vector › Geometry Tools › Snap geometries)",
    "no_leader": "assign a primary person (gis-service import people, or --field leader_name)",
}

CHECK = text(
    f"""
    WITH scope AS MATERIALIZED (
        SELECT g.id, g.code, g.name, g.level, g.parent_id, g.geom, l.territorial
          FROM grids g
          JOIN grid_levels l ON l.code = g.level
         WHERE g.valid_to IS NULL
           AND (CAST(:root AS text) IS NULL
                OR g.path && {ROOT_IDS})
    ),
    fam AS (
        SELECT p.code, p.geom AS pgeom, ST_Union(c.geom) AS cgeom
          FROM scope p
          JOIN scope c ON c.parent_id = p.id AND c.territorial
         WHERE p.territorial
         GROUP BY p.id, p.code, p.geom
    ),
    pieces AS (
        SELECT 'gap' AS kind, f.code, NULL::text AS other, d.geom
          FROM fam f,
               LATERAL ST_Dump(ST_CollectionExtract(ST_Difference(f.pgeom, f.cgeom), 3)) AS d
         WHERE NOT ST_CoveredBy(f.pgeom, f.cgeom)
        UNION ALL
        SELECT 'outside_parent', c.code, p.code, d.geom
          FROM scope c
          JOIN scope p ON p.id = c.parent_id,
               LATERAL ST_Dump(ST_CollectionExtract(ST_Difference(c.geom, p.geom), 3)) AS d
         WHERE NOT ST_CoveredBy(c.geom, p.geom)
        UNION ALL
        SELECT 'overlap', a.code, b.code, d.geom
          FROM scope a
          -- Equality on coalesce(), not IS NOT DISTINCT FROM: it can be hashed, so only
          -- siblings are paired (not every grid with every other, 10 M pairs in the demo).
          JOIN scope b ON coalesce(b.parent_id, 0) = coalesce(a.parent_id, 0) AND a.code < b.code
                      AND a.territorial AND b.territorial AND a.geom && b.geom,
               LATERAL ST_Dump(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3)) AS d
         WHERE ST_Relate(a.geom, b.geom, '2********')
        UNION ALL
        SELECT 'grid_part', g.code, NULL, d.geom
          FROM scope g, LATERAL ST_Dump(g.geom) AS d
         WHERE g.territorial
    ),
    measured AS (
        SELECT kind, code, other, geom,
               ST_Area(geom::geography) AS area,
               ST_Perimeter(geom::geography) AS perimeter
          FROM pieces
    ),
    findings AS (
        SELECT CASE WHEN area < :sliver_m2 OR 2 * area / nullif(perimeter, 0) < :sliver_width_m
                    THEN 'sliver' ELSE kind END AS kind,
               kind AS of, code, other, geom, area
          FROM measured
         WHERE area >= :noise_m2
           AND (kind <> 'grid_part'
                OR area < :sliver_m2 OR 2 * area / nullif(perimeter, 0) < :sliver_width_m)
        UNION ALL
        SELECT 'no_leader', 'grid', g.code, NULL, g.geom, ST_Area(g.geom::geography)
          FROM scope g
         WHERE NOT EXISTS (
                   SELECT 1 FROM grid_assignments a
                    WHERE a.grid_id = g.id AND a.is_primary
                      AND gis_valid_at(a.valid_from, a.valid_to, now()))
    )
    SELECT f.kind, f.of, f.code, f.other, s.level, s.name,
           round(f.area::numeric, 2)::float8 AS area_m2,
           ST_AsGeoJSON(f.geom, 7) AS geometry
      FROM findings f
      LEFT JOIN scope s ON s.code = f.code
     ORDER BY array_position(ARRAY['gap', 'overlap', 'outside_parent', 'sliver', 'no_leader'],
                             f.kind), f.code, f.other, f.area DESC
     LIMIT :limit
    """
)

COUNT_SCOPE = text(
    f"""
    SELECT count(*) FROM grids g
     WHERE g.valid_to IS NULL
       AND (CAST(:root AS text) IS NULL
            OR g.path && {ROOT_IDS})
    """
)


@dataclass(frozen=True)
class Tolerances:
    """What counts as dust (ignored) and what as a sliver (reported)."""

    noise_m2: float = 0.01
    sliver_m2: float = 10.0
    sliver_width_m: float = 0.5
    limit: int = 5000


def check_coverage(
    conn: Connection, root: str | None = None, tol: Tolerances = Tolerances()
) -> dict[str, Any]:
    """The findings for a subtree (None: every current grid) as a GeoJSON FeatureCollection."""
    grids = conn.execute(COUNT_SCOPE, {"root": root}).scalar() or 0
    if root is not None and grids == 0:
        raise LookupError(f"no current grid has the code '{root}'")
    rows = conn.execute(
        CHECK,
        {
            "root": root,
            "noise_m2": tol.noise_m2,
            "sliver_m2": tol.sliver_m2,
            "sliver_width_m": tol.sliver_width_m,
            "limit": tol.limit,
        },
    ).all()
    features = []
    for kind, of, code, other, level, name, area, geometry in rows:
        message = MESSAGES[kind].format(
            code=code, other=other, of=of.replace("_", " "), with_other=f"/{other}" if other else ""
        )
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(geometry),
                "properties": {
                    "kind": kind,
                    "of": of if kind == "sliver" else None,
                    "code": code,
                    "other": other,
                    "level": level,
                    "name": name,
                    "area_m2": area,
                    "message": message,
                    "fix": FIXES[kind],
                },
            }
        )
    counts = Counter(f["properties"]["kind"] for f in features)
    return {
        "type": "FeatureCollection",
        "root": root,
        "grids_checked": grids,
        "clean": not features,
        "counts": {k: counts.get(k, 0) for k in KINDS},
        "tolerances": {
            "noise_m2": tol.noise_m2,
            "sliver_m2": tol.sliver_m2,
            "sliver_width_m": tol.sliver_width_m,
        },
        "truncated": len(features) >= tol.limit,
        "features": features,
    }
