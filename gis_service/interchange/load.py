"""The import pipeline: read → check in Python (vectorised) → COPY into a staging table →
check in SQL (set-based) → write, all in one transaction. A dry run (``check``) does every
step and rolls back, so its counts are exact and nothing is left behind."""

from __future__ import annotations

import codecs
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from gis_service.auth import audit
from gis_service.interchange import sql
from gis_service.interchange.mapping import MappingError, build_mapping
from gis_service.interchange.reader import read_source
from gis_service.interchange.report import ImportRefused, Report
from gis_service.interchange.staging import ImportOptions, Progress, no_progress
from gis_service.interchange.writers import LOADERS

log = logging.getLogger(__name__)

__all__ = ["ImportOptions", "run_import"]


# ---- entry point --------------------------------------------------------------------------
def run_import(
    engine: Engine, path: Path, opts: ImportOptions, progress: Progress | None = None
) -> Report:
    """Import a file (or only check it); the report says what was found and done."""
    progress = progress or no_progress
    t0 = time.perf_counter()
    report = Report(layer=opts.layer, source=opts.source_name or Path(path).name)
    report.dry_run = opts.check
    t_from = opts.valid_from or datetime.now(UTC)
    try:
        if opts.encoding:
            try:
                codecs.lookup(opts.encoding)
            except LookupError:
                raise ImportRefused(
                    f"unknown text encoding {opts.encoding!r}",
                    "give a known encoding such as UTF-8, GBK or GB18030",
                ) from None
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
                    LOADERS[opts.layer](cur, source, mapping, opts, report, t_from, progress)
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


def _audit(conn: Connection, opts: ImportOptions, report: Report) -> None:
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
