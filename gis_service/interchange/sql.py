"""SQL of imports, in one place. Values are bound parameters (psycopg2 %(name)s style, since
the importer works on the raw cursor for COPY)."""

from __future__ import annotations

from gis_service.geo.sql import same_geometry

# One import at a time: the versions rule is checked set-based, which needs serial writers.
LOCK = "SELECT pg_advisory_xact_lock(4101030007)"

# The role that leads grids of a level (layers/assignment_roles.yaml: primary_for).
LEVEL_ROLE = """(SELECT r.code FROM assignment_roles r
                   WHERE {level} = ANY (r.primary_for) AND r.active
                   ORDER BY r.rank LIMIT 1)"""


# ---- grids --------------------------------------------------------------------------------
STAGE_GRIDS = """
    CREATE TEMP TABLE imp_grids (
        rn int, code text, name text, level text, parent_code text,
        leader_name text, leader_phone text, attributes jsonb, geom geometry
    ) ON COMMIT DROP
"""
COPY_GRIDS = """
    COPY imp_grids (geom, rn, code, name, level, parent_code, leader_name, leader_phone,
                    attributes) FROM STDIN WITH (FORMAT csv)
"""

# Statistics of the columns the checks and the write join or filter on: the geometry's
# (a spatial histogram, ~0.2 s of 100,000 rows) would serve no plan, none filters on it.
ANALYZE_GRIDS = "ANALYZE imp_grids (rn, code, level, parent_code, leader_name)"

INVALID_GRIDS = """
    SELECT rn, code, ST_IsValidReason(geom) FROM imp_grids
     WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)
     ORDER BY rn
"""
FIX_GRIDS = """
    UPDATE imp_grids SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))
     WHERE rn = ANY (%(rns)s)
    RETURNING rn, code, ST_IsEmpty(geom) OR NOT ST_IsValid(geom) AS still_bad
"""

PARENT_PROBLEMS = """
    WITH f AS (
        SELECT DISTINCT ON (code) code, level FROM imp_grids
         WHERE code IS NOT NULL ORDER BY code, rn
    ),
    d AS (SELECT code, level FROM grids WHERE valid_to IS NULL)
    SELECT s.rn, s.code, s.parent_code, s.level, coalesce(f.level, d.level) AS parent_level,
           coalesce(f.code, d.code) IS NOT NULL AS found
      FROM imp_grids s
      LEFT JOIN f ON f.code = s.parent_code
      LEFT JOIN d ON d.code = s.parent_code AND f.code IS NULL
      LEFT JOIN grid_levels cl ON cl.code = s.level
      LEFT JOIN grid_levels pl ON pl.code = coalesce(f.level, d.level)
     WHERE s.parent_code IS NOT NULL AND s.level IS NOT NULL AND s.parent_code <> s.code
       AND (coalesce(f.code, d.code) IS NULL OR pl.rank >= cl.rank)
     ORDER BY s.rn
"""

NO_PARENT = """
    SELECT rn, code, level FROM imp_grids
     WHERE parent_code IS NULL AND level IS NOT NULL AND level <> 'street'
     ORDER BY rn LIMIT 200
"""

# Rows whose code already has a current version, and which of their fields differ.
COMPARE_GRIDS = f"""
    CREATE TEMP TABLE imp_grid_cmp ON COMMIT DROP AS
    SELECT s.rn, s.code, g.id AS old_id, g.valid_from AS old_from,
           g.name IS DISTINCT FROM s.name AS d_name,
           g.level IS DISTINCT FROM s.level AS d_level,
           p.code IS DISTINCT FROM s.parent_code AS d_parent,
           g.attributes IS DISTINCT FROM s.attributes AS d_attributes,
           s.geom IS NOT NULL AND NOT {same_geometry("g.geom", "ST_Multi(s.geom)")} AS d_geom,
           false AS changed
      FROM imp_grids s
      JOIN grids g ON g.code = s.code AND g.valid_to IS NULL
      LEFT JOIN grids p ON p.id = g.parent_id
"""
MARK_CHANGED = """
    UPDATE imp_grid_cmp SET changed = d_name OR d_level OR d_parent OR d_attributes OR d_geom
"""
COMPARE_SUMMARY = """
    SELECT count(*) AS existing,
           count(*) FILTER (WHERE changed) AS changed,
           count(*) FILTER (WHERE d_geom) AS geometry,
           count(*) FILTER (WHERE d_name) AS name,
           count(*) FILTER (WHERE d_parent) AS parent,
           count(*) FILTER (WHERE d_level) AS level,
           count(*) FILTER (WHERE d_attributes) AS attributes
      FROM imp_grid_cmp
"""
EXISTING_ROWS = """
    SELECT rn, code, old_from FROM imp_grid_cmp ORDER BY rn LIMIT 200
"""
TOO_EARLY = """
    SELECT rn, code, old_from FROM imp_grid_cmp
     WHERE changed AND old_from >= %(t)s ORDER BY rn LIMIT 200
"""

# ---- scope: a caller bound to a subtree writes only inside it ---------------------------
# %(scope)s holds the ids of the caller's scope root (every version of its code). A row is in
# scope after the import when its parent is a current grid inside the scope, or a row of the
# file that is itself in scope, or when it is the scope root keeping its own parent; and, if
# the code exists, before the import when the current version lies inside the scope. So
# re-parenting another street's community into one's own street is refused: it writes both.
GRIDS_OUT_OF_SCOPE = """
    WITH RECURSIVE anchored (code) AS (
        SELECT s.code
          FROM imp_grids s
          JOIN grids p ON p.code = s.parent_code AND p.valid_to IS NULL
         WHERE p.path && CAST(%(scope)s AS bigint[])
           AND NOT EXISTS (SELECT 1 FROM imp_grids f WHERE f.code = s.parent_code)
        UNION
        SELECT s.code
          FROM imp_grids s
          JOIN grids g ON g.code = s.code AND g.valid_to IS NULL
          LEFT JOIN grids gp ON gp.id = g.parent_id
         WHERE g.id = ANY (CAST(%(scope)s AS bigint[]))
           AND s.parent_code IS NOT DISTINCT FROM gp.code
        UNION
        SELECT s.code FROM imp_grids s JOIN anchored a ON s.parent_code = a.code
    )
    SELECT s.rn, s.code, s.parent_code,
           g.id IS NOT NULL AND NOT g.path && CAST(%(scope)s AS bigint[]) AS before_outside
      FROM imp_grids s
      LEFT JOIN grids g ON g.code = s.code AND g.valid_to IS NULL
     WHERE s.code IS NOT NULL
       AND (NOT EXISTS (SELECT 1 FROM anchored a WHERE a.code = s.code)
            OR (g.id IS NOT NULL AND NOT g.path && CAST(%(scope)s AS bigint[])))
     ORDER BY s.rn LIMIT 200
"""
# Leaders named in the file who are already on record (same name and work phone) and work on
# a grid outside the scope: linking them here would open their private fields to the caller.
LEADERS_OUT_OF_SCOPE = """
    SELECT s.rn, s.code, s.leader_name
      FROM imp_grids s
     WHERE s.leader_name IS NOT NULL
       AND EXISTS (
           SELECT 1 FROM people p
             JOIN grid_assignments a ON a.person_id = p.id AND a.valid_to IS NULL
             JOIN grids g ON g.id = a.grid_id
            WHERE p.name = s.leader_name AND p.work_phone IS NOT DISTINCT FROM s.leader_phone
              AND NOT g.path && CAST(%(scope)s AS bigint[]))
     ORDER BY s.rn LIMIT 200
"""
RETIRE_OUT_OF_SCOPE = """
    SELECT r.code FROM imp_retire r JOIN grids g ON g.id = r.id
     WHERE NOT g.path && CAST(%(scope)s AS bigint[])
     ORDER BY r.code LIMIT 200
"""
# A facility lies in the scope when the current scope root covers it (the new geometry, and
# the old one of a facility the file changes).
FACILITIES_OUT_OF_SCOPE = """
    WITH root AS (
        SELECT ST_Union(geom) AS geom FROM grids
         WHERE id = ANY (CAST(%(scope)s AS bigint[])) AND valid_to IS NULL
    )
    SELECT s.rn, s.code
      FROM imp_facilities s
      CROSS JOIN root
      LEFT JOIN facilities f ON f.code = s.code
     WHERE s.geom IS NOT NULL
       AND (root.geom IS NULL OR NOT ST_Covers(root.geom, s.geom)
            OR (f.id IS NOT NULL AND NOT ST_Covers(root.geom, f.geom)))
     ORDER BY s.rn LIMIT 200
"""
# People rows whose grid lies outside the scope, or who are on record and work outside it.
PEOPLE_OUT_OF_SCOPE = """
    SELECT r.rn, r.grid_code, r.name,
           g.id IS NOT NULL AND NOT g.path && CAST(%(scope)s AS bigint[]) AS grid_outside
      FROM imp_people_r r
      LEFT JOIN grids g ON g.id = r.grid_id
     WHERE (g.id IS NOT NULL AND NOT g.path && CAST(%(scope)s AS bigint[]))
        OR (r.person_id IS NOT NULL AND EXISTS (
               SELECT 1 FROM grid_assignments a JOIN grids ag ON ag.id = a.grid_id
                WHERE a.person_id = r.person_id AND a.valid_to IS NULL
                  AND NOT ag.path && CAST(%(scope)s AS bigint[])))
     ORDER BY r.rn LIMIT 200
"""

# --retire-missing: current grids under the parents the file fills, of the levels it holds,
# that the file no longer lists.
RETIRE_CANDIDATES = """
    CREATE TEMP TABLE imp_retire ON COMMIT DROP AS
    SELECT g.id, g.code, g.level
      FROM grids g
      JOIN grids p ON p.id = g.parent_id
     WHERE g.valid_to IS NULL
       AND p.code IN (SELECT parent_code FROM imp_grids WHERE parent_code IS NOT NULL)
       AND g.level IN (SELECT level FROM imp_grids WHERE level IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM imp_grids s WHERE s.code = g.code)
"""
RETIRE_BLOCKED = """
    SELECT r.code, c.code AS child
      FROM imp_retire r
      JOIN grids c ON c.parent_id = r.id AND c.valid_to IS NULL
     WHERE NOT EXISTS (SELECT 1 FROM imp_grids s WHERE s.code = c.code)
       AND NOT EXISTS (SELECT 1 FROM imp_retire r2 WHERE r2.id = c.id)
     ORDER BY r.code, c.code LIMIT 200
"""
RETIRE = "UPDATE grids SET valid_to = %(t)s WHERE id IN (SELECT id FROM imp_retire)"
RETIRE_ASSIGNMENTS = """
    UPDATE grid_assignments SET valid_to = %(t)s
     WHERE grid_id IN (SELECT id FROM imp_retire)
       AND valid_from < %(t)s AND (valid_to IS NULL OR valid_to > %(t)s)
"""

END_CHANGED = """
    UPDATE grids SET valid_to = %(t)s
     WHERE id IN (SELECT old_id FROM imp_grid_cmp WHERE changed)
"""

GRID_SEQUENCE = "SELECT pg_get_serial_sequence('grids', 'id')"
BULK_ON = "SELECT set_config('gis.bulk_import', 'on', true)"
BULK_OFF = "SELECT set_config('gis.bulk_import', 'off', true)"

# New grids and new versions in one statement: fresh ids, paths derived down the file's own
# tree (parents outside the file come from the database), then the ST_Subdivide pieces that
# point lookups use — exactly what the row triggers would do, but set-based. The tree is
# walked on narrow rows (ids and codes; file codes are unique, validation saw to it), and
# each row's name, geometry and attributes are read once, at the insert: walked with their
# geometries, the recursive CTE spilled to disk and hashed 100,000 geometries twice.
# Parents outside the file come from imp_parents (STAGE_PARENTS), analysed, so the planner
# hashes them: against grids itself, whose statistics lag a freshly loaded parent layer, it
# compared every row with every current grid (11 M comparisons for 100,000 micro-grids).
STAGE_PARENTS = """
    CREATE TEMP TABLE imp_parents ON COMMIT DROP AS
    SELECT g.code, g.id, g.path
      FROM grids g
     WHERE g.valid_to IS NULL
       AND g.code IN (SELECT DISTINCT parent_code FROM imp_grids WHERE parent_code IS NOT NULL)
"""
INSERT_GRIDS = """
    WITH RECURSIVE
    w AS MATERIALIZED (
        SELECT nextval(CAST(%(seq)s AS regclass)) AS id, s.rn, s.code, s.parent_code
          FROM imp_grids s
         WHERE NOT EXISTS (SELECT 1 FROM imp_grid_cmp c WHERE c.code = s.code AND NOT c.changed)
    ),
    tree (id, rn, code, parent_id, path) AS (
        SELECT w.id, w.rn, w.code, p.id, coalesce(p.path, '{}') || w.id
          FROM w
          LEFT JOIN imp_parents p ON p.code = w.parent_code
         WHERE w.parent_code IS NULL
            OR NOT EXISTS (SELECT 1 FROM w w2 WHERE w2.code = w.parent_code)
        UNION ALL
        SELECT w.id, w.rn, w.code, t.id, t.path || w.id
          FROM tree t JOIN w ON w.parent_code = t.code
    ),
    ins AS (
        INSERT INTO grids (id, code, name, level, parent_id, path, geom, attributes, valid_from)
        SELECT t.id, t.code, s.name, s.level, t.parent_id, t.path, ST_Multi(s.geom),
               s.attributes, %(t)s
          FROM tree t JOIN imp_grids s ON s.rn = t.rn
        RETURNING id, level, geom
    )
    INSERT INTO grid_parts (grid_id, rank, geom)
    SELECT ins.id, l.rank, part.geom
      FROM ins
      JOIN grid_levels l ON l.code = ins.level
      CROSS JOIN LATERAL (
          SELECT ST_GeometryN(ins.geom, 1) AS geom
           WHERE ST_NumGeometries(ins.geom) = 1 AND ST_NPoints(ins.geom) <= 128
          UNION ALL
          SELECT d.geom
            FROM ST_Subdivide(ins.geom, 128) AS sd (geom), LATERAL ST_Dump(sd.geom) AS d
           WHERE NOT (ST_NumGeometries(ins.geom) = 1 AND ST_NPoints(ins.geom) <= 128)
             AND GeometryType(d.geom) = 'POLYGON'
      ) AS part
"""

# Current children of a redrawn grid follow it to its new version (the path trigger
# re-derives their subtree); ended children keep pointing at the version they knew.
REPOINT_CHILDREN = """
    UPDATE grids c SET parent_id = n.id
      FROM imp_grid_cmp x
      JOIN grids n ON n.code = x.code AND n.valid_to IS NULL
     WHERE x.changed AND c.parent_id = x.old_id AND c.valid_to IS NULL AND c.id <> n.id
"""

# People on a redrawn grid carry over to the new version; the old assignment ends with it.
CARRY_ASSIGNMENTS = """
    WITH moved AS (
        SELECT a.id, n.id AS new_grid, a.person_id, a.role, a.is_primary
          FROM imp_grid_cmp x
          JOIN grid_assignments a ON a.grid_id = x.old_id
          JOIN grids n ON n.code = x.code AND n.valid_to IS NULL
         WHERE x.changed AND a.valid_from < %(t)s AND (a.valid_to IS NULL OR a.valid_to > %(t)s)
    ),
    ended AS (
        UPDATE grid_assignments a SET valid_to = %(t)s FROM moved m WHERE a.id = m.id
    )
    INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)
    SELECT new_grid, person_id, role, is_primary, %(t)s FROM moved
"""

# Leaders named in the file: who is primary now, and whether that differs.
STAGE_LEADERS = f"""
    CREATE TEMP TABLE imp_leaders ON COMMIT DROP AS
    SELECT s.rn, g.id AS grid_id, g.level, s.leader_name AS name, s.leader_phone AS phone,
           cur.a_id, cur.created_at AS a_created,
           {LEVEL_ROLE.format(level="g.level")} AS role,
           cur.a_id IS NULL OR cp.name IS DISTINCT FROM s.leader_name
               OR (s.leader_phone IS NOT NULL
                   AND cp.work_phone IS DISTINCT FROM s.leader_phone) AS changed
      FROM imp_grids s
      JOIN grids g ON g.code = s.code AND g.valid_to IS NULL
      LEFT JOIN LATERAL (
          SELECT a.id AS a_id, a.person_id, a.created_at
            FROM grid_assignments a
           WHERE a.grid_id = g.id AND a.is_primary
             AND gis_valid_at(a.valid_from, a.valid_to, %(t)s)
           LIMIT 1
      ) cur ON true
      LEFT JOIN people cp ON cp.id = cur.person_id
     WHERE s.leader_name IS NOT NULL
"""
INSERT_LEADER_PEOPLE = """
    INSERT INTO people (name, work_phone, attributes)
    SELECT DISTINCT l.name, l.phone, '{"source": "import"}'::jsonb
      FROM imp_leaders l
     WHERE l.changed
       AND NOT EXISTS (SELECT 1 FROM people p
                        WHERE p.name = l.name AND p.work_phone IS NOT DISTINCT FROM l.phone)
"""
# A primary created in this very transaction (carried over a redraw) is replaced outright;
# an older one ends.
DROP_REPLACED_LEADERS = """
    DELETE FROM grid_assignments a USING imp_leaders l
     WHERE l.changed AND a.id = l.a_id AND a.created_at = now()
"""
END_REPLACED_LEADERS = """
    UPDATE grid_assignments a SET valid_to = %(t)s FROM imp_leaders l
     WHERE l.changed AND a.id = l.a_id AND a.created_at <> now()
"""
INSERT_LEADERS = """
    INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)
    SELECT l.grid_id,
           (SELECT p.id FROM people p
             WHERE p.name = l.name AND p.work_phone IS NOT DISTINCT FROM l.phone
             ORDER BY p.id LIMIT 1),
           l.role, true, %(t)s
      FROM imp_leaders l
     WHERE l.changed
"""

# ---- facilities ---------------------------------------------------------------------------
STAGE_FACILITIES = """
    CREATE TEMP TABLE imp_facilities (
        rn int, code text, type_code text, name text, status text, attributes jsonb,
        geom geometry
    ) ON COMMIT DROP
"""
COPY_FACILITIES = """
    COPY imp_facilities (geom, rn, code, type_code, name, status, attributes)
    FROM STDIN WITH (FORMAT csv)
"""
ANALYZE_FACILITIES = "ANALYZE imp_facilities (rn, code)"  # as ANALYZE_GRIDS
INVALID_FACILITIES = """
    SELECT rn, code, ST_IsValidReason(geom) FROM imp_facilities
     WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)
     ORDER BY rn
"""
FIX_FACILITIES = """
    UPDATE imp_facilities SET geom = ST_MakeValid(geom)
     WHERE rn = ANY (%(rns)s)
    RETURNING rn, code,
              ST_IsEmpty(geom) OR NOT ST_IsValid(geom)
              OR GeometryType(geom) NOT IN ('POINT', 'LINESTRING', 'MULTILINESTRING')
"""
COMPARE_FACILITIES = f"""
    CREATE TEMP TABLE imp_fac_cmp ON COMMIT DROP AS
    SELECT s.rn, s.code, f.id,
           f.type_code IS DISTINCT FROM s.type_code OR f.name IS DISTINCT FROM s.name
           OR f.status IS DISTINCT FROM s.status OR f.attributes IS DISTINCT FROM s.attributes
           OR NOT {same_geometry("f.geom", "s.geom")} AS changed
      FROM imp_facilities s
      JOIN facilities f ON f.code = s.code
"""
FACILITY_SUMMARY = """
    SELECT count(*), count(*) FILTER (WHERE changed) FROM imp_fac_cmp
"""
EXISTING_FACILITIES = "SELECT rn, code FROM imp_fac_cmp ORDER BY rn LIMIT 200"
INSERT_FACILITIES = """
    INSERT INTO facilities (code, type_code, name, status, geom, attributes)
    SELECT s.code, s.type_code, s.name, s.status, s.geom, s.attributes
      FROM imp_facilities s
     WHERE NOT EXISTS (SELECT 1 FROM imp_fac_cmp c WHERE c.code = s.code)
"""
UPDATE_FACILITIES = """
    UPDATE facilities f
       SET type_code = s.type_code, name = s.name, status = s.status, geom = s.geom,
           attributes = s.attributes
      FROM imp_fac_cmp c JOIN imp_facilities s ON s.rn = c.rn
     WHERE c.changed AND f.id = c.id
"""
FACILITY_TYPES = "SELECT code, name_zh, name_en, class_code, geometry_kind FROM facility_types"

# ---- people -------------------------------------------------------------------------------
ROLES = "SELECT code, name_zh, name_en FROM assignment_roles WHERE active"
CARE_NAMES = """
    SELECT code, name_zh, name_en, definition -> 'aliases' FROM care_categories WHERE active
"""
STAGE_PEOPLE = """
    CREATE TEMP TABLE imp_people (
        rn int, name text, phone text, mobile text, grid_code text, role text,
        is_primary boolean, attributes jsonb
    ) ON COMMIT DROP
"""
COPY_PEOPLE = """
    COPY imp_people (rn, name, phone, mobile, grid_code, role, is_primary, attributes)
    FROM STDIN WITH (FORMAT csv)
"""
# Resolve grid, default role (the level's leader role) and primary flag; note who is primary
# on that grid now and whether this exact assignment exists already.
RESOLVE_PEOPLE = f"""
    CREATE TEMP TABLE imp_people_r ON COMMIT DROP AS
    SELECT s.*, g.id AS grid_id,
           coalesce(s.role, {LEVEL_ROLE.format(level="g.level")}) AS role_r,
           coalesce(s.is_primary,
                    coalesce(s.role, {LEVEL_ROLE.format(level="g.level")})
                        = {LEVEL_ROLE.format(level="g.level")}) AS primary_r,
           cur.a_id AS cur_primary_id, cur.created_at AS cur_created,
           cp.name AS cur_primary_name, cp.work_phone AS cur_primary_phone,
           (SELECT p.id FROM people p
             WHERE p.name = s.name AND p.work_phone IS NOT DISTINCT FROM s.phone
             ORDER BY p.id LIMIT 1) AS person_id
      FROM imp_people s
      LEFT JOIN grids g ON g.code = s.grid_code AND g.valid_to IS NULL
      LEFT JOIN LATERAL (
          SELECT a.id AS a_id, a.person_id, a.created_at
            FROM grid_assignments a
           WHERE a.grid_id = g.id AND a.is_primary AND a.valid_to IS NULL
           LIMIT 1
      ) cur ON true
      LEFT JOIN people cp ON cp.id = cur.person_id
"""
UNKNOWN_GRIDS = """
    SELECT rn, grid_code FROM imp_people_r
     WHERE grid_code IS NOT NULL AND grid_id IS NULL ORDER BY rn LIMIT 200
"""
TWO_PRIMARIES = """
    SELECT rn, grid_code FROM imp_people_r r
     WHERE primary_r AND grid_id IS NOT NULL
       AND (SELECT count(*) FROM imp_people_r o
             WHERE o.grid_id = r.grid_id AND o.primary_r) > 1
     ORDER BY rn LIMIT 200
"""
# The assignment exists already (same person, grid, role, primary flag, still current).
MARK_PEOPLE = """
    ALTER TABLE imp_people_r ADD COLUMN same boolean;
    UPDATE imp_people_r r SET same = EXISTS (
        SELECT 1 FROM grid_assignments a
         WHERE a.person_id = r.person_id AND a.grid_id = r.grid_id AND a.role = r.role_r
           AND a.is_primary = r.primary_r AND a.valid_to IS NULL)
"""
PRIMARY_TAKEN = """
    SELECT rn, grid_code, cur_primary_name FROM imp_people_r
     WHERE primary_r AND NOT same AND cur_primary_id IS NOT NULL
     ORDER BY rn LIMIT 200
"""
PEOPLE_SUMMARY = """
    SELECT count(*) FILTER (WHERE person_id IS NULL) AS new_people,
           count(*) FILTER (WHERE same) AS unchanged,
           count(*) FILTER (WHERE NOT same) AS assignments,
           count(*) FILTER (WHERE primary_r AND NOT same AND cur_primary_id IS NOT NULL)
               AS replaced_primaries
      FROM imp_people_r
"""
INSERT_PEOPLE = """
    INSERT INTO people (name, work_phone, mobile_phone, attributes)
    SELECT DISTINCT ON (name, phone) name, phone, mobile, attributes
      FROM imp_people_r WHERE person_id IS NULL
     ORDER BY name, phone, rn
"""
UPDATE_PEOPLE = """
    UPDATE people p SET mobile_phone = coalesce(r.mobile, p.mobile_phone),
                        attributes = p.attributes || r.attributes
      FROM imp_people_r r
     WHERE r.person_id = p.id
       AND (r.mobile IS DISTINCT FROM p.mobile_phone AND r.mobile IS NOT NULL
            OR NOT p.attributes @> r.attributes)
"""
RELINK_PEOPLE = """
    UPDATE imp_people_r r SET person_id = (
        SELECT p.id FROM people p
         WHERE p.name = r.name AND p.work_phone IS NOT DISTINCT FROM r.phone
         ORDER BY p.id LIMIT 1)
     WHERE person_id IS NULL
"""
END_PRIMARIES = """
    UPDATE grid_assignments a SET valid_to = %(t)s FROM imp_people_r r
     WHERE r.primary_r AND NOT r.same AND a.id = r.cur_primary_id AND a.valid_from < %(t)s
"""
INSERT_ASSIGNMENTS = """
    INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)
    SELECT grid_id, person_id, role_r, primary_r, %(t)s FROM imp_people_r WHERE NOT same
"""

RECORD_RUN = """
    INSERT INTO import_runs (layer, source, options, counts, warnings, actor, valid_from,
                             started_at)
    VALUES (%(layer)s, %(source)s, %(options)s::jsonb, %(counts)s::jsonb, %(warnings)s,
            %(actor)s, %(t)s, now())
    RETURNING id
"""

# ---- people under care (a community's ledger, 七必访台账) -----------------------------------
STAGE_CARE = """
    CREATE TEMP TABLE imp_care (
        rn int, household text, address text, grid_code text, household_phone text,
        name text, gender text, birth_year int, phone text, categories text[], note text,
        attributes jsonb
    ) ON COMMIT DROP
"""
COPY_CARE = """
    COPY imp_care (rn, household, address, grid_code, household_phone, name, gender,
                   birth_year, phone, categories, note, attributes)
    FROM STDIN WITH (FORMAT csv)
"""
# The current grid of each row, the household and person on record (by household code and
# name), and whether any of it lies outside the caller's scope.
RESOLVE_CARE = """
    CREATE TEMP TABLE imp_care_r ON COMMIT DROP AS
    SELECT s.*, g.id AS grid_id, g.path AS grid_path,
           hh.id AS household_id, hg.path AS old_path,
           hh.address AS old_address, hh.phone AS old_phone, hh.grid_id AS old_grid_id,
           p.id AS person_id,
           (p.id IS NOT NULL AND (p.gender, p.birth_year, p.phone, p.categories, p.note)
                IS NOT DISTINCT FROM (s.gender, s.birth_year, s.phone, s.categories, s.note))
               AS person_same
      FROM imp_care s
      LEFT JOIN grids g ON g.code = s.grid_code AND g.valid_to IS NULL
      LEFT JOIN households hh ON hh.code = s.household
      LEFT JOIN grids hg ON hg.id = hh.grid_id
      LEFT JOIN care_people p ON p.household_id = hh.id AND p.name = s.name
"""
UNKNOWN_CARE_GRIDS = """
    SELECT rn, grid_code FROM imp_care_r
     WHERE grid_code IS NOT NULL AND grid_id IS NULL ORDER BY rn LIMIT 200
"""
CARE_OUT_OF_SCOPE = """
    SELECT rn, household, grid_code,
           old_path IS NOT NULL AND NOT old_path && CAST(%(scope)s AS bigint[]) AS before_outside
      FROM imp_care_r
     WHERE (grid_path IS NOT NULL AND NOT grid_path && CAST(%(scope)s AS bigint[]))
        OR (old_path IS NOT NULL AND NOT old_path && CAST(%(scope)s AS bigint[]))
     ORDER BY rn LIMIT 200
"""
CARE_EXISTING = """
    SELECT rn, household, name, person_id IS NOT NULL AS person,
           (old_address, old_phone, old_grid_id)
               IS DISTINCT FROM (address, household_phone, grid_id) AS household_differs
      FROM imp_care_r
     WHERE (person_id IS NOT NULL AND NOT person_same)
        OR (household_id IS NOT NULL
            AND (old_address, old_phone, old_grid_id)
                IS DISTINCT FROM (address, household_phone, grid_id))
     ORDER BY rn LIMIT 200
"""
CARE_SUMMARY = """
    SELECT count(DISTINCT household) FILTER (WHERE household_id IS NULL),
           count(DISTINCT household) FILTER (
               WHERE household_id IS NOT NULL
                 AND (old_address, old_phone, old_grid_id)
                     IS DISTINCT FROM (address, household_phone, grid_id)),
           count(*) FILTER (WHERE person_id IS NULL),
           count(*) FILTER (WHERE person_id IS NOT NULL AND NOT person_same),
           count(*) FILTER (WHERE person_id IS NOT NULL AND person_same)
      FROM imp_care_r
"""
# A household sits at a point inside its grid until someone places it better.
INSERT_HOUSEHOLDS = """
    INSERT INTO households (code, grid_id, address, phone, geom, attributes)
    SELECT DISTINCT ON (r.household) r.household, r.grid_id, r.address, r.household_phone,
           ST_PointOnSurface(g.geom), '{}'::jsonb
      FROM imp_care_r r JOIN grids g ON g.id = r.grid_id
     WHERE r.household_id IS NULL
     ORDER BY r.household, r.rn
"""
UPDATE_HOUSEHOLDS = """
    UPDATE households hh
       SET address = r.address, phone = r.household_phone, grid_id = r.grid_id,
           geom = CASE WHEN hh.grid_id = r.grid_id THEN hh.geom
                       ELSE (SELECT ST_PointOnSurface(geom) FROM grids WHERE id = r.grid_id) END,
           active = true
      FROM (SELECT DISTINCT ON (household) * FROM imp_care_r
             WHERE household_id IS NOT NULL ORDER BY household, rn) r
     WHERE hh.id = r.household_id
       AND (hh.address, hh.phone, hh.grid_id, hh.active)
           IS DISTINCT FROM (r.address, r.household_phone, r.grid_id, true)
"""
INSERT_CARE_PEOPLE = """
    INSERT INTO care_people (household_id, name, gender, birth_year, phone, categories, note,
                             attributes)
    SELECT hh.id, r.name, r.gender, r.birth_year, r.phone, r.categories, r.note, r.attributes
      FROM imp_care_r r JOIN households hh ON hh.code = r.household
     WHERE r.person_id IS NULL
"""
UPDATE_CARE_PEOPLE = """
    UPDATE care_people p
       SET gender = r.gender, birth_year = r.birth_year, phone = r.phone,
           categories = r.categories, note = r.note, active = true
      FROM imp_care_r r
     WHERE p.id = r.person_id AND NOT r.person_same
"""
