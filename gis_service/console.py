"""What every ``gis-service`` command shares: how it fails, and how it reaches a migrated
database (the embedded cluster started when needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import typer

from gis_service.config import Settings
from gis_service.errors import DomainError
from gis_service.instants import parse_instant
from gis_service.runtime import Prepared


def fail(message: str) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with status 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def prepared_database() -> Prepared:
    """Start the cluster if needed, migrate and sync layers/ (no demo)."""
    from gis_service.catalog import LayerError
    from gis_service.db.cluster import ClusterError
    from gis_service.runtime import prepare

    try:
        return prepare(Settings(), load_demo=False)
    except (ClusterError, LayerError) as exc:
        fail(str(exc))


def instant_option(value: str | None, name: str) -> datetime | None:
    """A date or ISO 8601 time given on the command line (see gis_service.instants)."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        fail(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time, not '{value}'")


def connect():
    """A connection to a migrated database (the embedded cluster is started if needed)."""
    from sqlalchemy import inspect

    from gis_service.db import migrate
    from gis_service.db.cluster import ClusterError
    from gis_service.db.engine import make_engine, resolve_url

    try:
        engine = make_engine(resolve_url(Settings(), start=True), pool_size=1)
    except ClusterError as exc:
        fail(str(exc))
    if not inspect(engine).has_table("users"):
        typer.echo("the database has no tables yet: applying migrations first", err=True)
        migrate.upgrade(engine)
    return engine.connect()


def run_on_database(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(conn, …)`` on a fresh connection; a domain error fails the command."""
    with connect() as conn:
        try:
            return fn(conn, *args, **kwargs)
        except DomainError as exc:
            fail(exc.message)


def json_default(value: Any) -> Any:
    """Dates as ISO 8601 text, anything else as its str (for --json output)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """Rows as an aligned table of ``columns``, or as JSON."""
    if as_json:
        typer.echo(json.dumps(rows, default=json_default, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("(none)")
        return

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if hasattr(value, "strftime"):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)

    table = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in table:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
