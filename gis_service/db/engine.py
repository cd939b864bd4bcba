"""Engines: resolve the database URL (external or embedded) and build the pool."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from gis_service.config import Settings
from gis_service.db.cluster import Cluster, ClusterError


def cluster_for(settings: Settings) -> Cluster:
    """The embedded cluster that lives under the data folder."""
    return Cluster(settings.data_path / "pg", db_name=settings.db_name, pg_bin=settings.pg_bin)


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
    """A pooled engine; every connection speaks UTC."""
    opts = {
        # No ping per checkout (a round trip on every request): a dropped connection is
        # answered 503 once and SQLAlchemy then invalidates the whole pool.
        "pool_pre_ping": False,
        "pool_size": 10,
        "max_overflow": 10,
        "connect_args": {"options": "-c timezone=UTC -c statement_timeout=60000"},
    }
    opts.update(kw)
    return create_engine(url, **opts)
