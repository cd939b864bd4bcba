"""A statement PostgreSQL cancels at the statement timeout is answered 504
``statement_timeout`` with a message asking for less, on the sync (psycopg2) and the async
(asyncpg) read path alike; an unreachable database stays 503 ``database_unavailable``.

The timeouts are real: PostgreSQL cancels a pg_sleep under a 50 ms statement_timeout, and the
errors go through the service's one error table (install_error_handlers)."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.db.engine import make_engine
from gis_service.db.reads import connect_kwargs
from gis_service.http.errors import install_error_handlers


def _app(db_url: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    engine = make_engine(db_url, pool_size=1)

    @app.get("/sync")
    def sync_read() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 50"))
            conn.execute(text("SELECT pg_sleep(5)"))
        return {}

    @app.get("/async")
    async def async_read() -> dict:
        conn = await asyncpg.connect(**connect_kwargs(db_url))
        try:
            await conn.execute("SET statement_timeout = 50")
            await conn.execute("SELECT pg_sleep(5)")
        finally:
            await conn.close()
        return {}

    @app.get("/down")
    def down() -> dict:
        gone = make_engine(db_url.replace("port=5432", "port=1"), pool_size=1)
        with gone.connect():
            pass
        return {}

    return app


def test_a_statement_timeout_is_504_asking_to_narrow(db_url: str) -> None:
    with TestClient(_app(db_url), raise_server_exceptions=False) as client:
        for path in ("/sync", "/async"):
            r = client.get(path)
            assert r.status_code == 504, (path, r.text)
            body = r.json()
            assert body["code"] == "statement_timeout", body
            assert "shorter period" in body["message"] and "smaller area" in body["message"]
            assert body["details"] == {"timeout_s": 60}
        r = client.get("/down")
        assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
