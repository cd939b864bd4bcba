"""The SQL of the search box: one statement, one part per kind of result, each bounded.
Every value is a bound parameter; LIKE wildcards in the query are escaped by the service."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.hazards.states import CLOSED_SQL

# The names above a grid, street first, without the grid itself: "街道 › 社区".
_CONTEXT = """
    (SELECT string_agg(a.name, ' › ' ORDER BY u.ord)
       FROM unnest({path}[1:array_length({path}, 1) - 1]) WITH ORDINALITY AS u (gid, ord)
       JOIN grids a ON a.id = u.gid)
"""

_HAZARD_CONTEXT = """
    (SELECT string_agg(e ->> 'name', ' › ' ORDER BY o) FROM jsonb_array_elements(h.grid_chain)
       WITH ORDINALITY AS x (e, o))
"""

SEARCH = text(
    f"""
    (SELECT 'hazard' AS kind, h.id, h.public_code AS title, h.public_code AS code,
            c.name_zh || ' · ' || {_HAZARD_CONTEXT} AS context, NULL::text AS level,
            h.grid_id, 1 AS part, 0 AS rank
       FROM hazards h JOIN hazard_categories c ON c.code = h.category_code
      WHERE h.public_code LIKE upper(:q) || '%'
      ORDER BY h.public_code
      LIMIT :limit)
    UNION ALL
    (SELECT 'grid', g.id, g.name, g.code, {_CONTEXT.format(path="g.path")}, g.level, g.id, 2,
            (g.name = :raw)::int * -10 + l.rank
       FROM grids g JOIN grid_levels l ON l.code = g.level
      WHERE g.valid_to IS NULL AND gis_valid_at(g.valid_from, g.valid_to, now())
        AND (g.code LIKE :q || '%' OR g.name LIKE '%' || :q || '%')
      ORDER BY (g.name = :raw) DESC, l.rank, g.code
      LIMIT :limit)
    UNION ALL
    (SELECT 'address', h.id, h.address, h.public_code,
            c.name_zh || ' · ' || {_HAZARD_CONTEXT}, NULL, h.grid_id, 3, 0
       FROM hazards h JOIN hazard_categories c ON c.code = h.category_code
      WHERE h.address LIKE '%' || :q || '%'
        AND (h.status NOT IN {CLOSED_SQL}
             OR (CAST(:private_all AS boolean)
                 OR h.grid_path && CAST(:private_scope AS bigint[])))
      ORDER BY h.reported_at DESC
      LIMIT :limit)
    UNION ALL
    (SELECT DISTINCT ON (p.id) 'person', p.id, p.name, NULL, r.name_zh || ' · '
            || coalesce({_CONTEXT.format(path="g.path")} || ' › ', '') || g.name,
            g.level, g.id, 4, 0
       FROM people p
       JOIN grid_assignments a ON a.person_id = p.id
            AND gis_valid_at(a.valid_from, a.valid_to, now())
       JOIN grids g ON g.id = a.grid_id AND g.valid_to IS NULL
       JOIN assignment_roles r ON r.code = a.role
      WHERE (CAST(:private_all AS boolean) OR g.path && CAST(:private_scope AS bigint[]))
        AND p.active AND p.name LIKE '%' || :q || '%'
      ORDER BY p.id, a.is_primary DESC, g.code
      LIMIT :limit)
    ORDER BY part, rank, code
    """
)
