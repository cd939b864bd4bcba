"""What a borrow from the read pool costs the worker: asyncpg's Pool against ours.

    .venv/bin/python bench/read_pool.py [--data-dir var-bench] [--reads 3000] [--rounds 5]

Runs our locate statement for random points of the city dataset (build it with
bench/api_vs_tipg.py first) N times in a row, in one process on uvloop, three ways,
alternating round by round: through asyncpg's Pool (reset skipped, as the service used it
before), through gis_service.db.pool.ReadPool, and on one held connection (the floor).
Prints the worker's CPU time per read (user + system of this process, so a busy machine
moves it less than wall time) for each, medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LON0, LAT0 = 113.70, 34.62
LON1, LAT1 = LON0 + 15 / 91.40, LAT0 + 12 / 110.574


async def _no_reset(_: asyncpg.Connection) -> None:
    return None


async def measure(url: str, reads: int, rounds: int) -> dict[str, list[float]]:
    from gis_service.db.pool import ReadPool
    from gis_service.db.reads import compile_sql, connect_kwargs
    from gis_service.grids import sql

    st = compile_sql(sql.LOCATE.text)
    rng = random.Random(20261201)
    args = [
        st.args(
            {
                "lon": rng.uniform(LON0, LON1),
                "lat": rng.uniform(LAT0, LAT1),
                "at": None,
                "private_all": False,
                "private_scope": None,
                "private_person": None,
            }
        )
        for _ in range(500)
    ]
    kwargs = connect_kwargs(url)
    theirs = await asyncpg.create_pool(
        **kwargs, min_size=2, max_size=2, reset=_no_reset, statement_cache_size=512
    )
    ours = await ReadPool.create(
        lambda: asyncpg.connect(**kwargs, statement_cache_size=512), min_size=2, max_size=2
    )
    held = await asyncpg.connect(**kwargs, statement_cache_size=512)
    ways = {"asyncpg Pool": theirs.fetchval, "ReadPool": ours.fetchval, "held": held.fetchval}
    out: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, fetchval in ways.items():
            for a in args[:50]:
                await fetchval(st.sql, *a)
            t0 = time.process_time()
            for i in range(reads):
                await fetchval(st.sql, *args[i % len(args)])
            out[name].append(1e6 * (time.process_time() - t0) / reads)
    await theirs.close()
    await ours.close()
    await held.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var-bench")
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ["GIS_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ["GIS_LOAD_DEMO"] = "false"
    from gis_service.config import Settings
    from gis_service.runtime import prepare

    prepared = prepare(Settings(), load_demo=False)
    url = prepared.engine.url.render_as_string(hide_password=False)
    prepared.engine.dispose()
    print(f"load average before: {os.getloadavg()}")
    out = uvloop.run(measure(url, args.reads, args.rounds))
    floor = statistics.median(out["held"])
    for name, values in out.items():
        med = statistics.median(values)
        print(
            f"{name:13} CPU per read: median {med:6.1f} µs "
            f"({', '.join(f'{v:.0f}' for v in values)}); borrow costs {med - floor:5.1f} µs"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
