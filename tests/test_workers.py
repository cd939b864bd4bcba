"""`gis-service serve --workers 2`: requests of one user that land on different worker
processes see one session, one login lock-out, one rate limit and one idempotency key."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gis_service.cli import app as cli_app
from gis_service.db.engine import make_engine
from tests.support.databases import SCHEMA, Databases

PASSWORD = "two-workers-password"
CLI = (sys.executable, "-m", "gis_service")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    url = databases.new("workers", SCHEMA)
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:  # one street to report hazards in
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, geom) VALUES ('W1', '双进程街道',"
                " 'street', ST_Multi(ST_MakeEnvelope(113.60, 34.70, 113.61, 34.71, 4326)))"
            )
        )
    engine.dispose()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env.update(
        DATABASE_URL=url,
        GIS_DATA_DIR=str(tmp_path_factory.mktemp("workers")),
        GIS_LOG_LEVEL="warning",
        GIS_LOGIN_MAX_FAILURES="3",
        GIS_LOGIN_SLOWDOWN_AFTER="100",
        GIS_LOGIN_IP_PER_MINUTE="8",
        GIS_ANON_REPORTS_PER_HOUR="3",
    )
    # In this process (a new interpreter spent 2-5 s importing the service for it), with
    # the server's environment: this process's GIS_ settings unset (None), as before.
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GIS_")}
    made = CliRunner().invoke(
        cli_app, ["users", "create", "two", "--role", "admin", "--password-stdin"],
        input=PASSWORD, env={**unset, **env},
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    proc = subprocess.Popen(
        # No demo district: these tests bring their own street and user, and the demo's load
        # (test_serve starts with it) was 25 s of this module's 32.
        [*CLI, "serve", "--port", str(port), "--workers", "2", "--no-demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, "serve --workers 2 exited"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base, url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def two(server: tuple[str, str]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two keep-alive connections held by two different worker processes."""
    base = server[0]
    clients: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 60
    while len(clients) < 2 and time.monotonic() < deadline:
        client = httpx.Client(base_url=base, timeout=30)
        pid = client.get("/health").json()["worker"]
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        time.sleep(0.05)
    assert len(clients) == 2, "every connection went to the same worker"
    a, b = clients.values()
    # A keep-alive connection stays with the process that accepted it.
    assert a.get("/health").json()["worker"] != b.get("/health").json()["worker"]
    yield a, b
    a.close()
    b.close()


def test_a_session_made_on_one_worker_works_on_the_other(two) -> None:
    a, b = two
    r = a.post("/api/v1/auth/login", json={"username": "two", "password": PASSWORD})
    assert r.status_code == 200, r.text
    b.cookies.update(a.cookies)
    me = b.get("/api/v1/auth/me")
    assert me.status_code == 200 and (me.json()["kind"], me.json()["role"]) == ("user", "admin")
    a.cookies.clear()
    b.cookies.clear()


def test_failed_logins_on_both_workers_lock_the_account_once(two) -> None:
    a, b = two
    codes = [
        c.post("/api/v1/auth/login", json={"username": "two", "password": "wrong-password"})
        for c in (a, b, a)
    ]
    assert [r.status_code for r in codes] == [401, 401, 423]
    # Locked for everyone, whichever process answers, the right password too.
    r = b.post("/api/v1/auth/login", json={"username": "two", "password": PASSWORD})
    assert r.status_code == 423


def test_the_login_rate_limit_counts_across_workers(server, two) -> None:
    a, b = two
    # Start from an empty window, not too close to the end of its minute.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    engine = make_engine(server[1], pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rate_limits"))
    engine.dispose()
    # A name per try: sec counts failures of unknown names too (no username enumeration),
    # and three on one name would lock it (423) before the address limit is reached.
    statuses = [
        c.post(
            "/api/v1/auth/login", json={"username": f"nobody{i}", "password": "x" * 12}
        ).status_code
        for i, c in enumerate((a, b) * 5)
    ]
    # 8 a minute from one address, counted once: per-worker counts would allow 16.
    assert statuses == [401] * 8 + [429, 429]


def test_an_idempotent_report_and_the_report_limit_span_workers(two) -> None:
    a, b = two
    body = {
        "category": "camera_fault",
        "lon": 113.605,
        "lat": 34.705,
        "description": "两个进程各收到一次同一个上报",
    }
    key = {"Idempotency-Key": "two-workers-report-1"}
    first = a.post("/api/v1/hazards", json=body, headers=key)
    again = b.post("/api/v1/hazards", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code in (200, 201) and again.json()["id"] == first.json()["id"]
    # 2 of the 3 anonymous reports an address may make this hour are spent.
    third = b.post("/api/v1/hazards", json={**body, "description": "第三个"})
    fourth = a.post("/api/v1/hazards", json={**body, "description": "第四个"})
    assert third.status_code == 201 and fourth.status_code == 429
