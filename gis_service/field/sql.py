"""The SQL of the field pack."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.care.sql import DUE_STATUS
from gis_service.db.geojson import geometry_json

# The micro-grids of a subtree (current versions), simplified to ~1 m, with the care counts
# the phone tints them by; at most :limit of them.
MICRO_GRIDS = text(
    f"""
    WITH m AS (
        SELECT g.id, g.code, g.name, g.geom FROM grids g
         WHERE g.level = 'micro_grid' AND g.valid_to IS NULL
           AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
         ORDER BY g.code
         LIMIT :limit
    ),
    -- The roster counted once for all the pack's micro-grids: its grid_id is a coalesce no
    -- index serves, so a lateral count per micro-grid read the whole roster each time (8 s
    -- for the demo's 2,000).
    c AS (
        SELECT r.grid_id, count(*) AS people,
               count(*) FILTER (WHERE {DUE_STATUS} = 'overdue') AS overdue,
               count(*) FILTER (WHERE {DUE_STATUS} = 'today') AS due_today
          FROM care_roster r
         WHERE r.grid_id IN (SELECT id FROM m)
         GROUP BY r.grid_id
    )
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
               json_build_object('type', 'Feature', 'id', t.id,
                   'geometry', {geometry_json("ST_SimplifyPreserveTopology(t.geom, 0.00001)")},
                   'properties', json_build_object('code', t.code, 'name', t.name,
                       'people', coalesce(c.people, 0), 'overdue', coalesce(c.overdue, 0),
                       'due_today', coalesce(c.due_today, 0)))
               ORDER BY t.code), '[]'::json))::text,
           count(*)
      FROM m t
      LEFT JOIN c ON c.grid_id = t.id
    """
)

SCOPE_GRID = text("SELECT id, code, name, level FROM grids WHERE id = :id")
