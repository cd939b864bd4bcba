"""SQL injection through every query parameter of every GET operation (as an admin, so the
admin lists are reached too), through path parameters, and through credentials.

Each attempt must end in a 4xx or an empty result, never a 500; afterwards every table is
still there with the same rows. The code only ever binds parameters; this proves it from the
outside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.authkit import app_settings, bearer_for, make_user
from tests.support.databases import DEMO, Databases

PAYLOADS = [
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DROP TABLE users; --",
    "x'); DELETE FROM hazards; --",
    "' UNION SELECT password_hash FROM users --",
    "%' OR 1=1 --",
    "$$; DROP TABLE grids; $$",
    "1)) OR ((1=1",
]
TABLES = ["grids", "people", "facilities", "hazards", "users", "api_keys", "auth_tokens"]

# Parameters that do not filter rows (so a 200 with every row is right): formats, paging,
# datums, projections of the output, and Open311's ignored jurisdiction.
NON_FILTERS = {"f", "crs", "limit", "offset", "jurisdiction_id", "properties", "geometry"}

_SCHEMA = create_app(
    Settings(database_url="postgresql+psycopg2://nobody@/none", load_demo=False)
).openapi()
GET_OPERATIONS = [
    (path, [p for p in op.get("parameters", []) if p.get("in") in ("query", "path")])
    for path, item in _SCHEMA["paths"].items()
    for method, op in item.items()
    if method == "get"
]
WITH_QUERY = [(p, ps) for p, ps in GET_OPERATIONS if any(x["in"] == "query" for x in ps)]


@pytest.fixture(scope="module")
def env(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = databases.new("inject", DEMO)
    data_dir: Path = tmp_path_factory.mktemp("inject-data")
    settings = app_settings(url, data_dir)
    engine = make_engine(url, pool_size=1)
    admin = make_user(engine, "admin")
    with TestClient(create_app(settings)) as client:
        yield {
            "engine": engine,
            "client": client,
            "headers": bearer_for(engine, settings, admin["id"]),
            "counts": _counts(engine),
        }
    engine.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def _path_values(params: list[dict]) -> dict[str, str]:
    """Plausible values for path parameters (so the query parameters are reached)."""
    values = {}
    for p in params:
        if p["in"] != "path":
            continue
        name = p["name"]
        values[name] = {
            "fmt": "json",
            "layer": "hazards_open",
            "collection_id": "grids_grid",
            "z": "14",
            "x": "13364",
            "y": "6490",
        }.get(name, "1")
    return values


def _row_count(body: Any) -> int | None:
    """How many rows a JSON answer carries, if it is a list of some kind."""
    if isinstance(body, list):
        return len(body)
    if not isinstance(body, dict):
        return None
    for key in ("features", "entries", "users", "keys", "results", "service_requests"):
        if isinstance(body.get(key), list):
            return len(body[key])
    return None


@pytest.mark.parametrize(("path", "params"), WITH_QUERY, ids=[p for p, _ in WITH_QUERY])
def test_query_parameters(env: dict, path: str, params: list[dict]) -> None:
    client: TestClient = env["client"]
    url = path
    for name, value in _path_values(params).items():
        url = url.replace("{" + name + "}", value)
    problems = []
    for param in params:
        if param["in"] != "query":
            continue
        name = param["name"]
        for payload in PAYLOADS:
            r = client.get(url, params={name: payload}, headers=env["headers"])
            where = f"GET {url}?{name}={payload!r} → {r.status_code} {r.text[:160]}"
            if r.status_code >= 500:
                problems.append(f"server error: {where}")
                continue
            if r.status_code >= 400 or name in NON_FILTERS:
                continue
            if r.status_code in (204, 304):
                continue
            try:
                rows = _row_count(r.json())
            except (ValueError, json.JSONDecodeError):
                rows = None
            if rows:
                problems.append(f"a filter with an injection string matched {rows} rows: {where}")
    assert not problems, "\n".join(problems[:15])


def test_path_parameters(env: dict) -> None:
    client: TestClient = env["client"]
    problems = []
    for path, params in GET_OPERATIONS:
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        base = _path_values(params)
        for name in names:
            for payload in PAYLOADS[:4]:
                url = path
                for other, value in base.items():
                    url = url.replace("{" + other + "}", payload if other == name else value)
                r = client.get(url, headers=env["headers"])
                if r.status_code >= 500 or r.status_code < 400:
                    problems.append(f"GET {url} → {r.status_code} {r.text[:120]}")
    assert not problems, "\n".join(problems[:15])


def test_credentials(env: dict) -> None:
    client: TestClient = env["client"]
    for payload in PAYLOADS:
        r = client.post("/api/v1/auth/login", json={"username": payload, "password": payload})
        assert r.status_code in (401, 422), r.text
        assert client.get("/api/v1/auth/me", headers={"X-API-Key": payload}).status_code == 401
        r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {payload}"})
        assert r.status_code == 401
        r = TestClient(client.app, cookies={"gis_session": payload}).get("/api/v1/auth/me")
        assert r.json()["kind"] == "anonymous"


def test_tables_intact(env: dict) -> None:
    # runs last in this module: everything above must have changed nothing
    after = _counts(env["engine"])
    before = env["counts"]
    assert {t: after[t] for t in TABLES if t != "auth_tokens"} == {
        t: before[t] for t in TABLES if t != "auth_tokens"
    }
    with env["engine"].connect() as conn:
        sample = conn.execute(text("SELECT count(*) FROM users WHERE role = 'admin'")).scalar()
    assert sample == 1
