"""The command line of operations: backup, restore, pitr, doctor, photos archive, audit export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gis_service.config import Settings
from gis_service.console import fail

backup_app = typer.Typer(
    help="Back up the database, photos and layers/ into one archive (and manage archives).",
    invoke_without_command=True,
)
pitr_app = typer.Typer(
    help="Point-in-time recovery: WAL archiving of the embedded cluster (GIS_WAL_ARCHIVE_DIR).",
    no_args_is_help=True,
)
photos_app = typer.Typer(
    help="Photo files: archive those of long-closed hazards.", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    """Run an ops function; its OpsError (and the cluster's) become a clean exit 1."""
    from gis_service.db.cluster import ClusterError
    from gis_service.ops.pgtools import OpsError

    try:
        return fn(*args, **kwargs)
    except (OpsError, ClusterError) as exc:
        fail(str(exc))


def _log(message: str) -> None:
    typer.echo(message, err=True)


# ---- backup ---------------------------------------------------------------------------------
@backup_app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[
        Path | None, typer.Option(help="Folder for the archive (GIS_BACKUP_DIR, <data>/backups).")
    ] = None,
    keep: Annotated[
        int | None, typer.Option(min=1, help="Afterwards keep only the newest N archives there.")
    ] = None,
) -> None:
    """Write one archive: database (pg_dump), photos, layers/ and a manifest with counts and
    checksums. Sub-commands list, verify and prune manage archives."""
    if ctx.invoked_subcommand is not None:
        return
    from gis_service.ops.backup import backup as run_backup

    _echo_json(_run(run_backup, Settings(), to=to, keep=keep, log=_log))


@backup_app.command("list")
def backup_list(
    to: Annotated[Path | None, typer.Option(help="Folder of the archives.")] = None,
) -> None:
    """List the complete archives, oldest first, with their size."""
    from gis_service.ops.backup import list_archives

    folder = to or Settings().backups_path
    for path in list_archives(folder):
        typer.echo(f"{path.stat().st_size:>14,}  {path}")


@backup_app.command("verify")
def backup_verify(archive: Annotated[Path, typer.Argument(help="The archive (.tar).")]) -> None:
    """Check every member of an archive against the manifest's checksums."""
    from gis_service.ops.backup import verify

    _echo_json(_run(verify, archive))


@backup_app.command("prune")
def backup_prune(
    keep: Annotated[int, typer.Option(min=1, help="How many of the newest archives to keep.")],
    to: Annotated[Path | None, typer.Option(help="Folder of the archives.")] = None,
) -> None:
    """Delete all but the newest KEEP archives."""
    from gis_service.ops.backup import prune

    deleted = _run(prune, to or Settings().backups_path, keep, _log)
    typer.echo(f"deleted {len(deleted)} archive(s)")


# ---- restore ------------------------------------------------------------------------------------
def restore(
    archive: Annotated[
        Path | None, typer.Argument(help="The archive to restore (not with --until).")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Recover the embedded cluster to this time, 'YYYY-MM-DD HH:MM[:SS]' in the "
            "office's local time (GIS_LOCAL_TIMEZONE, Asia/Shanghai) unless an offset is given; "
            "needs GIS_WAL_ARCHIVE_DIR."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database or photo folder that has data.")
    ] = False,
) -> None:
    """Restore an archive into an empty data folder or DATABASE_URL and verify counts and
    checksums; or, with --until, recover the embedded cluster to a point in time."""
    settings = Settings()
    if until is not None:
        if archive is not None:
            fail("give either an ARCHIVE or --until, not both")
        from gis_service.ops.pitr import recover

        _echo_json(_run(recover, settings, until, log=_log))
        return
    if archive is None:
        fail("name the archive to restore (see `gis-service backup list`), or give --until")
    from gis_service.ops.restore import restore as run_restore

    _echo_json(_run(run_restore, settings, archive, force=force, log=_log))


# ---- point in time recovery --------------------------------------------------------------------
@pitr_app.command("base-backup")
def pitr_base_backup() -> None:
    """Take a base backup into GIS_WAL_ARCHIVE_DIR/base (recovery starts from one)."""
    from gis_service.ops.pitr import base_backup

    _echo_json(_run(base_backup, Settings(), log=_log))


@pitr_app.command("status")
def pitr_status() -> None:
    """Show whether WAL archiving is on, the base backups and the recoverable window."""
    from gis_service.ops.pitr import status

    _echo_json(_run(status, Settings()))


@pitr_app.command("prune")
def pitr_prune(
    keep: Annotated[int, typer.Option(min=1, help="Base backups to keep (newest first).")],
) -> None:
    """Delete older base backups and the WAL only they needed."""
    from gis_service.ops.pitr import prune

    _echo_json(_run(prune, Settings(), keep, log=_log))


# ---- doctor --------------------------------------------------------------------------------------
def doctor(
    lang: Annotated[str, typer.Option(help="zh, en or both.")] = "both",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Disk use, table sizes, bloat, unused indexes, long queries, backups (中文/English)."""
    from gis_service.ops.doctor import examine, render

    if lang not in ("zh", "en", "both"):
        fail("--lang must be zh, en or both")
    report = _run(examine, Settings())
    if as_json:
        _echo_json(report)
    else:
        typer.echo(render(report, lang))


# ---- photos -----------------------------------------------------------------------------------
@photos_app.command("archive")
def photos_archive(
    years: Annotated[
        float, typer.Option(min=0, help="Archive photos of hazards closed more than this ago.")
    ],
    apply: Annotated[bool, typer.Option("--apply", help="Move them (default: dry run).")] = False,
) -> None:
    """Move photos of hazards closed more than YEARS ago to GIS_PHOTO_ARCHIVE_DIR; the database
    records where each went (it is still served from there)."""
    from gis_service.ops.hygiene import archive_photos

    _echo_json(_run(archive_photos, Settings(), years, apply=apply, log=_log))


# ---- audit ---------------------------------------------------------------------------------------
@audit_app.command("export")
def audit_export(
    since: Annotated[str, typer.Option(help="From this date or time (local time unless offset).")],
    until: Annotated[
        str | None, typer.Option(help="Before this date or time (default: now).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json (JSON lines).")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout).")
    ] = None,
) -> None:
    """Export the audit log of a date range as CSV or JSON lines."""
    import sys

    from gis_service.ops.audit_export import export_rows, parse_range

    settings = Settings()
    if fmt not in ("csv", "json"):
        fail("--format must be csv or json")
    start, end = _run(parse_range, since, until, settings.local_timezone)
    from gis_service.db.engine import make_engine
    from gis_service.ops.pgtools import database_for

    engine = make_engine(_run(database_for, settings).url, pool_size=1)
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        with engine.connect() as conn:
            for chunk in export_rows(conn, start, end, fmt):
                out.write(chunk)
    finally:
        if output:
            out.close()
        engine.dispose()
    if output:
        _log(f"wrote the audit log from {start.isoformat()} to {end.isoformat()} into {output}")
