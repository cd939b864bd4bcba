"""tipg, pointed at a Unix-socket PostgreSQL: run by bench/api_vs_tipg.py in tipg's own venv.

tipg validates DATABASE_URL as a URL with a host, which a socket folder is not; asyncpg
takes the socket folder as a ``host`` keyword, which tipg passes through to create_pool.
"""

import os

from tipg import main

_connect = main.connect_to_db


async def _connect_via_socket(app, **kwargs):
    await _connect(app, host=os.environ["BENCH_PG_SOCKET"], **kwargs)


main.connect_to_db = _connect_via_socket
app = main.app
