"""The SQL of the people domain. Every value is a bound parameter; read bodies are JSON
built by PostgreSQL.

``:scope`` is the caller's subtree as grid ids (``Principal.scope_filter``; NULL = all).
"""

from __future__ import annotations

from sqlalchemy import text

# A moment inside an assignment's range [valid_from, valid_to): the one SQL definition.
VALID_AT = "gis_valid_at({a}.valid_from, {a}.valid_to, {t})"

ROLES = text(
    """
    SELECT code, name_zh, name_en, rank, leader, levels, primary_for, active
      FROM assignment_roles ORDER BY rank, code
    """
)

ROLES_JSON = text(
    """
    SELECT coalesce(json_agg(json_build_object(
               'code', code, 'name_zh', name_zh, 'name_en', name_en, 'rank', rank,
               'leader', leader, 'levels', levels, 'primary_for', primary_for)
               ORDER BY rank, code), '[]'::json)::text
      FROM assignment_roles WHERE active
    """
)

# ---- scope: which grids a person's record lies in ------------------------------------------
# The record's own grid, the grids of current and future assignments, and the grids of past
# ones; the service reads "serves there" as the first two, falling back to the third.
PERSON_GRIDS = text(
    """
    SELECT 'home' AS kind, g.id, g.code, g.name, g.path
      FROM people p JOIN grids g ON g.id = p.grid_id
     WHERE p.id = :id
    UNION ALL
    SELECT CASE WHEN a.valid_to IS NULL OR a.valid_to > now() THEN 'current' ELSE 'past' END,
           g.id, g.code, g.name, g.path
      FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
     WHERE a.person_id = :id
    """
)

PERSON_EXISTS = text("SELECT id FROM people WHERE id = :id")

LOCK_PERSON = text(
    """
    SELECT id, name, work_phone, mobile_phone, party_member, notes, grid_id, active
      FROM people WHERE id = :id
       FOR NO KEY UPDATE
    """
)

# The grid row of a write, locked so that two changes of one grid's people run one by one.
LOCK_GRID = text(
    """
    SELECT g.id, g.code, g.name, g.level, g.path, g.valid_to,
           (SELECT id FROM grids c WHERE c.code = g.code AND c.valid_to IS NULL) AS current_id
      FROM grids g WHERE g.id = :id
       FOR NO KEY UPDATE
    """
)

INSERT_PERSON = text(
    """
    INSERT INTO people (name, work_phone, mobile_phone, party_member, notes, grid_id,
                        attributes)
    VALUES (:name, :work_phone, :mobile_phone, :party_member, :notes, :grid_id,
            '{"source": "api"}'::jsonb)
    RETURNING id
    """
)

UPDATE_PERSON = text(
    """
    UPDATE people SET name = :name, work_phone = :work_phone, mobile_phone = :mobile_phone,
                      party_member = :party_member, notes = :notes, grid_id = :grid_id,
                      active = :active
     WHERE id = :id
    """
)

LOCK_ASSIGNMENT = text(
    """
    SELECT a.id, a.grid_id, a.person_id, a.role, a.is_primary, a.valid_from, a.valid_to,
           g.code AS grid_code, g.name AS grid_name, g.path, p.name AS person_name
      FROM grid_assignments a
      JOIN grids g ON g.id = a.grid_id
      JOIN people p ON p.id = a.person_id
     WHERE a.id = :id
       FOR NO KEY UPDATE OF a
    """
)

# The primary assignment of a grid at :at, and any that starts later (a scheduled change).
PRIMARIES_FROM = text(
    f"""
    SELECT a.id, a.person_id, a.role, a.is_primary, a.valid_from, a.valid_to,
           p.name AS person_name
      FROM grid_assignments a JOIN people p ON p.id = a.person_id
     WHERE a.grid_id = :grid AND a.is_primary
       AND ({VALID_AT.format(a="a", t="CAST(:at AS timestamptz)")}
            OR a.valid_from > CAST(:at AS timestamptz))
     ORDER BY a.valid_from
       FOR NO KEY UPDATE OF a
    """
)

# The same person in the same role on the same grid for an overlapping time.
OVERLAPPING = text(
    """
    SELECT a.id, a.valid_from, a.valid_to FROM grid_assignments a
     WHERE a.grid_id = :grid AND a.person_id = :person AND a.role = :role
       AND tstzrange(a.valid_from, a.valid_to)
           && tstzrange(CAST(:valid_from AS timestamptz), CAST(:valid_to AS timestamptz))
     LIMIT 1
    """
)

INSERT_ASSIGNMENT = text(
    """
    INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from, valid_to)
    VALUES (:grid, :person, :role, :is_primary, coalesce(CAST(:valid_from AS timestamptz), now()),
            :valid_to)
    RETURNING id, valid_from
    """
)

END_ASSIGNMENT = text(
    """
    UPDATE grid_assignments SET valid_to = coalesce(CAST(:valid_to AS timestamptz), now())
     WHERE id = :id
    RETURNING valid_to
    """
)

NOW = text("SELECT now()")

# ---- reads ---------------------------------------------------------------------------------
# Who made an assignment and who ended it, and why (from the audit log, same transaction).
_AUDIT_OF = """
    (SELECT json_build_object('by', l.principal_name, 'at', l.at, 'reason', l.reason)
       FROM audit_log l
      WHERE l.object_type = 'grid_assignment' AND l.object_id = {a}.id::text
        AND l.action = '{action}'
      ORDER BY l.at DESC LIMIT 1)
"""

# One assignment as JSON; {a} an assignment, {g} its grid, {p} its person, {r} its role.
ASSIGNMENT_JSON = f"""
    json_build_object(
        'id', {{a}}.id,
        'grid', json_build_object('id', {{g}}.id, 'code', {{g}}.code, 'name', {{g}}.name,
                                  'level', {{g}}.level),
        'person_id', {{p}}.id, 'person_name', {{p}}.name,
        'work_phone', {{p}}.work_phone, 'mobile_phone', {{p}}.mobile_phone,
        'party_member', {{p}}.party_member,
        'role', {{a}}.role, 'role_name', {{r}}.name_zh,
        'is_primary', {{a}}.is_primary,
        'valid_from', {{a}}.valid_from, 'valid_to', {{a}}.valid_to,
        'state', CASE WHEN {{a}}.valid_from > now() THEN 'future'
                      WHEN {{a}}.valid_to IS NOT NULL AND {{a}}.valid_to <= now() THEN 'past'
                      ELSE 'current' END,
        'started_by', {_AUDIT_OF.format(a="{a}", action="create")},
        'ended_by', {_AUDIT_OF.format(a="{a}", action="end")})
"""

_PERSON_JSON = f"""
    json_build_object(
        'id', p.id, 'name', p.name, 'work_phone', p.work_phone,
        'mobile_phone', p.mobile_phone, 'party_member', p.party_member, 'notes', p.notes,
        'active', p.active,
        'grid', (SELECT json_build_object('id', h.id, 'code', h.code, 'name', h.name,
                                          'level', h.level)
                   FROM grids h WHERE h.id = p.grid_id),
        'account', (SELECT json_build_object('id', u.id, 'username', u.username,
                                             'role', u.role, 'active', u.active)
                      FROM users u WHERE u.person_id = p.id),
        'assignments', (
            SELECT coalesce(json_agg({ASSIGNMENT_JSON.format(a="a", g="g", p="p", r="r")}
                                     ORDER BY (a.valid_to IS NULL) DESC, a.valid_to DESC,
                                              a.valid_from DESC, a.id DESC), '[]'::json)
              FROM grid_assignments a
              JOIN grids g ON g.id = a.grid_id
              JOIN assignment_roles r ON r.code = a.role
             WHERE a.person_id = p.id {{assignments}}),
        'created_at', p.created_at, 'updated_at', p.updated_at)
"""

PERSON = text(f"SELECT {_PERSON_JSON.format(assignments='')}::text FROM people p WHERE p.id = :id")

# People the caller may see: their record's grid, or any grid they serve or served on, lies
# in the scope. Matching by name, by the digits of either phone, by grid subtree, by role.
_SEARCH = f"""
    SELECT p.*
      FROM people p
     WHERE (CAST(:scope AS bigint[]) IS NULL
            OR EXISTS (SELECT 1 FROM grids h
                        WHERE h.id = p.grid_id AND h.path && CAST(:scope AS bigint[]))
            OR EXISTS (SELECT 1 FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
                        WHERE a.person_id = p.id AND g.path && CAST(:scope AS bigint[])))
       AND (CAST(:name AS text) IS NULL OR p.name ILIKE '%' || CAST(:name AS text) || '%'
            OR (CAST(:digits AS text) IS NOT NULL
                AND (regexp_replace(coalesce(p.mobile_phone, ''), '[^0-9]', '', 'g')
                         LIKE '%' || CAST(:digits AS text) || '%'
                     OR regexp_replace(coalesce(p.work_phone, ''), '[^0-9]', '', 'g')
                         LIKE '%' || CAST(:digits AS text) || '%')))
       AND (CAST(:within AS bigint[]) IS NULL
            OR EXISTS (SELECT 1 FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
                        WHERE a.person_id = p.id AND g.path && CAST(:within AS bigint[])
                          AND {VALID_AT.format(a="a", t="now()")}
                          AND (CAST(:role AS text) IS NULL OR a.role = CAST(:role AS text))))
       AND (CAST(:role AS text) IS NULL
            OR EXISTS (SELECT 1 FROM grid_assignments a
                        WHERE a.person_id = p.id AND a.role = CAST(:role AS text)
                          AND {VALID_AT.format(a="a", t="now()")}))
       AND (CAST(:active AS boolean) IS NULL OR p.active = CAST(:active AS boolean))
"""

_NOT_ENDED = "AND (a.valid_to IS NULL OR a.valid_to > now())"

SEARCH = text(
    f"""
    WITH m AS ({_SEARCH}),
    page AS (SELECT * FROM m ORDER BY name, id LIMIT :limit OFFSET :offset)
    SELECT json_build_object(
        'people', (SELECT coalesce(json_agg(
                       {_PERSON_JSON.format(assignments=_NOT_ENDED)}
                       ORDER BY p.name, p.id), '[]'::json)
                     FROM page p),
        'matched', (SELECT count(*) FROM m),
        'limit', CAST(:limit AS int), 'offset', CAST(:offset AS int))::text
    """
)

SEARCH_CSV = text(
    f"""
    SELECT p.id, p.name, p.work_phone, p.mobile_phone, p.party_member, p.active,
           h.code AS record_grid_code,
           (SELECT string_agg(g.code || ' ' || g.name || ' ' || r.name_zh, '; '
                              ORDER BY g.code, r.rank)
              FROM grid_assignments a
              JOIN grids g ON g.id = a.grid_id
              JOIN assignment_roles r ON r.code = a.role
             WHERE a.person_id = p.id AND {VALID_AT.format(a="a", t="now()")}) AS roles
      FROM ({_SEARCH}) p
      LEFT JOIN grids h ON h.id = p.grid_id
     ORDER BY p.name, p.id
     LIMIT :limit OFFSET :offset
    """
)

# Every version of a grid code (a redrawn grid keeps its code and its history).
GRID_VERSIONS = text("SELECT array_agg(id ORDER BY id) FROM grids WHERE code = :code")

# A grid's people now, scheduled and past (every version of its code), its leader or gap.
GRID_PEOPLE = text(
    f"""
    WITH g0 AS (SELECT * FROM grids WHERE id = :id),
    lead AS (
        SELECT r.code, r.name_zh FROM assignment_roles r, g0
         WHERE g0.level = ANY (r.primary_for) AND r.active
         ORDER BY r.rank LIMIT 1
    ),
    asg AS (
        SELECT {ASSIGNMENT_JSON.format(a="a", g="g", p="p", r="r")}::jsonb AS j,
               a.is_primary, a.valid_from, a.valid_to, r.rank, p.name
          FROM g0
          JOIN grids g ON g.code = g0.code
          JOIN grid_assignments a ON a.grid_id = g.id
          JOIN people p ON p.id = a.person_id
          JOIN assignment_roles r ON r.code = a.role
    )
    SELECT json_build_object(
        'grid', (SELECT json_build_object(
                     'id', g0.id, 'code', g0.code, 'name', g0.name, 'level', g0.level,
                     'level_name', (SELECT name_zh FROM grid_levels WHERE code = g0.level),
                     'valid_to', g0.valid_to,
                     'chain', (SELECT json_agg(json_build_object(
                                   'id', c.id, 'code', c.code, 'name', c.name, 'level', c.level)
                                   ORDER BY array_position(g0.path, c.id))
                                 FROM grids c WHERE c.id = ANY (g0.path)))
                   FROM g0),
        'leader_role', (SELECT json_build_object('code', code, 'name_zh', name_zh) FROM lead),
        'leader', (SELECT j FROM asg WHERE is_primary AND j->>'state' = 'current' LIMIT 1),
        'gap', EXISTS (SELECT 1 FROM lead)
               AND NOT EXISTS (SELECT 1 FROM asg WHERE is_primary AND j->>'state' = 'current'),
        'current', (SELECT coalesce(jsonb_agg(j ORDER BY is_primary DESC, rank, name), '[]')
                      FROM asg WHERE j->>'state' = 'current'),
        'future', (SELECT coalesce(jsonb_agg(j ORDER BY valid_from, rank), '[]')
                     FROM asg WHERE j->>'state' = 'future'),
        'past', (SELECT coalesce(jsonb_agg(j ORDER BY valid_to DESC, rank), '[]')
                   FROM (SELECT * FROM asg WHERE j->>'state' = 'past'
                          ORDER BY valid_to DESC LIMIT :history) x))::text
      FROM g0
    """
)

# The children of a grid (or the given roots), each with its leader now, how many children
# it has and how many grids below it need a leader and have none.
_NEEDS_LEADER = (
    "EXISTS (SELECT 1 FROM assignment_roles r WHERE {g}.level = ANY (r.primary_for) AND r.active)"
)
_LEADER_NOW = f"""
    (SELECT json_build_object('assignment_id', a.id, 'person_id', p.id, 'name', p.name,
                              'role', a.role, 'role_name', r.name_zh,
                              'since', a.valid_from)
       FROM grid_assignments a
       JOIN people p ON p.id = a.person_id
       JOIN assignment_roles r ON r.code = a.role
      WHERE a.grid_id = {{g}}.id AND a.is_primary AND {VALID_AT.format(a="a", t="now()")}
      LIMIT 1)
"""

ROSTER = text(
    f"""
    SELECT coalesce(json_agg(json_build_object(
               'id', k.id, 'code', k.code, 'name', k.name, 'level', k.level,
               'level_name', l.name_zh,
               'children', (SELECT count(*) FROM grids c
                             WHERE c.parent_id = k.id AND c.valid_to IS NULL),
               'needs_leader', {_NEEDS_LEADER.format(g="k")},
               'leader', {_LEADER_NOW.format(g="k")},
               'gaps', (SELECT count(*) FROM grids s
                         WHERE s.path @> ARRAY[k.id] AND s.id <> k.id AND s.valid_to IS NULL
                           AND {_NEEDS_LEADER.format(g="s")}
                           AND NOT EXISTS (SELECT 1 FROM grid_assignments a
                                            WHERE a.grid_id = s.id AND a.is_primary
                                              AND {VALID_AT.format(a="a", t="now()")})))
               ORDER BY k.code), '[]'::json)::text
      FROM grids k JOIN grid_levels l ON l.code = k.level
     WHERE k.valid_to IS NULL
       AND (CAST(:parent AS bigint) IS NOT NULL AND k.parent_id = CAST(:parent AS bigint)
            OR CAST(:parent AS bigint) IS NULL AND CAST(:roots AS bigint[]) IS NULL
               AND k.parent_id IS NULL
            OR CAST(:parent AS bigint) IS NULL AND k.id = ANY (CAST(:roots AS bigint[])))
    """
)

# The current version of each scope root (a redrawn root keeps its code).
SCOPE_ROOTS = text(
    """
    SELECT array_agg(DISTINCT c.id)
      FROM grids g JOIN grids c ON c.code = g.code AND c.valid_to IS NULL
     WHERE g.id = ANY (CAST(:ids AS bigint[]))
    """
)

GRID_BRIEF = text(
    """
    SELECT g.id, g.code, g.name, g.level, g.path, g.valid_to FROM grids g WHERE g.id = :id
    """
)

PERSON_LINKED_ACCOUNT = text("SELECT id, username FROM users WHERE person_id = :id")

CURRENT_GRID_CODE = text("SELECT id FROM grids WHERE code = :code AND valid_to IS NULL")
