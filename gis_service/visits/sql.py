"""The SQL of visits. Every value is a bound parameter."""

from __future__ import annotations

from sqlalchemy import text

# Photos of a visit as JSON (URLs relative to the API root).
_PHOTOS = """
    (SELECT coalesce(json_agg(json_build_object(
                'id', ph.id,
                'url', '/api/v1/visits/' || ph.visit_id || '/photos/' || ph.id,
                'thumbnail_url',
                    '/api/v1/visits/' || ph.visit_id || '/photos/' || ph.id || '?variant=thumb',
                'content_type', ph.content_type, 'width', ph.width, 'height', ph.height)
            ORDER BY ph.position), '[]'::json)
       FROM visit_photos ph WHERE ph.visit_id = v.id)
"""

INSERT_VISIT = text(
    """
    INSERT INTO visits (person_id, household_id, grid_id, grid_path, visitor_user_id,
                        visitor_person_id, visitor_name, principal, visited_at, geom,
                        accuracy_m, findings, needs, hazard_id, service_need, patrol_ref)
    VALUES (:person_id, :household_id, :grid_id, CAST(:grid_path AS bigint[]), :user_id,
            :visitor_person_id, :visitor_name, :principal, :visited_at,
            CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                 ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
            :accuracy, :findings, CAST(:needs AS text[]), :hazard_id,
            CAST(:service_need AS jsonb), CAST(:patrol_ref AS uuid))
    RETURNING id, received_at
    """
)

# A late visit (sent from an offline queue) must not move the last visit backwards.
TOUCH_PERSON = text(
    """
    UPDATE care_people
       SET last_visit_at = greatest(coalesce(last_visit_at, :visited_at), :visited_at)
     WHERE id = :id
    """
)

SET_SERVICE_NEED = text("UPDATE visits SET service_need = CAST(:need AS jsonb) WHERE id = :id")

INSERT_PHOTO = text(
    """
    INSERT INTO visit_photos (id, visit_id, position, content_type, bytes, width, height,
                              sha256, original_name, had_exif, had_gps, uploaded_by)
    VALUES (:id, :visit_id, :position, :content_type, :bytes, :width, :height, :sha256,
            :original_name, :had_exif, :had_gps, :uploaded_by)
    """
)

_COLUMNS = f"""
    v.id, v.person_id, p.name AS person_name, p.categories, v.household_id,
    h.address, v.grid_id, g.name AS grid_name, v.grid_path, v.visitor_name,
    v.visitor_person_id, v.principal, v.visited_at, v.received_at,
    (gis_from_wgs84(ST_X(v.geom), ST_Y(v.geom), :crs))[1] AS lon,
    (gis_from_wgs84(ST_X(v.geom), ST_Y(v.geom), :crs))[2] AS lat,
    v.accuracy_m, v.findings, v.needs, v.hazard_id,
    (SELECT public_code FROM hazards WHERE id = v.hazard_id) AS hazard_code,
    v.service_need, v.patrol_ref, {_PHOTOS} AS photos
"""

VISIT = text(
    f"""
    SELECT {_COLUMNS}
      FROM visits v
      JOIN care_people p ON p.id = v.person_id
      JOIN households h ON h.id = v.household_id
      LEFT JOIN grids g ON g.id = v.grid_id
     WHERE v.id = :id
    """
)

VISITS = text(
    f"""
    SELECT {_COLUMNS}, count(*) OVER () AS matched
      FROM visits v
      JOIN care_people p ON p.id = v.person_id
      JOIN households h ON h.id = v.household_id
      LEFT JOIN grids g ON g.id = v.grid_id
     WHERE (CAST(:scope AS bigint[]) IS NULL OR v.grid_path && CAST(:scope AS bigint[]))
       AND (CAST(:grid AS bigint) IS NULL OR v.grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND (CAST(:person AS bigint) IS NULL OR v.person_id = CAST(:person AS bigint))
       AND (CAST(:visitor AS bigint) IS NULL OR v.visitor_user_id = CAST(:visitor AS bigint))
       AND (CAST(:since AS timestamptz) IS NULL OR v.visited_at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR v.visited_at < CAST(:until AS timestamptz))
     ORDER BY v.visited_at DESC, v.id DESC
     LIMIT :limit OFFSET :offset
    """
)

VISITS_OF_PERSON = text(
    f"""
    SELECT v.id, v.visited_at, v.visitor_name, v.findings, v.needs, v.hazard_id,
           {_PHOTOS} AS photos
      FROM visits v
     WHERE v.person_id = :person
     ORDER BY v.visited_at DESC, v.id DESC
     LIMIT :limit
    """
)

PHOTO = text(
    """
    SELECT ph.id, ph.content_type, v.grid_path
      FROM visit_photos ph JOIN visits v ON v.id = ph.visit_id
     WHERE ph.visit_id = :visit AND ph.id = CAST(:photo AS uuid)
    """
)
