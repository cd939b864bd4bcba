"""The SQL of the OGC API – Features endpoints. Every value is a bound parameter.

A collection's rows come from a *source*: ``SELECT id, geom, c0, c1, … FROM …`` where each
``cN`` is a property expression from ``collections`` (fixed text written in this package).
The items statement filters the source, counts the matches, takes one page ordered by id and
builds the whole FeatureCollection in PostgreSQL (json_build_object / json_agg /
ST_AsGeoJSON), so no row becomes a Python object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import TextClause, text

from gis_service.hazards.states import open_sql

if TYPE_CHECKING:
    from gis_service.ogc.collections import CollectionDef

# ---- sources ------------------------------------------------------------------------------------
GRID_FROM = """
      FROM grids g
      JOIN grid_levels l ON l.code = g.level
     WHERE g.valid_to IS NULL AND g.level = :src_level
"""

GRID_PARENT_CODE = "(SELECT pg.code FROM grids pg WHERE pg.id = g.parent_id)"

# The grid's responsible person now: the primary assignee, else the highest-ranked leader role.
_GRID_LEADER = """(SELECT p.{column}
       FROM grid_assignments a
       JOIN people p ON p.id = a.person_id
       JOIN assignment_roles r ON r.code = a.role
      WHERE a.grid_id = g.id AND r.leader
        AND gis_valid_at(a.valid_from, a.valid_to, now())
      ORDER BY a.is_primary DESC, r.rank, a.id
      LIMIT 1)"""
GRID_LEADER_NAME = _GRID_LEADER.format(column="name")
GRID_LEADER_PHONE = _GRID_LEADER.format(column="work_phone")  # public; mobile_phone never

FACILITY_FROM = """
      FROM facilities f
     WHERE f.type_code = :src_type
"""

# Open = not closed and not rejected (the partial index hazards_open_due_idx uses the same rule).
HAZARD_FROM = f"""
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
     WHERE {open_sql("h")}
"""
HAZARD_OVERDUE = "coalesce(h.due_at < now(), false)"

# jsonb attributes, typed; {path} is a bound text[] parameter, {col} a fixed column.
ATTR_STRING = "({col} #>> CAST({path} AS text[]))"
ATTR_NUMBER = (
    "(CASE WHEN jsonb_typeof({col} #> CAST({path} AS text[])) = 'number'"
    " THEN ({col} #>> CAST({path} AS text[]))::numeric END)"
)
ATTR_BOOLEAN = (
    "(CASE WHEN jsonb_typeof({col} #> CAST({path} AS text[])) = 'boolean'"
    " THEN ({col} #>> CAST({path} AS text[]))::boolean END)"
)

# Keys (one level of nesting) of current grids' attributes by level, with their JSON types.
GRID_ATTRIBUTE_KEYS = text(
    """
    WITH kv AS (
        SELECT g.level, ARRAY[k.key] AS path, k.value
          FROM grids g, jsonb_each(g.attributes) k
         WHERE g.valid_to IS NULL
        UNION ALL
        SELECT g.level, ARRAY[k.key, k2.key], k2.value
          FROM grids g, jsonb_each(g.attributes) k,
               jsonb_each(CASE WHEN jsonb_typeof(k.value) = 'object'
                               THEN k.value ELSE '{}'::jsonb END) k2
         WHERE g.valid_to IS NULL
    )
    SELECT level, path,
           array_agg(DISTINCT jsonb_typeof(value)) AS types,
           coalesce(bool_and((value #>> '{}')::numeric = trunc((value #>> '{}')::numeric))
                    FILTER (WHERE jsonb_typeof(value) = 'number'), true) AS integral
      FROM kv
     GROUP BY level, path
     ORDER BY level, path
    """
)

# Conditions on the source alias ``s`` (OGC 17-069r4 /req/core/fc-bbox-response and
# /req/core/fc-time-response: a feature matches when its geometry or time span intersects).
BBOX_FILTER = "ST_Intersects(s.geom, ST_MakeEnvelope(:bb_minx, :bb_miny, :bb_maxx, :bb_maxy, 4326))"
# A bbox across the antimeridian (minx > maxx, OGC 17-069r4 §7.15.3) is two envelopes.
BBOX_ANTIMERIDIAN_FILTER = (
    "(ST_Intersects(s.geom, ST_MakeEnvelope(:bb_minx, :bb_miny, 180, :bb_maxy, 4326))"
    " OR ST_Intersects(s.geom, ST_MakeEnvelope(-180, :bb_miny, :bb_west_maxx, :bb_maxy, 4326)))"
)
STARTS_BY_FILTER = "s.t0 <= :dt_end"
ENDS_FROM_FILTER = "coalesce(s.t1, 'infinity'::timestamptz) >= :dt_start"
EQUALS_FILTER = "s.c{i} = :eq_{i}"  # a queryable given as ?name=value, {i} its column


def source(coll: CollectionDef) -> str:
    """``SELECT id, geom, c0…cN[, t0, t1]`` over the collection's rows."""
    cols = [f"{coll.id_sql} AS id", f"{coll.geom_sql} AS geom"]
    cols += [f"{p.sql} AS c{i}" for i, p in enumerate(coll.props)]
    if coll.temporal is not None:
        cols.append(f"{coll.temporal.start} AS t0")
        cols.append(f"{coll.temporal.end or coll.temporal.start} AS t1")
    return "SELECT " + ",\n           ".join(cols) + coll.from_sql


def _properties(alias: str, columns: Sequence[int]) -> str:
    """json_build_object of the chosen properties; their names are bound (:pn_N)."""
    # Typed: json_build_object takes "any", from which a prepared statement infers nothing.
    pairs = [f"CAST(:pn_{i} AS text), {alias}.c{i}" for i in columns]
    if not pairs:
        return "'{}'::json"
    # json_build_object takes at most 100 arguments: build large objects in pieces.
    chunks = [pairs[k : k + 40] for k in range(0, len(pairs), 40)]
    if len(chunks) == 1:
        return f"json_build_object({', '.join(chunks[0])})"
    return "(" + " || ".join(f"jsonb_build_object({', '.join(c)})" for c in chunks) + ")::json"


def _feature(alias: str, columns: Sequence[int], links: bool = False) -> str:
    """One GeoJSON Feature (RFC 7946: lon/lat, CRS84), 7 decimals (about 1 cm)."""
    extra = ", 'links', CAST(:_links AS json)" if links else ""
    return (
        f"json_build_object('type', 'Feature', 'id', {alias}.id, "
        f"'geometry', ST_AsGeoJSON({alias}.geom, 7)::json, "
        f"'properties', {_properties(alias, columns)}{extra})"
    )


def _feature_text(alias: str, columns: Sequence[int]) -> str:
    """One GeoJSON Feature as text: the geometry text of ST_AsGeoJSON goes in as it is (a
    json value would parse it again), the properties by json_build_object."""
    return (
        '\'{"type": "Feature", "id": \' || ' + alias + ".id || ', \"geometry\": ' || "
        f"ST_AsGeoJSON({alias}.geom, 7) || ', \"properties\": ' || "
        f"{_properties(alias, columns)}::text || '}}'"
    )


def items(
    coll: CollectionDef,
    where: Sequence[str],
    columns: Sequence[int],
    keyset: bool = False,
    stamped: bool = False,
) -> TextClause:
    """The FeatureCollection for one page, with numberMatched, numberReturned and links.

    Bound: the source's parameters, the filter's, :_limit, :_offset (with ``keyset``, the id
    the page starts after), :_links (JSON array of the fixed links), :_type, :_next and
    :_next_title (the next link, kept only while more features follow; the page's last id is
    appended to it; OGC 17-069r4 /req/core/fc-next-1).

    With ``stamped`` (a whole grid collection, no filter) the statement also returns the
    count and the stamp of the collection's rows: the version and row version of its
    tile_layer_versions row (:_stamp_layer), which every insert, update or delete of those
    grids moves in its own transaction, and the table's file (moved by TRUNCATE). Given the
    stamp and count of an earlier page (:_known_stamp, :_known_count), an unchanged
    collection is not counted again: reading a layer to the end counts it once, not once
    per page.
    """
    cond = " AND ".join(where) if where else "TRUE"
    # One more id than the page holds tells whether a next page exists without counting.
    window = (
        "WHERE id > :_offset ORDER BY id LIMIT :_limit + 1"
        if keyset
        else "ORDER BY id LIMIT :_limit + 1 OFFSET :_offset"
    )
    picked = "".join(f", s.c{i}" for i in columns)
    if stamped:
        matched = """
        stamp AS MATERIALIZED (
            -- TRUNCATE fires no row trigger but gives the table a new file: in the stamp too
            SELECT coalesce((SELECT v.version::text || ':' || v.xmin::text
                               FROM tile_layer_versions v
                              WHERE v.layer = CAST(:_stamp_layer AS text)), 'none')
                   || ':' || pg_relation_filenode('grids') AS stamp
        ),
        matched AS MATERIALIZED (
            -- the count is a lazily run sub-plan: skipped when the stamp is the known one
            SELECT CASE WHEN st.stamp = CAST(:_known_stamp AS text)
                        THEN CAST(:_known_count AS bigint)
                        ELSE (SELECT count(*) FROM hits) END AS n, st.stamp
              FROM stamp st
        )"""
        extra = ", m.n AS matched, m.stamp"
    else:
        matched = """
        matched AS MATERIALIZED (SELECT count(*) AS n FROM hits)"""
        extra = ""
    # The page's ids are picked on a narrow projection first: PostgreSQL drops the unused
    # property columns of ``hits``, so the rows OFFSET skips never compute their per-row
    # subqueries (leader name and phone, parent code). Only the page's rows are then read
    # again, by id, with their properties: the last page costs about what the first does.
    # The envelope is built as JSON and the features are spliced into it as text.
    return text(
        f"""
        WITH hits AS NOT MATERIALIZED (
            SELECT * FROM ({source(coll)}) s
             WHERE {cond}
        ),
        span AS MATERIALIZED (SELECT id FROM hits {window}),
        ids AS MATERIALIZED (SELECT id FROM span ORDER BY id LIMIT :_limit),
        page AS MATERIALIZED (
            SELECT s.id, s.geom{picked}
              FROM ({source(coll)}) s
             WHERE s.id = ANY (ARRAY(SELECT id FROM ids))
        ),{matched}
        SELECT left(json_build_object(
            'type', 'FeatureCollection',
            'timeStamp', date_trunc('second', now()),
            'numberMatched', m.n,
            'numberReturned', r.n,
            'links', CAST(:_links AS jsonb) || CASE WHEN (SELECT count(*) FROM span) > r.n
                THEN jsonb_build_array(jsonb_build_object(
                    'rel', 'next', 'type', CAST(:_type AS text),
                    'title', CAST(:_next_title AS text),
                    'href', CAST(:_next AS text) || (SELECT max(id) FROM ids)))
                ELSE '[]'::jsonb END
        )::text, -1) || ', "features" : [' || coalesce(
            (SELECT string_agg({_feature_text("p", columns)}, ', ' ORDER BY p.id) FROM page p),
            '') || ']}}' AS body{extra}
          FROM matched m, (SELECT count(*) AS n FROM page) r
        """
    )


def item(coll: CollectionDef, columns: Sequence[int]) -> TextClause:
    """One Feature by id (:_fid) with its links (:_links), or no row."""
    return text(
        f"""
        SELECT {_feature("s", columns, links=True)}::text AS body
          FROM ({source(coll)}) s
         WHERE s.id = :_fid
        """
    )


def extent(coll: CollectionDef) -> TextClause:
    """The collection's bounding box (ST_Extent) and time span; NULLs when it is empty."""
    t0 = t1 = "NULL::timestamptz"
    if coll.temporal is not None:
        t0 = "min(s.t0)"
        t1 = "CASE WHEN bool_or(s.t1 IS NULL) THEN NULL ELSE max(s.t1) END"
    return text(
        f"""
        SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax,
               t0, t1, n
          FROM (SELECT ST_Extent(s.geom) AS e, {t0} AS t0, {t1} AS t1, count(*) AS n
                  FROM ({source(coll)}) s) x
        """
    )
