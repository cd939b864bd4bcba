"""The read path of the hot routes: pools of asyncpg connections (db.pool) on the primary and on
healthy replicas.

Why asyncpg (bench/driver_choice.py, our locate SQL behind a minimal app, wrk -c4): it
answered more requests per second than psycopg 3's AsyncConnectionPool on this machine, it
prepares and caches every statement per connection by itself (so the hand-written
prepared-statement cache went away), and it is what tipg, our yardstick, uses.

Statements are the same SQLAlchemy ``text()`` objects the domains keep in their sql.py, with
``:name`` parameters rewritten once to ``$n``. Each read is one round trip in autocommit; the
database builds the JSON (or the tile) and the text is passed through untouched.

Routing: with GIS_REPLICA_URLS, a read goes to a healthy replica, in turn; a replica that
does not answer, or that lags more than GIS_REPLICA_MAX_LAG_SECONDS behind the primary, is
skipped and the primary serves; a read that fails on a replica (it went down mid-request)
is run again on the primary, so the client never sees it. A client that has just written
carries the primary's WAL position of its write (cookie ``gis_lsn``); its reads go only
to replicas that have replayed that far, else to the primary: it reads its own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import asyncpg
from sqlalchemy import TextClause

from gis_service.db.limits import STATEMENT_TIMEOUT_S
from gis_service.db.pool import ReadPool

log = logging.getLogger(__name__)

# A :name bind parameter, but not the second colon of a ::cast.
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

# What a replica that went away mid-read raises; the read is then run on the primary.
_NODE_DOWN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    # A connection cut mid-query (the server stopping) leaves its protocol in a state that
    # asyncpg reports as "cannot switch to state …; another operation is in progress".
    asyncpg.exceptions.InternalClientError,
    # "canceling statement due to conflict with recovery" on a replica.
    asyncpg.exceptions.SerializationError,
)


class DatabaseUnavailable(ConnectionError):
    """The primary cannot be reached (restarting, stopped, socket gone): the error table maps
    ConnectionError to 503 database_unavailable, where asyncpg's own errors (an OSError for a
    missing socket, 57P03 while starting up) fell through to 500."""


# The session every read connection runs with. Parallel query is off: its workers take
# longer to start than a hot read takes, and on a busy server they queue behind each other.
SERVER_SETTINGS = {
    "timezone": "UTC",
    "statement_timeout": str(STATEMENT_TIMEOUT_S * 1000),
    "max_parallel_workers_per_gather": "0",
    "application_name": "gis-service reads",
}


# A statement whose plan does not depend on its parameters' values (a plain bbox page: an
# index scan whatever the box) marks itself ``text(…).execution_options(generic_plan=True)``
# and runs on connections that keep one generic plan per statement. PostgreSQL's own choice
# re-plans it on every call (its custom plans' cost estimates always win, as the box is
# known there): a quarter of such a page's backend CPU (a loop over the city data, one
# connection, alternating: 1.16 ms a page planned per call, 0.87 ms with one generic plan).
# Catch-all statements ("(:x IS NULL OR …)") must never be marked: their generic plan
# cannot use an index.
GENERIC_PLAN = "generic_plan"
GENERIC_SETTINGS = {**SERVER_SETTINGS, "plan_cache_mode": "force_generic_plan"}


@dataclass(frozen=True)
class Statement:
    """A statement rewritten for asyncpg: $n placeholders and the names in their order."""

    sql: str
    order: tuple[str, ...]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The values in placeholder order."""
        return [params[k] for k in self.order]


@lru_cache(maxsize=512)
def compile_sql(source: str) -> Statement:
    """``:name`` → ``$n`` (a name used twice keeps its number)."""
    order: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"${order.index(m.group(1)) + 1}"

    return Statement(_BIND.sub(placeholder, source), tuple(order))


def parse_lsn(text: str | None) -> int:
    """A WAL position 'X/Y' as a number (0 for none)."""
    if not text:
        return 0
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg connect() keywords from a libpq or SQLAlchemy URL (a socket folder as host=)."""
    url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    u = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(u.query).items()}
    return {
        "host": query.get("host") or u.hostname or "localhost",
        "port": int(query.get("port") or u.port or 5432),
        "user": unquote(u.username) if u.username else query.get("user", "postgres"),
        "password": unquote(u.password) if u.password else query.get("password"),
        "database": (u.path or "/").lstrip("/") or query.get("dbname", "postgres"),
    }


@dataclass
class Node:
    """One server reads may go to, with what the health check last saw of it."""

    name: str
    url: str
    primary: bool
    # One pool per event loop: a pool's connections belong to the loop that made them. A
    # worker runs one loop; tests that drive one app from several loops get one each.
    pools: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    # The same for statements that ask for a generic plan (see GENERIC_PLAN).
    generic_pools: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    healthy: bool = True
    replay_lsn: int = 0
    lag_s: float = 0.0
    checked_at: float = field(default_factory=time.monotonic)


class Reads:
    """The read pools of one worker process."""

    def __init__(
        self,
        primary_url: str,
        replica_urls: Sequence[str] = (),
        pool_size: int = 8,
        max_lag_s: float = 5.0,
        check_every_s: float = 1.0,
    ) -> None:
        self.primary = Node("primary", primary_url, primary=True)
        self.replicas = [
            Node(f"replica{i + 1}", url, primary=False) for i, url in enumerate(replica_urls)
        ]
        self.pool_size = pool_size
        self.max_lag_s = max_lag_s
        self.check_every_s = check_every_s
        self._turn = itertools.count()
        self._primary_lsns: deque[tuple[float, int]] = deque(maxlen=600)
        self._health: asyncio.Task | None = None

    # -- life cycle -----------------------------------------------------------------------
    async def _pool(self, node: Node, generic: bool = False) -> ReadPool:
        loop = asyncio.get_running_loop()
        pools = node.generic_pools if generic else node.pools
        pool = pools.get(loop)
        if pool is None:
            kwargs = connect_kwargs(node.url)
            settings = GENERIC_SETTINGS if generic else SERVER_SETTINGS

            def connect() -> Awaitable[asyncpg.Connection]:
                return asyncpg.connect(
                    **kwargs, server_settings=settings, statement_cache_size=512, timeout=5
                )

            pool = pools[loop] = await ReadPool.create(
                connect,
                min_size=1 if node.primary and not generic else 0,
                max_size=max(1, self.pool_size // 2) if generic else self.pool_size,
            )
        return pool

    async def start(self) -> None:
        """Open the primary's pool; with replicas, check them now and then every second."""
        await self._pool(self.primary)
        if self.replicas:
            await self.check()
            self._health = asyncio.create_task(self._check_forever())

    async def close(self) -> None:
        """Stop the health check and close every pool."""
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
        loop = asyncio.get_running_loop()
        for node in (self.primary, *self.replicas):
            for pools in (node.pools, node.generic_pools):
                for pool_loop, pool in list(pools.items()):
                    with contextlib.suppress(Exception):
                        if pool_loop is loop:
                            await asyncio.wait_for(pool.close(), 5)
                        else:
                            pool.terminate()
                pools.clear()

    # -- health ---------------------------------------------------------------------------
    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                await self.check()
            except Exception as exc:  # the loop must outlive any one failure
                log.warning("replica check failed: %s", exc)

    async def check(self) -> None:
        """Note the primary's WAL position, and each replica's replay position and lag."""
        now = time.monotonic()
        with contextlib.suppress(*_NODE_DOWN):
            pool = await self._pool(self.primary)
            lsn = parse_lsn(await pool.fetchval("SELECT pg_current_wal_lsn()::text", timeout=2))
            self._primary_lsns.append((now, lsn))
        for node in self.replicas:
            try:
                pool = await asyncio.wait_for(self._pool(node), 2)
                row = await pool.fetchrow(
                    "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn",
                    timeout=2,
                )
            except _NODE_DOWN as exc:
                if node.healthy:
                    log.warning("%s is down, reads go elsewhere: %s", node.name, exc)
                node.healthy = False
                continue
            node.replay_lsn = parse_lsn(row["lsn"])
            node.lag_s = self._lag(node.replay_lsn, now)
            was = node.healthy
            # A promoted replica is a primary of its own now, no longer a copy of ours.
            node.healthy = bool(row["standby"]) and node.lag_s <= self.max_lag_s
            node.checked_at = now
            if was != node.healthy:
                log.warning(
                    "%s is %s (lag %.1f s)",
                    node.name,
                    "back" if node.healthy else "skipped",
                    node.lag_s,
                )

    def _lag(self, replay_lsn: int, now: float) -> float:
        """Seconds since the primary first wrote past ``replay_lsn`` (0: caught up)."""
        for at, lsn in self._primary_lsns:
            if lsn > replay_lsn:
                return now - at
        return 0.0

    # -- reads ----------------------------------------------------------------------------
    def _route(self, min_lsn: int) -> list[Node]:
        """Healthy replicas that have replayed ``min_lsn``, in turn, then the primary."""
        ready = [n for n in self.replicas if n.healthy and n.replay_lsn >= min_lsn]
        if not ready:
            return [self.primary]
        k = next(self._turn) % len(ready)
        return [*ready[k:], *ready[:k], self.primary]

    async def _run(
        self, method: str, stmt: TextClause, params: Mapping[str, Any], min_lsn: int
    ) -> Any:
        st = compile_sql(stmt.text)
        args = st.args(params)
        generic = stmt.get_execution_options().get(GENERIC_PLAN, False)
        for node in self._route(min_lsn):
            try:
                pool = await self._pool(node, generic)
                return await getattr(pool, method)(st.sql, *args)
            except _NODE_DOWN as exc:
                if node.primary:
                    if isinstance(exc, asyncpg.exceptions.SerializationError):
                        raise
                    raise DatabaseUnavailable(f"the primary failed a read: {exc!r}") from exc
                log.warning("%s failed a read, the primary answers it: %s", node.name, exc)
                node.healthy = False
        raise AssertionError("unreachable: the primary is always last")  # pragma: no cover

    async def fetchval(self, stmt: TextClause, params: Mapping[str, Any], min_lsn: int = 0) -> Any:
        """The first column of the first row, or None."""
        return await self._run("fetchval", stmt, params, min_lsn)

    async def fetchrow(
        self, stmt: TextClause, params: Mapping[str, Any], min_lsn: int = 0
    ) -> asyncpg.Record | None:
        """The first row, or None."""
        return await self._run("fetchrow", stmt, params, min_lsn)

    async def on_primary(self, stmt: TextClause, params: Mapping[str, Any]) -> Any:
        """A statement that writes (the tile cache's store) or must see the newest data."""
        st = compile_sql(stmt.text)
        pool = await self._pool(self.primary)
        return await pool.fetchrow(st.sql, *st.args(params))

    async def current_lsn(self) -> int:
        """The primary's WAL position now: a client that just wrote reads from here on."""
        pool = await self._pool(self.primary)
        return parse_lsn(await pool.fetchval("SELECT pg_current_wal_lsn()::text"))


@dataclass(frozen=True)
class ReadDb:
    """The read pools as one request sees them: with the WAL position its client must see."""

    reads: Reads
    min_lsn: int = 0

    async def val(self, stmt: TextClause, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        return await self.reads.fetchval(stmt, params, self.min_lsn)

    async def row(self, stmt: TextClause, params: Mapping[str, Any]) -> asyncpg.Record | None:
        """The first row, or None."""
        return await self.reads.fetchrow(stmt, params, self.min_lsn)

    async def write(self, stmt: TextClause, params: Mapping[str, Any]) -> asyncpg.Record | None:
        """A statement that writes, on the primary (its first row)."""
        return await self.reads.on_primary(stmt, params)
