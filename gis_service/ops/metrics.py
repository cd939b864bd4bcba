"""Prometheus metrics, with the official client, correct across several uvicorn workers.

Per-process counters (requests, latency, pool use, tile cache) live in prometheus_client's
multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (``gis-service serve`` sets it before
any worker imports this module): each worker writes its own memory-mapped file and a scrape,
whichever worker answers it, sums them all. Figures that live in the database (open hazards
by status, overdue, import runs) are read at scrape time in one query, so they are the same
whichever worker answers.

To count tile cache use, call ``tile_cache(layer, hit)`` where a tile is served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine

from gis_service.ops import sql
from gis_service.ops.metrics_env import MULTIPROC_ENV

REQUESTS = Counter(
    "gis_http_requests",
    "HTTP requests answered, by route template (not raw path), method and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "gis_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# livesum: the sum over the workers that are alive (a dead worker's file is dropped).
POOL_IN_USE = Gauge(
    "gis_db_pool_connections_in_use",
    "Database connections checked out of the pools now.",
    multiprocess_mode="livesum",
)
POOL_CAPACITY = Gauge(
    "gis_db_pool_connections_max",
    "Most connections the pools may open (pool size plus overflow, all workers).",
    multiprocess_mode="livesum",
)
TILE_CACHE = Counter(
    "gis_tile_cache_requests",
    "Vector tiles served, by layer and whether the tile cache had them (hit or miss).",
    ["layer", "result"],
)


def tile_cache(layer: str, hit: bool) -> None:
    """Count one tile served from the cache (hit) or rendered (miss)."""
    TILE_CACHE.labels(layer=layer, result="hit" if hit else "miss").inc()


def worker_exit() -> None:
    """Drop this worker's live gauges (its pool no longer exists)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())


def watch_pool(engine: Engine) -> None:
    """Keep the pool gauges up to date from the engine's pool events."""
    from sqlalchemy import event

    pool = engine.pool
    capacity = getattr(pool, "size", lambda: 0)() + max(getattr(pool, "_max_overflow", 0), 0)
    POOL_CAPACITY.inc(capacity)

    @event.listens_for(engine, "checkout")
    def _checkout(*_: object) -> None:
        POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_: object) -> None:
        POOL_IN_USE.dec()


class DatabaseCollector:
    """Hazard and import figures read from the database at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """One query; on a database error, gis_database_up 0 and nothing else."""
        up = GaugeMetricFamily("gis_database_up", "1 when the scrape could read the database.")
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sql.METRICS).one()
        except Exception:  # the scrape must still answer while the database is down
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        open_ = GaugeMetricFamily(
            "gis_hazards_open", "Open hazards (cases) by status.", labels=["status"]
        )
        from gis_service.hazards.states import OPEN_STATUSES

        for status in OPEN_STATUSES:
            open_.add_metric([status], row.open_by_status.get(status, 0))
        yield open_
        yield GaugeMetricFamily(
            "gis_hazards_overdue", "Open hazards past their deadline.", value=row.overdue
        )
        runs = CounterMetricFamily(
            "gis_import_runs", "Committed imports, by layer.", labels=["layer"]
        )
        for layer in ("grids", "facilities", "people"):
            runs.add_metric([layer], row.import_runs.get(layer, 0))
        yield runs


def exposition(engine: Engine) -> bytes:
    """The text exposition of every metric: all workers' counters plus the database's."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine))
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(registry)
