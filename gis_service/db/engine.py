"""Engines: resolve the database URL (external or embedded) and build the pool."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from gis_service.config import Settings
from gis_service.db.cluster import Cluster


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


def resolve_url(settings: Settings, start: bool = False) -> str:
    """DATABASE_URL if given (never starting a cluster), else the embedded cluster's URL."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = cluster_for(settings)
    if start:
        cluster.start()
        return cluster.ensure_database()
    return cluster.url()


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
