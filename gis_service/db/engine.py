"""Engines: resolve the database URL (external or embedded) and build the pool."""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from gis_service.config import Settings
from gis_service.db.cluster import Cluster, ClusterError
from gis_service.db.limits import STATEMENT_TIMEOUT_S


def cluster_for(settings: Settings) -> Cluster:
    """The embedded cluster that lives under the data folder."""
    from gis_service.ops.walconf import archive_conf, archive_dirs

    return Cluster(
        settings.data_path / "pg",
        db_name=settings.db_name,
        pg_bin=settings.pg_bin,
        runtime_conf=archive_conf(settings),
        runtime_dirs=archive_dirs(settings),
    )


def normalise_url(url: str) -> str:
    """Accept libpq-style postgres:// URLs as well as SQLAlchemy ones."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def resolve_url(settings: Settings, start: bool = False, create: bool = False) -> str:
    """DATABASE_URL if given (never starting a cluster), else the embedded cluster's URL.

    ``start`` starts the embedded cluster when it is stopped; only with ``create`` (``serve``
    and ``pg start``) is a missing one created. Any other command that found none used to
    create and migrate a second, empty cluster where it happened to run, and answer from it
    (issue 11, finding 14); it now says where it looked instead.
    """
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = cluster_for(settings)
    if start:
        if not create and not cluster.initialised:
            raise ClusterError(missing_cluster(settings, cluster))
        cluster.start()
        return cluster.ensure_database()
    return cluster.url()


def missing_cluster(settings: Settings, cluster: Cluster) -> str:
    """What to do when a command finds no embedded cluster where it looked."""
    return (
        f"no PostGIS cluster in {cluster.root} (GIS_DATA_DIR={settings.data_path}), and this "
        "command does not create one. Point it at the service's data: run it with the same "
        "GIS_DATA_DIR as `gis-service serve` (the folder holding pg/), or set DATABASE_URL; "
        "to create a cluster here, run `gis-service pg start` or `gis-service serve`."
    )


def make_engine(url: str, **kw) -> Engine:
    """A pooled engine; every connection speaks UTC, and dead ones are never handed out."""
    opts = {
        # No ping per checkout (a round trip on every request): _drop_dead_connections
        # looks at the socket instead, which costs no round trip.
        "pool_pre_ping": False,
        "pool_size": 10,
        "max_overflow": 10,
        "connect_args": {
            "options": f"-c timezone=UTC -c statement_timeout={STATEMENT_TIMEOUT_S * 1000}"
        },
    }
    opts.update(kw)
    engine = create_engine(url, **opts)
    event.listen(engine, "checkout", _drop_dead_connections)
    return engine


def _drop_dead_connections(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    """Refuse a pooled connection the server has ended, so the pool opens a new one.

    When PostgreSQL stops (a restart, pg_terminate_backend) it ends each backend with an
    ErrorResponse and closes the socket. An idle connection is never sent anything else
    (the service uses no LISTEN), so a socket that is readable, or closed, at checkout
    belongs to a dead connection. Without this, the first request on each stale pooled
    connection failed after a restart (issue 11, finding 8); SQLAlchemy retries the
    checkout on DisconnectionError.
    """
    if getattr(dbapi_conn, "closed", 0):
        raise DisconnectionError("connection closed")
    try:
        fd = dbapi_conn.fileno()
    except Exception as exc:  # psycopg2 raises InterfaceError on a closed connection
        raise DisconnectionError("connection has no socket") from exc
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise DisconnectionError("the server ended the connection")
