"""Each layer's step of an import, on the raw cursor inside the import's transaction: stage
the prepared rows, check them in SQL (set-based), and write grids (with their versions and
leaders), facilities or people."""

from __future__ import annotations

import time
from datetime import datetime

from psycopg2.extensions import cursor as Cursor

from gis_service.interchange import sql
from gis_service.interchange import validate as v
from gis_service.interchange.mapping import FieldMapping
from gis_service.interchange.report import Report
from gis_service.interchange.staging import (
    ImportOptions,
    Progress,
    columns,
    copy_rows,
    scope_errors,
)

OUTSIDE_FIX = "import only grids, facilities and people of your own area, or ask an admin"


# ---- grids --------------------------------------------------------------------------------
def geometry_checks(
    cur: Cursor,
    report: Report,
    fix: bool,
    invalid_sql: str,
    fix_sql: str,
    what: str,
) -> None:
    """ST_IsValid over the staged rows; ST_MakeValid only with --fix."""
    cur.execute(invalid_sql)
    bad = cur.fetchall()
    if not bad:
        return
    reasons = {rn: (code, reason) for rn, code, reason in bad}
    if not fix:
        for rn, code, reason in bad:
            report.error(
                "invalid_geometry",
                f"the {what} is not valid: {reason}",
                "repair it in QGIS (Vector › Geometry Tools › Fix Geometries) or import "
                "again with --fix (repairs with ST_MakeValid)",
                row=rn,
                field="geometry",
                code=code,
            )
        return
    cur.execute(fix_sql, {"rns": list(reasons)})
    for rn, code, still_bad in cur.fetchall():
        if still_bad:
            report.error(
                "invalid_geometry",
                f"the {what} could not be repaired ({reasons[rn][1]}): nothing usable is left",
                "redraw it",
                row=rn,
                field="geometry",
                code=code,
            )
        else:
            report.warn(
                "repaired_geometry",
                f"the {what} was repaired with ST_MakeValid (it had: {reasons[rn][1]})",
                "check the repaired shape on the map",
                row=rn,
                field="geometry",
                code=code,
            )


def load_grids(
    cur: Cursor,
    source,
    mapping: FieldMapping,
    opts: ImportOptions,
    report: Report,
    t_from: datetime,
    progress: Progress,
) -> None:
    """Stage, check and write grids (new ones, redrawn versions, retirements, leaders)."""
    t = time.perf_counter()
    progress("validate", 0, 1)
    rows = v.prepare_grids(source, mapping, report)
    report.timings["validate"] = time.perf_counter() - t
    progress("validate", 1, 1)
    t = time.perf_counter()
    cur.execute(sql.STAGE_GRIDS)
    copy_rows(
        cur,
        sql.COPY_GRIDS,
        columns(
            rows,
            [
                "rn",
                "code",
                "name",
                "level",
                "parent_code",
                "leader_name",
                "leader_phone",
                "attributes",
                "geom",
            ],
        ),
        progress,
    )
    cur.execute("ANALYZE imp_grids")
    report.timings["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    progress("check", 0, 1)
    geometry_checks(cur, report, opts.fix, sql.INVALID_GRIDS, sql.FIX_GRIDS, "polygon")
    cur.execute(sql.PARENT_PROBLEMS)
    for rn, code, parent, level, parent_level, found in cur.fetchall():
        if not found:
            report.error(
                "unknown_parent",
                f"parent '{parent}' is neither in this file nor a current grid in the database",
                "import the parent grids first, put them in the same file, or correct the code",
                row=rn,
                field=mapping.columns.get("parent") or "parent",
                code=code,
                value=parent,
            )
        else:
            report.error(
                "bad_parent",
                f"a {level} cannot sit under a {parent_level} ('{parent}')",
                "the parent must be a coarser level: street › community › grid › micro_grid "
                "(special grids sit under any coarser grid)",
                row=rn,
                field=mapping.columns.get("parent") or "parent",
                code=code,
                value=parent,
            )
    cur.execute(sql.NO_PARENT)
    for rn, code, level in cur.fetchall():
        report.warn(
            "no_parent",
            f"this {level} has no parent grid, so it becomes a top-level grid",
            "give its parent code if it belongs under a street or community",
            row=rn,
            code=code,
        )
    for rn, code, parent, before_outside in scope_errors(cur, opts, sql.GRIDS_OUT_OF_SCOPE):
        report.error(
            "outside_scope",
            f"grid {code} lies outside your area"
            if before_outside
            else f"grid {code} would lie outside your area (parent '{parent or '-'}')",
            OUTSIDE_FIX,
            row=rn,
            code=code,
        )
    for rn, code, name in scope_errors(cur, opts, sql.LEADERS_OUT_OF_SCOPE):
        report.error(
            "outside_scope",
            f"leader {name} already works on a grid outside your area",
            OUTSIDE_FIX,
            row=rn,
            code=code,
            field=mapping.columns.get("leader_name") or "leader_name",
        )
    cur.execute(sql.COMPARE_GRIDS)
    cur.execute(sql.MARK_CHANGED)
    cur.execute(sql.COMPARE_SUMMARY)
    existing, changed, *fields = cur.fetchone()
    if existing and not opts.update:
        cur.execute(sql.EXISTING_ROWS)
        for rn, code, old_from in cur.fetchall():
            report.error(
                "code_exists",
                f"grid {code} already exists (current version since {old_from:%Y-%m-%d})",
                "import with --update to replace what differs (a redrawn boundary ends the "
                "old version and keeps it as history), or change the code",
                row=rn,
                code=code,
            )
    if changed and opts.update:
        cur.execute(sql.TOO_EARLY, {"t": t_from})
        for rn, code, old_from in cur.fetchall():
            report.error(
                "too_early",
                f"the new version would start {t_from:%Y-%m-%d %H:%M}, not after the current "
                f"one ({old_from:%Y-%m-%d %H:%M})",
                "give --valid-from a later date",
                row=rn,
                code=code,
            )
    retired = 0
    if opts.retire_missing:
        cur.execute(sql.RETIRE_CANDIDATES)
        retired = cur.rowcount
        for (code,) in scope_errors(cur, opts, sql.RETIRE_OUT_OF_SCOPE):
            report.error(
                "outside_scope",
                f"grid {code} is missing from the file and would be retired, but it lies "
                "outside your area",
                OUTSIDE_FIX,
                code=code,
            )
        cur.execute(sql.RETIRE_BLOCKED)
        for code, child in cur.fetchall():
            report.error(
                "retire_blocked",
                f"grid {code} is missing from the file and would be retired, but its child "
                f"{child} is current and not in the file",
                "put the children in the file with their new parents, or retire them too",
                code=code,
            )
    report.timings["check"] = time.perf_counter() - t
    progress("check", 1, 1)
    report.counts.update(
        {
            "new": report.rows - existing,
            "redrawn": changed,
            "unchanged": existing - changed,
            "retired": retired,
        }
    )
    for key, n in zip(("geometry", "name", "parent", "level", "attributes"), fields, strict=True):
        if n:
            report.counts[f"changed_{key}"] = n
    if not report.ok:
        return
    t = time.perf_counter()
    progress("write", 0, 1)
    if retired:
        cur.execute(sql.RETIRE, {"t": t_from})
        cur.execute(sql.RETIRE_ASSIGNMENTS, {"t": t_from})
    if changed:
        cur.execute(sql.END_CHANGED, {"t": t_from})
    cur.execute(sql.GRID_SEQUENCE)
    seq = cur.fetchone()[0]
    cur.execute(sql.STAGE_PARENTS)
    cur.execute("ANALYZE imp_parents")
    cur.execute(sql.BULK_ON)
    cur.execute(sql.INSERT_GRIDS, {"t": t_from, "seq": seq})
    report.counts["parts"] = cur.rowcount
    cur.execute(sql.BULK_OFF)
    if changed:
        cur.execute(sql.REPOINT_CHILDREN)
        cur.execute(sql.CARRY_ASSIGNMENTS, {"t": t_from})
    if rows["leader_name"].notna().any():
        cur.execute(sql.STAGE_LEADERS, {"t": t_from})
        cur.execute("SELECT count(*) FILTER (WHERE changed) FROM imp_leaders")
        leaders = cur.fetchone()[0]
        if leaders:
            cur.execute(sql.INSERT_LEADER_PEOPLE)
            report.counts["new_people"] = cur.rowcount
            cur.execute(sql.DROP_REPLACED_LEADERS)
            cur.execute(sql.END_REPLACED_LEADERS, {"t": t_from})
            cur.execute(sql.INSERT_LEADERS, {"t": t_from})
        report.counts["leaders_set"] = leaders
    report.timings["write"] = time.perf_counter() - t
    progress("write", 1, 1)


# ---- facilities ---------------------------------------------------------------------------
def load_facilities(
    cur: Cursor,
    source,
    mapping: FieldMapping,
    opts: ImportOptions,
    report: Report,
    t_from: datetime,
    progress: Progress,
) -> None:
    """Stage, check and write facilities (insert new codes; with --update change what differs)."""
    cur.execute(sql.FACILITY_TYPES)
    types = {
        code: {"name_zh": zh, "name_en": en, "class_code": cc, "kind": kind}
        for code, zh, en, cc, kind in cur.fetchall()
    }
    t = time.perf_counter()
    rows = v.prepare_facilities(source, mapping, report, types)
    report.timings["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    cur.execute(sql.STAGE_FACILITIES)
    copy_rows(
        cur,
        sql.COPY_FACILITIES,
        columns(rows, ["rn", "code", "type_code", "name", "status", "attributes", "geom"]),
        progress,
    )
    cur.execute("ANALYZE imp_facilities")
    report.timings["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    geometry_checks(cur, report, opts.fix, sql.INVALID_FACILITIES, sql.FIX_FACILITIES, "geometry")
    for rn, code in scope_errors(cur, opts, sql.FACILITIES_OUT_OF_SCOPE):
        report.error(
            "outside_scope",
            f"facility {code} lies outside your area",
            OUTSIDE_FIX,
            row=rn,
            code=code,
            field="geometry",
        )
    cur.execute(sql.COMPARE_FACILITIES)
    cur.execute(sql.FACILITY_SUMMARY)
    existing, changed = cur.fetchone()
    if existing and not opts.update:
        cur.execute(sql.EXISTING_FACILITIES)
        for rn, code in cur.fetchall():
            report.error(
                "code_exists",
                f"facility {code} already exists",
                "import with --update to change what differs, or change the code",
                row=rn,
                code=code,
            )
    report.counts.update(
        {"new": report.rows - existing, "updated": changed, "unchanged": existing - changed}
    )
    report.timings["check"] = time.perf_counter() - t
    if not report.ok:
        return
    t = time.perf_counter()
    cur.execute(sql.INSERT_FACILITIES)
    if changed and opts.update:
        cur.execute(sql.UPDATE_FACILITIES)
    report.timings["write"] = time.perf_counter() - t


# ---- people -------------------------------------------------------------------------------
def load_people(
    cur: Cursor,
    source,
    mapping: FieldMapping,
    opts: ImportOptions,
    report: Report,
    t_from: datetime,
    progress: Progress,
) -> None:
    """Stage, check and write people and their roles on grids."""
    cur.execute(sql.ROLES)
    roles: dict[str, str] = {}
    for code, zh, en in cur.fetchall():
        for key in (code, zh, en):
            roles[str(key).strip().lower()] = code
    rows = v.prepare_people(source, mapping, report, roles)
    cur.execute(sql.STAGE_PEOPLE)
    copy_rows(
        cur,
        sql.COPY_PEOPLE,
        columns(
            rows,
            ["rn", "name", "phone", "mobile", "grid_code", "role", "is_primary", "attributes"],
        ),
        progress,
    )
    cur.execute(sql.RESOLVE_PEOPLE)
    cur.execute(sql.UNKNOWN_GRIDS)
    for rn, code in cur.fetchall():
        report.error(
            "unknown_grid",
            f"grid '{code}' is not a current grid",
            "import the grids first, or correct the grid code",
            row=rn,
            field=mapping.columns.get("grid") or "grid",
            value=code,
        )
    for rn, code, name, grid_outside in scope_errors(cur, opts, sql.PEOPLE_OUT_OF_SCOPE):
        report.error(
            "outside_scope",
            f"grid {code} lies outside your area"
            if grid_outside
            else f"{name} already works on a grid outside your area",
            OUTSIDE_FIX,
            row=rn,
            field=mapping.columns.get("grid") or "grid",
            value=code,
        )
    cur.execute(sql.TWO_PRIMARIES)
    for rn, code in cur.fetchall():
        report.error(
            "two_primaries",
            f"the file makes more than one person primary on grid {code}",
            "mark one person per grid as primary (the one reports route to)",
            row=rn,
            field=mapping.columns.get("primary") or "primary",
            value=code,
        )
    cur.execute(sql.MARK_PEOPLE)
    if not opts.update:
        cur.execute(sql.PRIMARY_TAKEN)
        for rn, code, name in cur.fetchall():
            report.error(
                "primary_taken",
                f"grid {code} already has a primary person ({name})",
                "import with --update to replace them (their assignment ends, kept as history)",
                row=rn,
                value=code,
            )
    cur.execute(sql.PEOPLE_SUMMARY)
    new_people, unchanged, assignments, replaced = cur.fetchone()
    report.counts.update(
        {
            "new_people": new_people,
            "new_assignments": assignments,
            "unchanged": unchanged,
            "replaced_primaries": replaced,
        }
    )
    if not report.ok:
        return
    cur.execute(sql.INSERT_PEOPLE)
    report.counts["new_people"] = cur.rowcount
    if opts.update:
        cur.execute(sql.UPDATE_PEOPLE)
        report.counts["updated_people"] = cur.rowcount
    cur.execute(sql.RELINK_PEOPLE)
    cur.execute(sql.END_PRIMARIES, {"t": t_from})
    cur.execute(sql.INSERT_ASSIGNMENTS, {"t": t_from})


def _scope_errors(cur: Cursor, opts: ImportOptions, statement: str) -> list:
    """Rows a scope check finds (none for a caller who covers the whole territory)."""
    if opts.scope is None:
        return []
    cur.execute(statement, {"scope": opts.scope})
    return cur.fetchall()


# ---- people under care ----------------------------------------------------------------------
CARE_NAMES = """
    SELECT code, name_zh, name_en, definition -> 'aliases' FROM care_categories WHERE active
"""


def load_care(
    cur: Cursor,
    source,
    mapping: FieldMapping,
    opts: ImportOptions,
    report: Report,
    t_from: datetime,
    progress: Progress,
) -> None:
    """Stage, check and write a ledger of people under care: households (by code) and their
    people (by household and name); with --update change what differs."""
    cur.execute(CARE_NAMES)
    names: dict[str, str] = {}
    for code, zh, en, aliases in cur.fetchall():
        for key in (code, zh, en, *(aliases or [])):
            names[str(key).strip().lower()] = code
    rows = v.prepare_care(source, mapping, report, names)
    cur.execute(sql.STAGE_CARE)
    copy_rows(
        cur,
        sql.COPY_CARE,
        columns(
            rows,
            [
                "rn",
                "household",
                "address",
                "grid_code",
                "household_phone",
                "name",
                "gender",
                "birth_year",
                "phone",
                "categories",
                "note",
                "attributes",
            ],
        ),
        progress,
    )
    cur.execute(sql.RESOLVE_CARE)
    cur.execute(sql.UNKNOWN_CARE_GRIDS)
    for rn, code in cur.fetchall():
        report.error(
            "unknown_grid",
            f"grid '{code}' is not a current grid",
            "use the code of the micro-grid (or grid) the household lives in",
            row=rn,
            field=mapping.columns.get("grid") or "grid",
            value=code,
        )
    for rn, household, grid, before in _scope_errors(cur, opts, sql.CARE_OUT_OF_SCOPE):
        report.error(
            "outside_scope",
            f"household {household} lies outside your area"
            if before
            else f"grid {grid} lies outside your area",
            "import only the people under care of your own area, or ask an admin",
            row=rn,
            field=mapping.columns.get("grid") or "grid",
            value=grid,
        )
    if not opts.update:
        cur.execute(sql.CARE_EXISTING)
        for rn, household, name, person, _differs in cur.fetchall():
            what = (
                f"{name} of household {household} is on record with other details"
                if person
                else f"household {household} is on record with another address, phone or grid"
            )
            report.error(
                "exists",
                what,
                "import with --update to change what differs",
                row=rn,
                code=household,
            )
    cur.execute(sql.CARE_SUMMARY)
    new_h, changed_h, new_p, changed_p, same_p = cur.fetchone()
    report.counts.update(
        {
            "new_households": new_h,
            "updated_households": changed_h,
            "new_people": new_p,
            "updated_people": changed_p,
            "unchanged": same_p,
        }
    )
    if not report.ok:
        return
    cur.execute(sql.INSERT_HOUSEHOLDS)
    if opts.update:
        cur.execute(sql.UPDATE_HOUSEHOLDS)
        cur.execute(sql.UPDATE_CARE_PEOPLE)
    cur.execute(sql.INSERT_CARE_PEOPLE)


LOADERS = {
    "grids": load_grids,
    "facilities": load_facilities,
    "people": load_people,
    "care": load_care,
}
