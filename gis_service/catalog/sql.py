"""The SQL of syncing layers/ into its tables, all with bound parameters."""

from __future__ import annotations

from sqlalchemy import Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

# Rows are never deleted: facilities and hazards keep referencing retired codes, so a code that
# left the files is only marked inactive, and comes back to life if it reappears.

UPSERT_DEPARTMENT = text(
    """
    INSERT INTO departments (code, name_zh, name_en, phone, attributes, active, synced_at)
    VALUES (:code, :name_zh, :name_en, :phone, :attributes, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        phone = EXCLUDED.phone,
        attributes = EXCLUDED.attributes,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(bindparam("attributes", type_=JSONB))

UPSERT_FACILITY_TYPE = text(
    """
    INSERT INTO facility_types (code, name_zh, name_en, class_code, geometry_kind, icon, color,
                                attribute_schema, definition, active, synced_at)
    VALUES (:code, :name_zh, :name_en, :class_code, :geometry_kind, :icon, :color,
            :attribute_schema, :definition, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        class_code = EXCLUDED.class_code,
        geometry_kind = EXCLUDED.geometry_kind,
        icon = EXCLUDED.icon,
        color = EXCLUDED.color,
        attribute_schema = EXCLUDED.attribute_schema,
        definition = EXCLUDED.definition,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(
    bindparam("attribute_schema", type_=JSONB),
    bindparam("definition", type_=JSONB),
)

UPSERT_HAZARD_CATEGORY = text(
    """
    INSERT INTO hazard_categories (code, name_zh, name_en, report_class, default_department_code,
                                   default_severity, sla_hours, duplicate_radius_m, snap_radius_m,
                                   facility_types, definition, standard_class, time_limits,
                                   active, synced_at)
    VALUES (:code, :name_zh, :name_en, :report_class, :default_department_code,
            :default_severity, :sla_hours, :duplicate_radius_m, :snap_radius_m,
            :facility_types, :definition, :standard_class, :time_limits, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        report_class = EXCLUDED.report_class,
        default_department_code = EXCLUDED.default_department_code,
        default_severity = EXCLUDED.default_severity,
        sla_hours = EXCLUDED.sla_hours,
        duplicate_radius_m = EXCLUDED.duplicate_radius_m,
        snap_radius_m = EXCLUDED.snap_radius_m,
        facility_types = EXCLUDED.facility_types,
        definition = EXCLUDED.definition,
        standard_class = EXCLUDED.standard_class,
        time_limits = EXCLUDED.time_limits,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(
    bindparam("facility_types", type_=ARRAY(Text)),
    bindparam("definition", type_=JSONB),
    bindparam("standard_class", type_=JSONB),
    bindparam("time_limits", type_=JSONB),
)

DEACTIVATE_DEPARTMENTS = text(
    """
    UPDATE departments SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))

DEACTIVATE_FACILITY_TYPES = text(
    """
    UPDATE facility_types SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))

DEACTIVATE_HAZARD_CATEGORIES = text(
    """
    UPDATE hazard_categories SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))

# Roles: assignment_roles rows are read first and only what differs is written, because a
# statement on that table, even one that changes nothing, rebuilds every grid's locate card.
ROLE_ROWS = text(
    """
    SELECT code, name_zh, name_en, rank, leader, levels, primary_for, active
      FROM assignment_roles
    """
)

UPSERT_ROLE = text(
    """
    INSERT INTO assignment_roles (code, name_zh, name_en, rank, leader, levels, primary_for,
                                  active, synced_at)
    VALUES (:code, :name_zh, :name_en, :rank, :leader, :levels, :primary_for, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        rank = EXCLUDED.rank,
        leader = EXCLUDED.leader,
        levels = EXCLUDED.levels,
        primary_for = EXCLUDED.primary_for,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(bindparam("levels", type_=ARRAY(Text)), bindparam("primary_for", type_=ARRAY(Text)))

DEACTIVATE_ROLES = text(
    """
    UPDATE assignment_roles SET active = false, synced_at = now()
     WHERE code = ANY (CAST(:codes AS text[]))
    """
)

UPSERT_CARE_CATEGORY = text(
    """
    INSERT INTO care_categories (code, name_zh, name_en, visit_every_days, rank, definition,
                                 active, synced_at)
    VALUES (:code, :name_zh, :name_en, :visit_every_days, :rank, :definition, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        visit_every_days = EXCLUDED.visit_every_days,
        rank = EXCLUDED.rank,
        definition = EXCLUDED.definition,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(bindparam("definition", type_=JSONB))

DEACTIVATE_CARE_CATEGORIES = text(
    """
    UPDATE care_categories SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))
