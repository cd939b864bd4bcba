"""Which async driver for the hot reads: asyncpg or psycopg 3 (AsyncConnectionPool)?

    .venv/bin/python bench/driver_choice.py [--data-dir var-bench] [--seconds 10] [--rounds 3]

A minimal Starlette app per driver (one uvicorn worker, a pool of 4 connections, statements
prepared by the driver) answers our own locate SQL for random points of the city dataset
(build it with bench/api_vs_tipg.py first); wrk -c4 drives each in turn, alternating.
Prints requests/s and p50 per driver (medians). psycopg 3 is not a dependency of the
service: pip install 'psycopg[binary,pool]' into the venv to run this.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LON0, LAT0 = 113.70, 34.62
LON1, LAT1 = LON0 + 15 / 91.40, LAT0 + 12 / 110.574
UVICORN = (sys.executable, "-m", "uvicorn")
WRK = ("wrk", "-t1", "-c4")

APP = """
import os
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from gis_service.grids import sql
from gis_service.db.reads import _BIND, compile_sql as _compile

DRIVER = os.environ["BENCH_DRIVER"]
SOCKET = os.environ["BENCH_PG_SOCKET"]
ST = _compile(sql.LOCATE.text)  # $1..$n for asyncpg
PSQL = _BIND.sub(lambda m: f"%({m.group(1)})s", sql.LOCATE.text)  # %(name)s for psycopg
pool = None


import contextlib


@contextlib.asynccontextmanager
async def lifespan(app):
    await startup()
    yield


async def startup():
    global pool
    if DRIVER == "asyncpg":
        import asyncpg
        async def no_reset(conn):
            pass  # as in gis_service.db.reads: read connections keep no session state

        pool = await asyncpg.create_pool(
            host=SOCKET, user="postgres", database="gis", min_size=4, max_size=4,
            reset=no_reset,
        )
    else:
        from psycopg_pool import AsyncConnectionPool
        pool = AsyncConnectionPool(
            f"host={SOCKET} user=postgres dbname=gis", min_size=4, max_size=4, open=False,
            kwargs={"prepare_threshold": 0, "autocommit": True},
        )
        await pool.open()


async def locate(request):
    q = request.query_params
    params = {"lon": float(q["lon"]), "lat": float(q["lat"]), "at": None,
              "private_all": False, "private_scope": None}
    if DRIVER == "asyncpg":
        async with pool.acquire() as conn:
            body = await conn.fetchval(ST.sql, *[params[k] for k in ST.order])
    else:
        async with pool.connection() as conn:
            cur = await conn.execute(PSQL, params)
            row = await cur.fetchone()
            body = row[0] if row else None
    if body is None:
        return Response(b'{"code": "not_found"}', 404, media_type="application/json")
    return Response(body.encode(), media_type="application/json")


app = Starlette(routes=[Route("/locate", locate)], lifespan=lifespan)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var-bench")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ["GIS_DATA_DIR"] = str(args.data_dir.resolve())
    from gis_service.config import Settings
    from gis_service.db.engine import cluster_for

    socket_dir = str(cluster_for(Settings()).socket_dir)
    rng = random.Random(5)
    urls = [
        f"/locate?lon={rng.uniform(LON0, LON1):.6f}&lat={rng.uniform(LAT0, LAT1):.6f}"
        for _ in range(500)
    ]
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "driverapp.py").write_text(APP)
        Path(tmp, "urls.txt").write_text("\n".join(urls) + "\n")
        Path(tmp, "urls.lua").write_text(
            'local urls = {}\nfor line in io.lines(os.getenv("BENCH_URLS")) do'
            " urls[#urls + 1] = line end\nlocal i = 0\nrequest = function()\n"
            '  i = i % #urls + 1\n  return wrk.format("GET", urls[i])\nend\n'
        )
        res: dict[str, list[tuple[float, float]]] = {"asyncpg": [], "psycopg": []}
        for rnd in range(args.rounds):
            for driver in res:
                port = 18000 + rnd * 2 + (driver == "psycopg")
                env = {
                    **os.environ,
                    "BENCH_DRIVER": driver,
                    "BENCH_PG_SOCKET": socket_dir,
                    "PYTHONPATH": f"{tmp}:{ROOT}",
                }
                proc = subprocess.Popen(
                    [*UVICORN, "driverapp:app", "--port", str(port), "--log-level", "warning"],
                    env=env,
                    cwd=tmp,
                )
                try:
                    base = f"http://127.0.0.1:{port}"
                    for _ in range(100):
                        try:
                            if httpx.get(base + urls[0], timeout=2).status_code in (200, 404):
                                break
                        except httpx.HTTPError:
                            time.sleep(0.2)
                    wrk_env = {**os.environ, "BENCH_URLS": str(Path(tmp, "urls.txt"))}
                    script = str(Path(tmp, "urls.lua"))
                    subprocess.run(
                        [*WRK, "-d2s", "-s", script, base],
                        env=wrk_env,
                        capture_output=True,
                        check=True,
                    )
                    out = subprocess.run(
                        [*WRK, f"-d{args.seconds}s", "--latency", "-s", script, base],
                        env=wrk_env,
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                m = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
                p50 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
                res[driver].append((rps, p50))
                print(f"round {rnd + 1} {driver:8} {rps:.0f} req/s, p50 {p50:.2f} ms", flush=True)
    for driver, runs in res.items():
        print(
            f"{driver}: {statistics.median(r[0] for r in runs):.0f} req/s, "
            f"p50 {statistics.median(r[1] for r in runs):.2f} ms (median of {len(runs)})"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
