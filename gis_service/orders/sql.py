"""The SQL of service orders and the volunteer and partner registries (bound parameters)."""

from __future__ import annotations

from sqlalchemy import text

from gis_service.auth.visibility import private_sql
from gis_service.cases.machine import sql_list, sql_names
from gis_service.orders.workflow import DONE_STATUSES, ORDER_STATUSES

_STATUS_NAMES = sql_names(ORDER_STATUSES)
# An order whose service was given.
_DONE = f"o.status IN {sql_list(DONE_STATUSES)}"

# 点单: routed to the finest grid at this instant, like a hazard report (gis_finest_grid).
INSERT_ORDER = text(
    """
    WITH q AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt, now() AS at),
    r AS (SELECT g.id, g.path, gis_grid_chain(g.id) AS chain, q.pt, q.at
            FROM q JOIN grids g ON g.id = gis_finest_grid(q.pt, q.at))
    INSERT INTO service_orders (public_code, service_type, description, geom, address, grid_id,
                                grid_path, grid_chain, resident_name, resident_phone,
                                ordered_at, updated_at)
    SELECT 'FW' || to_char(r.at AT TIME ZONE :tz, 'YYYYMMDD') || '-'
               || lpad(nextval('service_order_code_seq')::text, 6, '0'),
           :service_type, :description, r.pt, :address, r.id, r.path, r.chain,
           :resident_name, :resident_phone, r.at, r.at
      FROM r
    RETURNING id, public_code, grid_id, status, version
    """
)

INSERT_EVENT = text(
    """
    INSERT INTO service_order_events (order_id, action, from_status, to_status, actor_name,
                                      note, data)
    VALUES (:order_id, :action, :from_status, :to_status, :actor_name, :note,
            CAST(:data AS jsonb))
    """
)

LOCK_ORDER = text("SELECT o.*, now() AS now FROM service_orders o WHERE o.id = :id FOR UPDATE")

VOLUNTEER = text("SELECT id, name, grid_path, active FROM volunteers WHERE id = :id")
PARTNER = text("SELECT id, name, grid_path, active FROM partner_units WHERE id = :id")


def update_order(columns: list[str]):
    """Compare-and-set UPDATE of an order (column names are ours)."""
    sets = "".join(f", {c} = :c_{c}" for c in columns)
    return text(
        "UPDATE service_orders SET status = :status, version = version + 1, updated_at = now()"
        f"{sets} WHERE id = :id AND version = :version RETURNING version"
    )


_PRIVATE = private_sql("o.grid_path")

# Orders of a scope as GeoJSON features, newest first; the resident only for staff in scope.
# 'returned' counts the features (0: a single order asked for is not there).
ORDER_FEATURES = text(
    f"""
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'numberMatched', (SELECT count(*) FROM service_orders o
                           WHERE (CAST(:scope AS bigint[]) IS NULL
                                  OR o.grid_path && CAST(:scope AS bigint[]))
                             AND (CAST(:status AS text) IS NULL OR o.status = :status)
                             AND (CAST(:grid AS bigint) IS NULL
                                  OR o.grid_path @> ARRAY[CAST(:grid AS bigint)])
                             AND (CAST(:id AS bigint) IS NULL OR o.id = CAST(:id AS bigint))),
        'features', coalesce(json_agg(f ORDER BY f_at DESC, f_id DESC), '[]'::json))::text
           AS body,
           count(*) AS returned
      FROM (
        SELECT o.ordered_at AS f_at, o.id AS f_id, json_build_object(
            'type', 'Feature', 'id', o.id,
            'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array(
                (gis_from_wgs84(ST_X(o.geom), ST_Y(o.geom), :crs))[1],
                (gis_from_wgs84(ST_X(o.geom), ST_Y(o.geom), :crs))[2])),
            'properties', json_build_object(
                'kind', 'service_order', 'public_code', o.public_code,
                'service_type', o.service_type, 'description', o.description,
                'status', o.status,
                'status_name', (SELECT s.n FROM {_STATUS_NAMES} AS s (c, n)
                                 WHERE s.c = o.status),
                'address', o.address, 'grid_id', o.grid_id,
                'grid_name', o.grid_chain -> -1 ->> 'name',
                -- the community dispatches within itself (volunteers and partners of it)
                'community', (SELECT json_build_object('id', (e ->> 'id')::bigint,
                                                       'name', e ->> 'name')
                                FROM jsonb_array_elements(o.grid_chain) e
                               WHERE e ->> 'level' = 'community' LIMIT 1),
                'volunteer', (SELECT json_build_object('id', v.id, 'name', v.name,
                                                       'party_member', v.party_member)
                                FROM volunteers v WHERE v.id = o.volunteer_id),
                'partner', (SELECT json_build_object('id', p.id, 'name', p.name)
                              FROM partner_units p WHERE p.id = o.partner_id),
                'ordered_at', o.ordered_at, 'dispatched_at', o.dispatched_at,
                'taken_at', o.taken_at, 'done_at', o.done_at, 'hours', o.hours,
                'rating', o.rating, 'version', o.version,
                'resident', CASE WHEN {_PRIVATE} THEN json_build_object(
                    'name', o.resident_name, 'phone', o.resident_phone) END,
                'history', (SELECT coalesce(json_agg(json_build_object(
                                'action', e.action, 'to_status', e.to_status,
                                'actor', e.actor_name, 'note', e.note, 'at', e.created_at)
                                ORDER BY e.created_at, e.id), '[]'::json)
                              FROM service_order_events e WHERE e.order_id = o.id))) AS f
          FROM service_orders o
         WHERE (CAST(:scope AS bigint[]) IS NULL OR o.grid_path && CAST(:scope AS bigint[]))
           AND (CAST(:status AS text) IS NULL OR o.status = :status)
           AND (CAST(:grid AS bigint) IS NULL OR o.grid_path @> ARRAY[CAST(:grid AS bigint)])
           AND (CAST(:id AS bigint) IS NULL OR o.id = CAST(:id AS bigint))
         ORDER BY o.ordered_at DESC, o.id DESC
         LIMIT :limit OFFSET :offset
      ) x
    """
)

GRID = text("SELECT id, path FROM grids WHERE id = :id AND valid_to IS NULL")

INSERT_VOLUNTEER = text(
    """
    INSERT INTO volunteers (name, phone, skills, party_member, grid_id, grid_path, note)
    VALUES (:name, :phone, :skills, :party_member, :grid_id, :grid_path, :note)
    RETURNING id
    """
)
INSERT_PARTNER = text(
    """
    INSERT INTO partner_units (name, offers, contact_name, contact_phone, grid_id, grid_path,
                               note)
    VALUES (:name, :offers, :contact_name, :contact_phone, :grid_id, :grid_path, :note)
    ON CONFLICT (name) DO NOTHING
    RETURNING id
    """
)


def patch_statement(table: str, columns: list[str]):
    """UPDATE of the given columns of a registry row (table and column names are ours)."""
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    return text(f"UPDATE {table} SET {sets}, updated_at = now() WHERE id = :id")


VOLUNTEERS = text(
    f"""
    SELECT v.id, v.name, CASE WHEN {private_sql("v.grid_path")} THEN v.phone END AS phone,
           v.skills, v.party_member, v.grid_id,
           (SELECT name FROM grids WHERE id = v.grid_id) AS grid_name, v.note, v.active,
           (SELECT count(*) FROM service_orders o
             WHERE o.volunteer_id = v.id AND {_DONE}) AS orders_done,
           (SELECT coalesce(sum(o.hours), 0) FROM service_orders o
             WHERE o.volunteer_id = v.id AND {_DONE}) AS hours
      FROM volunteers v
     WHERE (CAST(:scope AS bigint[]) IS NULL OR v.grid_path && CAST(:scope AS bigint[]))
       AND (CAST(:skill AS text) IS NULL OR CAST(:skill AS text) = ANY (v.skills))
       AND (CAST(:party AS boolean) IS NULL OR v.party_member = CAST(:party AS boolean))
       AND (CAST(:id AS bigint) IS NULL OR v.id = CAST(:id AS bigint))
       AND (CAST(:grid AS bigint) IS NULL OR v.grid_path @> ARRAY[CAST(:grid AS bigint)])
     ORDER BY v.party_member DESC, v.name, v.id
     LIMIT :limit OFFSET :offset
    """
)

PARTNERS = text(
    """
    SELECT p.id, p.name, p.offers, p.contact_name, p.contact_phone, p.grid_id,
           (SELECT name FROM grids WHERE id = p.grid_id) AS grid_name, p.note, p.active
      FROM partner_units p
     WHERE (CAST(:scope AS bigint[]) IS NULL OR p.grid_path && CAST(:scope AS bigint[]))
       AND (CAST(:offer AS text) IS NULL OR CAST(:offer AS text) = ANY (p.offers))
       AND (CAST(:id AS bigint) IS NULL OR p.id = CAST(:id AS bigint))
       AND (CAST(:grid AS bigint) IS NULL OR p.grid_path @> ARRAY[CAST(:grid AS bigint)])
     ORDER BY p.name, p.id
     LIMIT :limit OFFSET :offset
    """
)

# 志愿服务: orders done per community in a period, with hours, volunteers and party members.
VOLUNTEER_STATS = text(
    f"""
    SELECT (e ->> 'id')::bigint AS area_id, min(e ->> 'code') AS code, min(e ->> 'name') AS name,
           count(*) AS orders,
           count(*) FILTER (WHERE {_DONE}) AS done,
           coalesce(sum(o.hours) FILTER (WHERE {_DONE}), 0) AS hours,
           count(DISTINCT o.volunteer_id) FILTER (WHERE {_DONE})
               AS volunteers,
           count(DISTINCT o.volunteer_id) FILTER (
               WHERE {_DONE}
                 AND (SELECT party_member FROM volunteers WHERE id = o.volunteer_id))
               AS party_members,
           count(*) FILTER (WHERE o.rating IN ('satisfied', 'basically_satisfied')) AS satisfied,
           count(*) FILTER (WHERE o.rating IS NOT NULL) AS rated
      FROM service_orders o
      CROSS JOIN LATERAL jsonb_array_elements(o.grid_chain) AS e
     WHERE o.ordered_at >= CAST(:since AS timestamptz)
       AND o.ordered_at < CAST(:until AS timestamptz)
       AND e ->> 'level' = :level
       AND (CAST(:scope AS bigint[]) IS NULL OR o.grid_path && CAST(:scope AS bigint[]))
       AND (CAST(:grid AS bigint) IS NULL OR o.grid_path @> ARRAY[CAST(:grid AS bigint)])
     GROUP BY 1
     ORDER BY 2
    """
)
