"""The ``gis-service`` command line: serve, db, demo, layers, pg, users and keys."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from gis_service.auth.cli import keys_app, users_app
from gis_service.config import Settings
from gis_service.console import fail
from gis_service.db.cluster import ClusterError
from gis_service.grids.cli import grids_app
from gis_service.interchange.cli import export_app, import_app
from gis_service.ops.cli import audit_app, backup_app, doctor, photos_app, pitr_app, restore

app = typer.Typer(
    help="gis-service: 网格化基层治理地图服务 (grid-governance map service).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Schema migrations (Alembic).", no_args_is_help=True)
demo_app = typer.Typer(help="The demo district (二七区, Zhengzhou).", no_args_is_help=True)
layers_app = typer.Typer(
    help="Facility types and hazard categories in layers/.", no_args_is_help=True
)
pg_app = typer.Typer(help="The embedded PostgreSQL/PostGIS cluster.", no_args_is_help=True)
replica_app = typer.Typer(
    help="Streaming replicas of the embedded cluster (pg_basebackup -R), for read scaling "
    "and failover; see docs/scale-out.md.",
    no_args_is_help=True,
)
pg_app.add_typer(replica_app, name="replica")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(layers_app, name="layers")
app.add_typer(pg_app, name="pg")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
# `import` is a Python keyword, hence import_app; the commands live in gis_service/interchange.
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(grids_app, name="grids")
# Operations (issue 16): gis_service/ops.
app.add_typer(backup_app, name="backup")
app.command()(restore)
app.command()(doctor)
app.add_typer(pitr_app, name="pitr")
app.add_typer(photos_app, name="photos")
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    return Settings()


def _engine():
    from gis_service.db.engine import make_engine, resolve_url

    try:
        return make_engine(resolve_url(_settings(), start=True), pool_size=2)
    except ClusterError as exc:
        fail(str(exc))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GIS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GIS_PORT).")] = None,
    demo: Annotated[
        bool | None, typer.Option("--demo/--no-demo", help="Load the demo on first start.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (GIS_WORKERS; default: the number of cores).",
        ),
    ] = None,
) -> None:
    """Start PostGIS if needed, migrate, load the demo once, and serve the API."""
    import os

    settings = _settings()
    # Before anything imports prometheus_client (gis_service.app does): see metrics_env. The
    # workers of --workers N inherit the folder through the environment.
    from gis_service.ops.metrics_env import prepare_multiprocess_dir

    prepare_multiprocess_dir(settings.data_path / "run")
    import uvicorn

    from gis_service.catalog import LayerError
    from gis_service.http.observability import configure_logging
    from gis_service.runtime import prepare

    configure_logging(settings)
    if host:
        settings.host = host
    if port:
        settings.port = port
    t0 = time.perf_counter()
    try:
        prepared = prepare(settings, load_demo=demo)
    except (ClusterError, LayerError) as exc:
        fail(str(exc))
    prepared.engine.dispose()
    where = "DATABASE_URL" if settings.database_url else f"embedded cluster in {settings.data_path}"
    typer.echo(
        f"database ready ({where}) in {time.perf_counter() - t0:.1f}s: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in prepared.timings.items())
    )
    if prepared.backup:
        typer.echo(f"backed up before migrating: {prepared.backup['archive']}")
    if prepared.demo:
        typer.echo(f"demo: {prepared.demo.get('status', prepared.demo)}")
    n = workers or settings.workers or os.cpu_count() or 1
    typer.echo(
        f"serving on http://{settings.host}:{settings.port} with {n} worker"
        f"{'s' if n > 1 else ''} (API docs: /docs)"
    )
    if n == 1:
        # Imported only here: with several workers each imports the app itself, and this
        # process would spend seconds importing what it never runs.
        from gis_service.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # configure_logging's JSON handler, not uvicorn's own
            access_log=False,  # its lines carry query strings (api_key=…); ours carry routes
        )
        return
    # Each worker process builds its own app from the environment; what it shares with the
    # others (sessions, rate limits, login lock-outs, idempotency keys, tile cache, grid
    # cards) lives in PostgreSQL, and its own caches only hold public data for seconds.
    os.environ["GIS_HOST"], os.environ["GIS_PORT"] = settings.host, str(settings.port)
    uvicorn.run(
        "gis_service.app:create_worker_app",
        factory=True,
        workers=n,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # configure_logging's JSON handler, set up in each worker
        access_log=False,  # its lines carry query strings (api_key=…); ours carry routes
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from gis_service.db import migrate
    from gis_service.ops.pgtools import OpsError
    from gis_service.ops.upgrade import backup_before_upgrade

    engine = _engine()
    try:
        pre = backup_before_upgrade(engine, _settings())
    except OpsError as exc:
        fail(f"the backup before migrating failed, nothing was migrated: {exc}")
    if pre:
        typer.echo(f"backed up before migrating: {pre['archive']}")
    migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current(engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")] = "-1",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revert migrations down to REVISION (default: one step). Drops data."""
    from gis_service.db import migrate

    if not yes:
        typer.confirm(f"Downgrade to {revision}? Tables dropped lose their data.", abort=True)
    engine = _engine()
    migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current(engine) or 'base (empty)'}")


@db_app.command("status")
def db_status() -> None:
    """Show the current and newest revision."""
    from gis_service.db import migrate

    engine = _engine()
    cur, head = migrate.current(engine), migrate.head(engine)
    state = "up to date" if cur == head else "needs `gis-service db upgrade`"
    typer.echo(f"current: {cur or 'none'}\nhead:    {head}\n{state}")


@demo_app.command("load")
def demo_load(
    force: Annotated[bool, typer.Option(help="Delete the demo rows and load again.")] = False,
    seed: Annotated[int | None, typer.Option(help="Generator seed (GIS_DEMO_SEED).")] = None,
) -> None:
    """Load the demo district (idempotent: a second run changes nothing)."""
    from gis_service.catalog import LayerError
    from gis_service.runtime import prepare

    settings = _settings()
    if seed is not None:
        settings.demo_seed = seed
    try:
        prepared = prepare(settings, load_demo=False)
    except (ClusterError, LayerError) as exc:
        fail(str(exc))
    from gis_service.demo.loader import load_demo

    t0 = time.perf_counter()
    result = load_demo(
        prepared.engine,
        prepared.catalog,
        settings.demo_data_dir / "erqi_410103_wgs84.geojson",
        seed=settings.demo_seed,
        force=force,
    )
    typer.echo(json.dumps(result, ensure_ascii=False, default=str, indent=2))
    typer.echo(f"took {time.perf_counter() - t0:.1f}s")


@demo_app.command("generate")
def demo_generate(
    scale: Annotated[str, typer.Option(help="Dataset size; 'city' is the only one.")] = "city",
    facilities: Annotated[int, typer.Option(help="How many facilities.")] = 1_000_000,
    hazards: Annotated[int, typer.Option(help="How many hazards.")] = 200_000,
) -> None:
    """Build a city-sized dataset (~100k micro-grids) for benchmarks; replaces the last one."""
    from gis_service.catalog import LayerError
    from gis_service.demo.city import generate_city
    from gis_service.runtime import prepare

    if scale != "city":
        fail(f"unknown scale {scale!r}; use --scale city")
    try:
        prepared = prepare(_settings(), load_demo=False)
    except (ClusterError, LayerError) as exc:
        fail(str(exc))
    result = generate_city(prepared.engine, facilities, hazards, progress=typer.echo)
    typer.echo(json.dumps(result, indent=2))


@layers_app.command("check")
def layers_check(
    path: Annotated[Path | None, typer.Argument(help="Layers folder (GIS_LAYERS_DIR).")] = None,
) -> None:
    """Validate every YAML file in layers/; errors name the file and the field."""
    from gis_service.catalog import LayerError, load_catalog

    folder = path or _settings().layers_dir
    try:
        catalog = load_catalog(folder)
    except LayerError as exc:
        fail(f"{folder} has problems:\n{exc}")
    typer.echo(
        f"{folder}: {len(catalog.facility_types)} facility types, "
        f"{len(catalog.hazard_categories)} hazard categories, "
        f"{len(catalog.departments)} departments: OK"
    )


def _cluster():
    from gis_service.db.engine import cluster_for

    settings = _settings()
    if settings.database_url:
        fail("DATABASE_URL is set, so the service uses that database and no embedded cluster.")
    return cluster_for(settings)


@pg_app.command("start")
def pg_start() -> None:
    """Start the embedded cluster (initdb on first use; reuses a running one)."""
    cluster = _cluster()
    try:
        started = cluster.start()
        url = cluster.ensure_database()
    except ClusterError as exc:
        fail(str(exc))
    typer.echo(("started" if started else "already running") + f": {url}")


@pg_app.command("stop")
def pg_stop() -> None:
    """Stop the embedded cluster cleanly."""
    try:
        stopped = _cluster().stop()
    except ClusterError as exc:
        fail(str(exc))
    typer.echo("stopped" if stopped else "not running")


@pg_app.command("status")
def pg_status() -> None:
    """Show whether the embedded cluster runs, where, and how to connect."""
    cluster = _cluster()
    try:
        state = cluster.status()
    except ClusterError as exc:
        fail(str(exc))
    typer.echo(f"status:  {state}")
    typer.echo(f"folder:  {cluster.home}")
    if state != "absent":
        typer.echo(f"socket:  {cluster.socket_dir}")
        typer.echo(f"url:     {cluster.url()}")
        typer.echo(f"psql:    psql -h {cluster.socket_dir} -U postgres {cluster.db_name}")
    if state == "running":
        typer.echo(f"pid:     {cluster.pid()}")
    sys.exit(0 if state == "running" else 3)


ReplicaName = Annotated[str, typer.Argument(help="Replica name: lower-case letters, digits, _.")]


@replica_app.command("add")
def replica_add(name: ReplicaName = "replica1") -> None:
    """Make a streaming replica of the running embedded cluster and start it."""
    from gis_service.db.replica import add_replica, replica_url

    settings = _settings()
    try:
        replica = add_replica(_cluster(), settings.data_path, name)
    except ClusterError as exc:
        fail(str(exc))
    url = replica_url(replica)
    typer.echo(f"replica {name} streaming from the primary: {replica.home}")
    typer.echo(f"read from it with:  GIS_REPLICA_URLS={url}")


@replica_app.command("list")
def replica_list() -> None:
    """The replicas of the embedded cluster, whether they run, and their URLs."""
    from gis_service.db.replica import list_replicas, replica_url

    settings = _settings()
    for name, replica in list_replicas(_cluster(), settings.data_path):
        typer.echo(f"{name}\t{replica.status()}\t{replica_url(replica)}")


@replica_app.command("promote")
def replica_promote(name: ReplicaName) -> None:
    """Promote a replica to primary, after the primary is gone (docs/scale-out.md, runbook)."""
    from gis_service.db.replica import promote, replica_cluster, replica_url

    settings = _settings()
    try:
        replica = replica_cluster(_cluster(), settings.data_path, name)
        promote(replica)
    except ClusterError as exc:
        fail(str(exc))
    typer.echo(f"replica {name} is now a primary; point the service at it with:")
    typer.echo(f"  DATABASE_URL={replica_url(replica)}")


@replica_app.command("remove")
def replica_remove(name: ReplicaName) -> None:
    """Stop and delete a replica, and drop its replication slot on the primary."""
    from gis_service.db.replica import remove_replica

    settings = _settings()
    try:
        remove_replica(_cluster(), settings.data_path, name)
    except ClusterError as exc:
        fail(str(exc))
    typer.echo(f"replica {name} removed")
