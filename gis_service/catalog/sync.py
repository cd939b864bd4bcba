"""Sync the catalog into PostGIS: upsert every definition, retire the codes that left."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from gis_service.catalog.schemas import (
    AssignmentRoleDef,
    CareCategoryDef,
    Catalog,
    DepartmentDef,
    FacilityTypeDef,
    HazardCategoryDef,
)
from gis_service.catalog.sql import (
    DEACTIVATE_CARE_CATEGORIES,
    DEACTIVATE_DEPARTMENTS,
    DEACTIVATE_FACILITY_TYPES,
    DEACTIVATE_HAZARD_CATEGORIES,
    DEACTIVATE_ROLES,
    ROLE_ROWS,
    UPSERT_CARE_CATEGORY,
    UPSERT_DEPARTMENT,
    UPSERT_FACILITY_TYPE,
    UPSERT_HAZARD_CATEGORY,
    UPSERT_ROLE,
)
from gis_service.config import Settings
from gis_service.worktime.service import sync_calendar


def _department_row(d: DepartmentDef) -> dict[str, Any]:
    extra = d.model_dump(mode="json", exclude={"code", "name_zh", "name_en", "phone"})
    return {
        "code": d.code,
        "name_zh": d.name_zh,
        "name_en": d.name_en,
        "phone": d.phone,
        "attributes": {k: v for k, v in extra.items() if v is not None},
    }


def _facility_type_row(f: FacilityTypeDef) -> dict[str, Any]:
    definition = f.model_dump(mode="json")
    return {
        "code": f.code,
        "name_zh": f.name_zh,
        "name_en": f.name_en,
        "class_code": f.class_code,
        "geometry_kind": f.geometry,
        "icon": f.icon,
        "color": f.color,
        "attribute_schema": definition["attributes"],
        "definition": definition,
    }


def _hazard_category_row(c: HazardCategoryDef) -> dict[str, Any]:
    return {
        "code": c.code,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "report_class": c.report_class,
        "default_department_code": c.default_department,
        "default_severity": c.default_severity,
        "sla_hours": c.sla_hours,
        "duplicate_radius_m": c.duplicate_radius_m,
        "snap_radius_m": c.snap_radius_m,
        "facility_types": list(c.facility_types),
        "definition": c.model_dump(mode="json"),
        "standard_class": c.standard_class.model_dump(mode="json", exclude_none=True),
        "time_limits": c.time_limits.as_json(),
    }


def _role_row(r: AssignmentRoleDef) -> dict[str, Any]:
    return {
        "code": r.code,
        "name_zh": r.name_zh,
        "name_en": r.name_en,
        "rank": r.rank,
        "leader": r.leader,
        "levels": list(r.levels),
        "primary_for": list(r.primary_for),
    }


def _sync_roles(conn: Connection, roles: dict[str, AssignmentRoleDef]) -> dict[str, int]:
    """Write the roles that differ from the table, retire those the file no longer has."""
    current = {r.code: r for r in conn.execute(ROLE_ROWS)}
    wanted = [_role_row(r) for r in roles.values()]
    changed = [
        row
        for row in wanted
        if row["code"] not in current
        or not current[row["code"]].active
        or {k: _plain(getattr(current[row["code"]], k)) for k in row} != row
    ]
    if changed:
        conn.execute(UPSERT_ROLE, changed)
    gone = [c for c, r in current.items() if r.active and c not in roles]
    if gone:
        conn.execute(DEACTIVATE_ROLES, {"codes": gone})
    return {"assignment_roles": len(wanted), "assignment_roles_deactivated": len(gone)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def _care_category_row(c: CareCategoryDef, rank: int) -> dict[str, Any]:
    return {
        "code": c.code,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "visit_every_days": c.visit_every_days,
        "rank": rank,
        "definition": c.model_dump(mode="json"),
    }


def sync_catalog(conn: Connection, catalog: Catalog, tz: str | None = None) -> dict[str, int]:
    """Upsert the catalog into its tables in the caller's transaction; retire missing codes;
    replace the working calendar (in the time zone ``tz``, default the settings' default)."""
    counts: dict[str, int] = {}
    # Departments first: hazard_categories.default_department_code references them.
    plan = (
        (
            "departments",
            UPSERT_DEPARTMENT,
            DEACTIVATE_DEPARTMENTS,
            [_department_row(d) for d in catalog.departments.values()],
        ),
        (
            "facility_types",
            UPSERT_FACILITY_TYPE,
            DEACTIVATE_FACILITY_TYPES,
            [_facility_type_row(f) for f in catalog.facility_types.values()],
        ),
        (
            "hazard_categories",
            UPSERT_HAZARD_CATEGORY,
            DEACTIVATE_HAZARD_CATEGORIES,
            [_hazard_category_row(c) for c in catalog.hazard_categories.values()],
        ),
        (
            "care_categories",
            UPSERT_CARE_CATEGORY,
            DEACTIVATE_CARE_CATEGORIES,
            [_care_category_row(c, i) for i, c in enumerate(catalog.care.categories, 1)],
        ),
    )
    for table, upsert, deactivate, rows in plan:
        if rows:  # executemany with no rows would run the statement once without parameters
            conn.execute(upsert, rows)
        counts[table] = len(rows)
        retired = conn.execute(deactivate, {"codes": [r["code"] for r in rows]})
        counts[f"{table}_deactivated"] = retired.rowcount
    zone = tz or Settings.model_fields["local_timezone"].default
    counts.update(sync_calendar(conn, catalog.calendar, zone))
    counts.update(_sync_roles(conn, catalog.assignment_roles))
    return counts
