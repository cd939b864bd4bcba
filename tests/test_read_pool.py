"""The read pool (gis_service.db.pool): what asyncpg's Pool guaranteed, kept at less cost.

Each test drives a real pool on the session's cluster and checks one promise: the size
bound, a waiter that is served, a connection the server closed or a read left mid-protocol
(cancelled, timed out) never lent again, a server error that keeps its connection, idle
connections retired, and a closed pool refusing new reads.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from gis_service.db.pool import ReadPool
from gis_service.db.reads import connect_kwargs
from tests.support.aio import run_async


def _connect(db_url: str):
    kwargs = connect_kwargs(db_url)
    return lambda: asyncpg.connect(**kwargs, statement_cache_size=16, timeout=5)


PID = "SELECT pg_backend_pid()"


def test_never_more_connections_than_its_size_and_every_waiter_served(db_url: str) -> None:
    async def go() -> tuple[set[int], int]:
        pool = await ReadPool.create(_connect(db_url), min_size=0, max_size=2)
        pids = await asyncio.gather(
            *(pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)") for _ in range(10))
        )
        opened = len(pool._open)
        await pool.close()
        return set(pids), opened

    pids, opened = run_async(go())
    assert len(pids) == 2 and opened == 2


def test_a_connection_the_server_ended_is_not_lent_again(db_url: str) -> None:
    async def go() -> tuple[int, int]:
        pool = await ReadPool.create(_connect(db_url), min_size=1, max_size=1)
        first = await pool.fetchval(PID)
        killer = await _connect(db_url)()
        assert await killer.fetchval("SELECT pg_terminate_backend($1, 5000)", first)
        await killer.close()
        for _ in range(50):  # the loop sees the socket close on its next poll
            if pool._idle[-1][0].is_closed():
                break
            await asyncio.sleep(0.01)
        second = await pool.fetchval(PID)
        await pool.close()
        return first, second

    first, second = run_async(go())
    assert first != second


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
def test_a_read_left_mid_protocol_is_dropped_not_reused(db_url: str, how: str) -> None:
    async def go() -> tuple[int, int, int, float]:
        pool = await ReadPool.create(_connect(db_url), min_size=0, max_size=1)
        first = await pool.fetchval(PID)
        if how == "cancelled":
            task = asyncio.ensure_future(pool.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(asyncio.TimeoutError):
                await pool.fetchval("SELECT pg_sleep(5)", timeout=0.2)
        started = time.monotonic()
        second = await pool.fetchval(PID)
        waited = time.monotonic() - started
        value = await pool.fetchval("SELECT $1::int + 1", 41)
        await pool.close()
        return first, second, value, waited

    first, second, value, waited = run_async(go())
    # A fresh connection answers at once, and answers its own question (the old one would
    # still be busy with pg_sleep or be mid-cancel).
    assert second != first and value == 42 and waited < 2


def test_a_server_error_keeps_its_connection(db_url: str) -> None:
    async def go() -> tuple[int, int]:
        pool = await ReadPool.create(_connect(db_url), min_size=0, max_size=1)
        first = await pool.fetchval(PID)
        with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
            await pool.fetchval("SELECT 1 / 0")
        second = await pool.fetchval(PID)
        await pool.close()
        return first, second

    first, second = run_async(go())
    assert first == second


def test_idle_connections_are_retired_and_a_closed_pool_refuses(db_url: str) -> None:
    async def go() -> tuple[int, int, bool]:
        pool = ReadPool(_connect(db_url), max_size=2, idle_lifetime=0.1)
        a, b = await asyncio.gather(
            pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)"),
            pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)"),
        )
        await asyncio.sleep(0.2)
        await pool.fetchval(PID)  # its return retires the other, idle past its lifetime
        kept = len(pool._open)
        await pool.close()
        refused = False
        try:
            await pool.fetchval(PID)
        except asyncpg.exceptions.InterfaceError:
            refused = True
        return a != b, kept, refused

    two, kept, refused = run_async(go())
    assert two and kept == 1 and refused


def test_statements_marked_generic_keep_one_plan_and_others_are_planned_per_call(
    db_url: str,
) -> None:
    from sqlalchemy import text

    from gis_service.db.reads import GENERIC_PLAN, Reads
    from gis_service.facilities.sql import FILTERS, facility_list

    mode = text("SELECT current_setting('plan_cache_mode')")

    async def go() -> tuple[str, str]:
        reads = Reads(db_url, pool_size=2)
        await reads.start()
        try:
            marked = mode.execution_options(**{GENERIC_PLAN: True})
            return await reads.fetchval(marked, {}), await reads.fetchval(mode, {})
        finally:
            await reads.close()

    assert run_async(go()) == ("force_generic_plan", "auto")
    # Only the plain bbox page is marked: every other filter's plan depends on its values.
    marked = {
        frozenset(given)
        for given in ({"bbox"}, {"bbox", "types"}, {"near"}, {"grid"}, {"q"}, set(), FILTERS)
        if facility_list(frozenset(given))[0].get_execution_options().get(GENERIC_PLAN)
    }
    assert marked == {frozenset({"bbox"})}
