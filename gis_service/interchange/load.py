"""The import pipeline: read → check in Python (vectorised) → COPY into a staging table →
check in SQL (set-based) → write, all in one transaction. A dry run (``check``) does every
step and rolls back, so its counts are exact and nothing is left behind."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from psycopg2.extensions import cursor as Cursor
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from gis_service.auth import audit
from gis_service.auth.principal import Principal
from gis_service.interchange import sql
from gis_service.interchange import validate as v
from gis_service.interchange.mapping import FieldMapping, MappingError, build_mapping
from gis_service.interchange.reader import read_source
from gis_service.interchange.report import ImportRefused, Report

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: nothing."""


@dataclass
class ImportOptions:
    """What to import and how."""

    layer: str
    check: bool = False
    update: bool = False
    fix: bool = False
    crs: str | None = None
    source_layer: str | None = None
    encoding: str | None = None
    mapping: FieldMapping | None = None
    valid_from: datetime | None = None
    retire_missing: bool = False
    actor: str | None = None
    source_name: str | None = None
    pause_before_commit: float = 0.0
    # Who imports: the audit row names them; their subtree bounds every row the import
    # creates, changes or retires (None: the whole territory, e.g. the CLI on the server).
    principal: Principal | None = None
    ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> list[int] | None:
        """Ids of the caller's scope root (all versions), or None for the whole territory."""
        if self.principal is None:
            return None
        return self.principal.scope_filter()

    def as_json(self) -> str:
        """The options worth recording with the run."""
        return json.dumps(
            {
                "check": self.check,
                "update": self.update,
                "fix": self.fix,
                "crs": self.crs,
                "layer": self.source_layer,
                "retire_missing": self.retire_missing,
                "mapping": None
                if self.mapping is None
                else {"columns": self.mapping.columns, "defaults": self.mapping.defaults},
            },
            ensure_ascii=False,
        )


class _ProgressReader(io.RawIOBase):
    """A file-like view of a text buffer that reports how much COPY has read."""

    def __init__(self, data: bytes, progress: Progress, stage: str) -> None:
        self._buf = io.BytesIO(data)
        self._total = len(data)
        self._progress = progress
        self._stage = stage

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._buf.read(size)
        self._progress(self._stage, self._buf.tell(), self._total)
        return chunk


def _copy(cur: Cursor, statement: str, rows: Iterable[tuple], progress: Progress) -> None:
    """COPY rows as CSV; None becomes an unquoted empty field, which COPY reads as NULL."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    data = buf.getvalue().encode("utf-8")
    cur.copy_expert(statement, _ProgressReader(data, progress, "stage"), size=1 << 20)


def _columns(frame: pd.DataFrame, names: list[str]) -> Iterable[tuple]:
    arrays = []
    for n in names:
        col = frame[n].to_numpy(dtype=object, copy=True)
        # pandas may have turned None into NaN (string columns): COPY must see NULL.
        col[pd.isna(col)] = None
        arrays.append(col)
    return zip(*arrays, strict=True)


# ---- entry point --------------------------------------------------------------------------
def run_import(
    engine: Engine, path: Path, opts: ImportOptions, progress: Progress | None = None
) -> Report:
    """Import a file (or only check it); the report says what was found and done."""
    progress = progress or _no_progress
    t0 = time.perf_counter()
    report = Report(layer=opts.layer, source=opts.source_name or Path(path).name)
    report.dry_run = opts.check
    t_from = opts.valid_from or datetime.now(UTC)
    try:
        mapping = opts.mapping or build_mapping(opts.layer)
        crs = opts.crs or mapping.crs
        progress("read", 0, 1)
        t = time.perf_counter()
        source = read_source(
            Path(path),
            layer=opts.source_layer,
            crs=crs,
            encoding=opts.encoding,
            geometry_columns={k: mapping.columns[k] for k in ("wkt", "lon", "lat")}
            if any(k in mapping.columns for k in ("wkt", "lon", "lat"))
            else None,
            require_geometry=opts.layer not in ("people", "care"),
        )
        report.timings["read"] = time.perf_counter() - t
        progress("read", 1, 1)
        report.driver, report.crs, report.rows = source.driver, source.crs, len(source.frame)
        for f in (*source.warnings, *source.geometry_errors):
            report.add(f)
        if report.rows == 0:
            raise ImportRefused("the file holds no rows", "check the layer or sheet name")
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            trans = conn.begin()
            try:
                with raw.cursor() as cur:
                    cur.execute(sql.LOCK)
                    _LOADERS[opts.layer](cur, source, mapping, opts, report, t_from, progress)
                    if report.ok:
                        report.counts = {k: int(n) for k, n in report.counts.items()}
                        if not opts.check:
                            cur.execute(
                                sql.RECORD_RUN,
                                {
                                    "layer": opts.layer,
                                    "source": report.source,
                                    "options": opts.as_json(),
                                    "counts": json.dumps(report.counts),
                                    "warnings": report.warnings,
                                    "actor": opts.actor,
                                    "t": t_from,
                                },
                            )
                            report.run_id = cur.fetchone()[0]
                            if opts.layer == "care":
                                _audit(conn, opts, report)
                if report.ok and not opts.check:
                    if opts.pause_before_commit:
                        progress("commit", 0, 1)
                        time.sleep(opts.pause_before_commit)
                    t = time.perf_counter()
                    trans.commit()
                    report.timings["commit"] = time.perf_counter() - t
                    report.status = "imported"
                else:
                    trans.rollback()
                    report.status = "checked" if report.ok else "refused"
                progress("commit", 1, 1)
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise
    except (ImportRefused, MappingError) as exc:
        message = exc.message if isinstance(exc, ImportRefused) else str(exc)
        fix = exc.fix if isinstance(exc, ImportRefused) else "fix the mapping"
        report.error("file_refused", message, fix)
        report.status = "refused"
    except DBAPIError as exc:
        report.error(
            "database_refused",
            f"the database refused the rows: {str(exc.orig).strip().splitlines()[0]}",
            "nothing was written; fix the rows the message names and import again",
        )
        report.status = "refused"
    report.seconds = time.perf_counter() - t0
    log.info("import %s %s: %s in %.2fs", opts.layer, report.source, report.status, report.seconds)
    return report


def _audit(conn: Any, opts: ImportOptions, report: Report) -> None:
    """The audit row of a committed import, in its transaction (the run row holds the rest)."""
    audit.record(
        conn,
        opts.principal,
        f"import.{opts.layer}",
        "import_run",
        report.run_id,
        None,
        {
            "layer": opts.layer,
            "source": report.source,
            "rows": report.rows,
            "counts": report.counts,
            "update": opts.update,
            "retire_missing": opts.retire_missing,
        },
        opts.principal.grid_id if opts.principal is not None else None,
        opts.ip,
    )


_OUTSIDE_FIX = "import only grids, facilities and people of your own area, or ask an admin"


def _scope_errors(cur: Cursor, opts: ImportOptions, statement: str) -> list:
    """Rows a scope check finds (none for a caller who covers the whole territory)."""
    if opts.scope is None:
        return []
    cur.execute(statement, {"scope": opts.scope})
    return cur.fetchall()


# ---- grids --------------------------------------------------------------------------------
def _geometry_checks(
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


def _load_grids(
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
    _copy(
        cur,
        sql.COPY_GRIDS,
        _columns(
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
    _geometry_checks(cur, report, opts.fix, sql.INVALID_GRIDS, sql.FIX_GRIDS, "polygon")
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
def _load_facilities(
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
    _copy(
        cur,
        sql.COPY_FACILITIES,
        _columns(rows, ["rn", "code", "type_code", "name", "status", "attributes", "geom"]),
        progress,
    )
    cur.execute("ANALYZE imp_facilities")
    report.timings["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    _geometry_checks(cur, report, opts.fix, sql.INVALID_FACILITIES, sql.FIX_FACILITIES, "geometry")
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
def _load_people(
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
    _copy(
        cur,
        sql.COPY_PEOPLE,
        _columns(
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


# ---- people under care ----------------------------------------------------------------------
CARE_NAMES = """
    SELECT code, name_zh, name_en, definition -> 'aliases' FROM care_categories WHERE active
"""


def _load_care(
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
    _copy(
        cur,
        sql.COPY_CARE,
        _columns(
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


_LOADERS = {
    "grids": _load_grids,
    "facilities": _load_facilities,
    "people": _load_people,
    "care": _load_care,
}
