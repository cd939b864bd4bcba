"""Each layer's step of an import, on the raw cursor inside the import's transaction: stage
the prepared rows, check them in SQL (set-based), and write grids (with their versions and
leaders), facilities or people."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

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
)

OUTSIDE_FIX = "import only grids, facilities and people of your own area, or ask an admin"
CARE_OUTSIDE_FIX = "import only the people under care of your own area, or ask an admin"


@dataclass(frozen=True)
class Finds:
    """How a row a check finds is reported: its kind, what is wrong, how to fix it."""

    kind: str
    # A str.format template over the row's columns and the values the check binds.
    message: str
    fix: str
    field: str | None = None  # the field the finding names, as is
    mapped: str | None = None  # …or a mapping key: the finding names the file's column for it
    code_column: str = "code"  # the row column that is the finding's code, where the row has it
    value: str | None = None  # the row column that is the finding's value
    warning: bool = False
    # What the message shows for a column that is NULL, by column.
    if_null: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Check:
    """A set-based check over the staged rows: the SQL that finds the offending rows and how
    each is reported; with ``when``, rows whose boolean column is false are ``otherwise`` (a
    finding of its own, or the same one with another message)."""

    statement: str
    finds: Finds
    when: str | None = None
    otherwise: Finds | str | None = None
    scoped: bool = False  # a scope check: only for a caller bound to a subtree
    binds: tuple[str, ...] = ()  # the run's values the statement takes (e.g. "t")


def run_checks(
    cur: Cursor,
    report: Report,
    mapping: FieldMapping,
    opts: ImportOptions,
    checks: tuple[Check, ...],
    **values: Any,
) -> None:
    """Run each check in order and report every row it finds (the one loop of them all)."""
    for check in checks:
        if check.scoped:
            if opts.scope is None:
                continue
            cur.execute(check.statement, {"scope": opts.scope})
        elif check.binds:
            cur.execute(check.statement, {k: values[k] for k in check.binds})
        else:
            cur.execute(check.statement)
        names = [d[0] for d in cur.description]
        for found in cur.fetchall():
            row = dict(zip(names, found, strict=True))
            finds = check.finds
            if check.when is not None and not row[check.when]:
                other = check.otherwise
                assert other is not None
                finds = replace(finds, message=other) if isinstance(other, str) else other
            shown = {**row, **{k: t for k, t in finds.if_null if row[k] is None}}
            record = report.warn if finds.warning else report.error
            record(
                finds.kind,
                finds.message.format_map({**values, **shown}),
                finds.fix,
                row=row.get("rn"),
                field=(mapping.columns.get(finds.mapped) or finds.mapped)
                if finds.mapped
                else finds.field,
                code=row.get(finds.code_column),
                value=row[finds.value] if finds.value else None,
            )


# ---- grids --------------------------------------------------------------------------------
GRID_CHECKS = (
    Check(
        sql.PARENT_PROBLEMS,
        Finds(
            "bad_parent",
            "a {level} cannot sit under a {parent_level} ('{parent_code}')",
            "the parent must be a coarser level: street › community › grid › micro_grid "
            "(special grids sit under any coarser grid)",
            mapped="parent",
            value="parent_code",
        ),
        when="found",
        otherwise=Finds(
            "unknown_parent",
            "parent '{parent_code}' is neither in this file nor a current grid in the database",
            "import the parent grids first, put them in the same file, or correct the code",
            mapped="parent",
            value="parent_code",
        ),
    ),
    Check(
        sql.NO_PARENT,
        Finds(
            "no_parent",
            "this {level} has no parent grid, so it becomes a top-level grid",
            "give its parent code if it belongs under a street or community",
            warning=True,
        ),
    ),
    Check(
        sql.GRIDS_OUT_OF_SCOPE,
        Finds(
            "outside_scope",
            "grid {code} lies outside your area",
            OUTSIDE_FIX,
            if_null=(("parent_code", "-"),),
        ),
        when="before_outside",
        otherwise="grid {code} would lie outside your area (parent '{parent_code}')",
        scoped=True,
    ),
    Check(
        sql.LEADERS_OUT_OF_SCOPE,
        Finds(
            "outside_scope",
            "leader {leader_name} already works on a grid outside your area",
            OUTSIDE_FIX,
            mapped="leader_name",
        ),
        scoped=True,
    ),
)
GRID_EXISTS = Check(
    sql.EXISTING_ROWS,
    Finds(
        "code_exists",
        "grid {code} already exists (current version since {old_from:%Y-%m-%d})",
        "import with --update to replace what differs (a redrawn boundary ends the "
        "old version and keeps it as history), or change the code",
    ),
)
GRID_TOO_EARLY = Check(
    sql.TOO_EARLY,
    Finds(
        "too_early",
        "the new version would start {t:%Y-%m-%d %H:%M}, not after the current one "
        "({old_from:%Y-%m-%d %H:%M})",
        "give --valid-from a later date",
    ),
    binds=("t",),
)
RETIRE_CHECKS = (
    Check(
        sql.RETIRE_OUT_OF_SCOPE,
        Finds(
            "outside_scope",
            "grid {code} is missing from the file and would be retired, but it lies outside "
            "your area",
            OUTSIDE_FIX,
        ),
        scoped=True,
    ),
    Check(
        sql.RETIRE_BLOCKED,
        Finds(
            "retire_blocked",
            "grid {code} is missing from the file and would be retired, but its child "
            "{child} is current and not in the file",
            "put the children in the file with their new parents, or retire them too",
        ),
    ),
)


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
            ],
        ),
        progress,
        lead=rows["geom"].to_numpy(),
    )
    cur.execute(sql.ANALYZE_GRIDS)
    report.timings["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    progress("check", 0, 1)
    geometry_checks(cur, report, opts.fix, sql.INVALID_GRIDS, sql.FIX_GRIDS, "polygon")
    run_checks(cur, report, mapping, opts, GRID_CHECKS)
    cur.execute(sql.COMPARE_GRIDS)
    cur.execute(sql.MARK_CHANGED)
    cur.execute(sql.COMPARE_SUMMARY)
    existing, changed, *fields = cur.fetchone()
    if existing and not opts.update:
        run_checks(cur, report, mapping, opts, (GRID_EXISTS,))
    if changed and opts.update:
        run_checks(cur, report, mapping, opts, (GRID_TOO_EARLY,), t=t_from)
    retired = 0
    if opts.retire_missing:
        cur.execute(sql.RETIRE_CANDIDATES)
        retired = cur.rowcount
        run_checks(cur, report, mapping, opts, RETIRE_CHECKS)
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
FACILITY_SCOPE = Check(
    sql.FACILITIES_OUT_OF_SCOPE,
    Finds(
        "outside_scope",
        "facility {code} lies outside your area",
        OUTSIDE_FIX,
        field="geometry",
    ),
    scoped=True,
)
FACILITY_EXISTS = Check(
    sql.EXISTING_FACILITIES,
    Finds(
        "code_exists",
        "facility {code} already exists",
        "import with --update to change what differs, or change the code",
    ),
)


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
        columns(rows, ["rn", "code", "type_code", "name", "status", "attributes"]),
        progress,
        lead=rows["geom"].to_numpy(),
    )
    cur.execute(sql.ANALYZE_FACILITIES)
    report.timings["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    geometry_checks(cur, report, opts.fix, sql.INVALID_FACILITIES, sql.FIX_FACILITIES, "geometry")
    run_checks(cur, report, mapping, opts, (FACILITY_SCOPE,))
    cur.execute(sql.COMPARE_FACILITIES)
    cur.execute(sql.FACILITY_SUMMARY)
    existing, changed = cur.fetchone()
    if existing and not opts.update:
        run_checks(cur, report, mapping, opts, (FACILITY_EXISTS,))
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
PEOPLE_CHECKS = (
    Check(
        sql.UNKNOWN_GRIDS,
        Finds(
            "unknown_grid",
            "grid '{grid_code}' is not a current grid",
            "import the grids first, or correct the grid code",
            mapped="grid",
            value="grid_code",
        ),
    ),
    Check(
        sql.PEOPLE_OUT_OF_SCOPE,
        Finds(
            "outside_scope",
            "grid {grid_code} lies outside your area",
            OUTSIDE_FIX,
            mapped="grid",
            value="grid_code",
        ),
        when="grid_outside",
        otherwise="{name} already works on a grid outside your area",
        scoped=True,
    ),
    Check(
        sql.TWO_PRIMARIES,
        Finds(
            "two_primaries",
            "the file makes more than one person primary on grid {grid_code}",
            "mark one person per grid as primary (the one reports route to)",
            mapped="primary",
            value="grid_code",
        ),
    ),
)
PRIMARY_TAKEN = Check(
    sql.PRIMARY_TAKEN,
    Finds(
        "primary_taken",
        "grid {grid_code} already has a primary person ({cur_primary_name})",
        "import with --update to replace them (their assignment ends, kept as history)",
        value="grid_code",
    ),
)


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
    run_checks(cur, report, mapping, opts, PEOPLE_CHECKS)
    cur.execute(sql.MARK_PEOPLE)
    if not opts.update:
        run_checks(cur, report, mapping, opts, (PRIMARY_TAKEN,))
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


# ---- people under care ----------------------------------------------------------------------
CARE_CHECKS = (
    Check(
        sql.UNKNOWN_CARE_GRIDS,
        Finds(
            "unknown_grid",
            "grid '{grid_code}' is not a current grid",
            "use the code of the micro-grid (or grid) the household lives in",
            mapped="grid",
            value="grid_code",
        ),
    ),
    Check(
        sql.CARE_OUT_OF_SCOPE,
        Finds(
            "outside_scope",
            "household {household} lies outside your area",
            CARE_OUTSIDE_FIX,
            mapped="grid",
            value="grid_code",
        ),
        when="before_outside",
        otherwise="grid {grid_code} lies outside your area",
        scoped=True,
    ),
)
CARE_EXISTS = Check(
    sql.CARE_EXISTING,
    Finds(
        "exists",
        "{name} of household {household} is on record with other details",
        "import with --update to change what differs",
        code_column="household",
    ),
    when="person",
    otherwise="household {household} is on record with another address, phone or grid",
)


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
    cur.execute(sql.CARE_NAMES)
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
    run_checks(cur, report, mapping, opts, CARE_CHECKS)
    if not opts.update:
        run_checks(cur, report, mapping, opts, (CARE_EXISTS,))
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
