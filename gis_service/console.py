"""What every ``gis-service`` command shares: how it fails, and how it reaches a migrated
database (the embedded cluster started when needed)."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

import typer

from gis_service.config import Settings
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
