"""Every write route writes its audit row, in the same transaction as the change it records.

The routes are enumerated from the app: an unsafe route (POST, PUT, PATCH, DELETE) without a
recipe here fails, so a new write route cannot be added without showing its audit row. For
each, the recipe makes one successful call; every audit row it added must name an object
whose row was last written by the very transaction that wrote the audit row (PostgreSQL
gives both rows the same ``xmin``), and at least one row must be added.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.auth import service as auth_service
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.hazards import receipts
from gis_service.http.routes import iter_routes
from tests.support.authkit import (
    PASSWORD,
    Scopes,
    app_settings,
    bearer_for,
    find_scopes,
    key_for,
    make_user,
)
from tests.support.databases import DEMO, Databases

_APP = create_app(Settings(database_url="postgresql+psycopg2://nobody@/none", load_demo=False))
UNSAFE = sorted(
    (method, r.path)
    for r in iter_routes(_APP)
    if r.is_api
    for method in r.methods & {"POST", "PUT", "PATCH", "DELETE"}
)
# POSTs that only read (a batch sent as a body): nothing to audit.
READS_BY_POST = {("POST", "/api/v1/locate")}
# Which table holds the object an audit row names.
TABLES = {
    "hazard": "hazards",
    "user": "users",
    "auth_token": "auth_tokens",
    "api_key": "api_keys",
    "import_run": "import_runs",
    "whistle_call": "whistle_calls",
    "service_order": "service_orders",
    "volunteer": "volunteers",
    "partner_unit": "partner_units",
    "person": "people",
    "grid_assignment": "grid_assignments",
}


@dataclass
class Ctx:
    """The app, the database and a few known objects."""

    client: TestClient
    engine: Engine
    settings: Settings
    scopes: Scopes
    admin: dict
    category: str

    def admin_headers(self) -> dict[str, str]:
        return bearer_for(self.engine, self.settings, self.admin["id"])

    def version(self, hazard_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT version FROM hazards WHERE id = :id"), {"id": hazard_id}
            ).scalar_one()

    def point(self, grid_id: int) -> tuple[float, float]:
        with self.engine.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                        " FROM grids WHERE id = :g) x"
                    ),
                    {"g": grid_id},
                ).one()
            )


@pytest.fixture(scope="module")
def ctx(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    url = databases.new("audit", DEMO)
    engine = make_engine(url, pool_size=2)
    settings = app_settings(url, tmp_path_factory.mktemp("audit-data"))
    with engine.connect() as conn:
        category = conn.execute(
            text("SELECT code FROM hazard_categories WHERE active ORDER BY code LIMIT 1")
        ).scalar_one()
    with TestClient(create_app(settings)) as client:
        yield Ctx(
            client, engine, settings, find_scopes(engine), make_user(engine, "admin"), category
        )
    engine.dispose()


def _user(c: Ctx) -> dict:
    return make_user(c.engine, "viewer", grid=c.scopes.community)


def _report(c: Ctx) -> int:
    lon, lat = c.point(c.scopes.grid)
    r = c.client.post(
        "/api/v1/hazards",
        json={"category": c.category, "lon": lon, "lat": lat, "description": "审计测试"},
        headers=c.admin_headers(),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _redrawn_for_reassign(c: Ctx) -> None:
    """Rename the grid that holds an open hazard: its hazards then need relinking."""
    r = c.client.get(
        "/api/v1/exports/grids",
        params={"format": "geojson", "root": _code(c, c.scopes.grid)},
        headers=c.admin_headers(),
    )
    doc = r.json()
    doc["features"] = [f for f in doc["features"] if f["properties"]["level"] == "grid"]
    doc["features"][0]["properties"]["name"] = f"重绘 {uuid.uuid4().hex[:4]}"
    r = c.client.post(
        "/api/v1/imports",
        headers=c.admin_headers(),
        files={"file": ("g.geojson", json.dumps(doc).encode())},
        data={"update": "true"},
    )
    assert r.status_code == 200 and r.json()["status"] == "imported", r.text


def _code(c: Ctx, grid_id: int) -> str:
    with c.engine.connect() as conn:
        return conn.execute(text("SELECT code FROM grids WHERE id = :id"), {"id": grid_id}).scalar()


# A recipe does its set-up and returns the one request under test, still to be made.
Request = Callable[[], Any]
Recipe = Callable[[Ctx], Request]


def _import(c: Ctx) -> Request:
    r = c.client.get(
        "/api/v1/exports/grids",
        params={"format": "geojson", "root": _code(c, c.scopes.grid)},
        headers=c.admin_headers(),
    )
    doc = r.json()
    doc["features"] = doc["features"][-1:]
    doc["features"][0]["properties"]["name"] = f"审计 {uuid.uuid4().hex[:4]}"
    return lambda: c.client.post(
        "/api/v1/imports",
        headers=c.admin_headers(),
        files={"file": ("g.geojson", json.dumps(doc).encode())},
        data={"update": "true"},
    )


def _reassign(c: Ctx) -> Request:
    _redrawn_for_reassign(c)
    return lambda: c.client.post("/api/v1/grids/reassign", headers=c.admin_headers())


def _report_request(c: Ctx) -> Request:
    lon, lat = c.point(c.scopes.grid)
    return lambda: c.client.post(
        "/api/v1/hazards",
        json={"category": c.category, "lon": lon, "lat": lat, "description": "审计测试"},
    )


def _action(c: Ctx) -> Request:
    hid = _report(c)
    return lambda: c.client.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "accept", "version": c.version(hid)},
        headers=c.admin_headers(),
    )


def _login(c: Ctx) -> Request:
    username = _user(c)["username"]
    return lambda: c.client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )


def _logout(c: Ctx) -> Request:
    headers = bearer_for(c.engine, c.settings, _user(c)["id"])
    return lambda: c.client.post("/api/v1/auth/logout", headers=headers)


def _token(c: Ctx) -> Request:
    return lambda: c.client.post(
        "/api/v1/auth/tokens", json={"name": "审计"}, headers=c.admin_headers()
    )


def _revoke_token(c: Ctx) -> Request:
    with c.engine.connect() as conn, conn.begin():
        token_id = auth_service.issue_token(conn, c.settings, c.admin["id"], "bearer")[0]
    return lambda: c.client.delete(f"/api/v1/auth/tokens/{token_id}", headers=c.admin_headers())


def _new_user(c: Ctx) -> Request:
    body = {
        "username": f"audit-{uuid.uuid4().hex[:8]}",
        "display_name": "审计",
        "password": PASSWORD,
        "role": "viewer",
        "grid": c.scopes.community,
    }
    return lambda: c.client.post("/api/v1/users", json=body, headers=c.admin_headers())


def _user_action(action: str) -> Recipe:
    def recipe(c: Ctx) -> Request:
        user_id = _user(c)["id"]
        return lambda: c.client.post(f"/api/v1/users/{user_id}/{action}", headers=c.admin_headers())

    return recipe


def _new_key(c: Ctx) -> Request:
    body = {"name": f"审计 {uuid.uuid4().hex[:4]}", "scopes": ["read"]}
    return lambda: c.client.post("/api/v1/keys", json=body, headers=c.admin_headers())


def _revoke_key(c: Ctx) -> Request:
    key, _ = key_for(c.engine, ["read"])
    return lambda: c.client.delete(f"/api/v1/keys/{key['id']}", headers=c.admin_headers())


def _open311(c: Ctx) -> Request:
    _, secret = key_for(c.engine, ["open311"])
    lon, lat = c.point(c.scopes.grid)
    form = {"api_key": secret, "service_code": c.category, "lat": lat, "long": lon}
    return lambda: c.client.post("/open311/v2/requests.json", data=form)


def _receipt_callback(c: Ctx) -> Request:
    hid = _report(c)
    with c.engine.begin() as conn:
        token = receipts.issue(conn, hid)
        # Closed behind the service's back: the callback comes after 结案.
        conn.execute(
            text("UPDATE hazards SET status = 'closed', closed_at = now() WHERE id = :id"),
            {"id": hid},
        )
    return lambda: c.client.post(f"/api/v1/receipts/{token}/callback", json={"rating": "satisfied"})


def _department(c: Ctx) -> str:
    with c.engine.connect() as conn:
        return conn.execute(
            text("SELECT code FROM departments WHERE active ORDER BY code LIMIT 1")
        ).scalar_one()


def _whistle_body(c: Ctx) -> dict:
    return {"parties": [{"department": _department(c)}], "report_in": "2 工作时", "act": "3 工作日"}


def _whistle(c: Ctx) -> Request:
    hid = _report(c)
    body = _whistle_body(c)
    return lambda: c.client.post(
        f"/api/v1/hazards/{hid}/whistles", json=body, headers=c.admin_headers()
    )


def _whistle_action(c: Ctx) -> Request:
    hid = _report(c)
    r = c.client.post(
        f"/api/v1/hazards/{hid}/whistles", json=_whistle_body(c), headers=c.admin_headers()
    )
    assert r.status_code == 201, r.text
    call_id = r.json()["calls"][0]["id"]
    return lambda: c.client.post(
        f"/api/v1/whistles/{call_id}/actions",
        json={"action": "report_in", "version": 1},
        headers=c.admin_headers(),
    )


def _order_body(c: Ctx) -> dict:
    lon, lat = c.point(c.scopes.grid)
    return {"service_type": "home_certification", "lon": lon, "lat": lat, "description": "审计"}


def _order(c: Ctx) -> Request:
    body = _order_body(c)
    return lambda: c.client.post("/api/v1/orders", json=body, headers=c.admin_headers())


def _order_action(c: Ctx) -> Request:
    r = c.client.post("/api/v1/orders", json=_order_body(c), headers=c.admin_headers())
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    return lambda: c.client.post(
        f"/api/v1/orders/{order_id}/actions",
        json={"action": "comment", "note": "审计", "version": 1},
        headers=c.admin_headers(),
    )


def _registry_body(c: Ctx) -> dict:
    name = f"审计 {uuid.uuid4().hex[:6]}"
    return {"name": name, "grid": c.scopes.community}


def _register(path: str) -> Recipe:
    def recipe(c: Ctx) -> Request:
        body = _registry_body(c)
        return lambda: c.client.post(f"/api/v1/{path}", json=body, headers=c.admin_headers())

    return recipe


def _patch_registry(path: str) -> Recipe:
    def recipe(c: Ctx) -> Request:
        r = c.client.post(f"/api/v1/{path}", json=_registry_body(c), headers=c.admin_headers())
        assert r.status_code == 201, r.text
        row_id = r.json()["id"]
        return lambda: c.client.patch(
            f"/api/v1/{path}/{row_id}", json={"note": "审计"}, headers=c.admin_headers()
        )

    return recipe


def _patch_user(c: Ctx) -> Request:
    user_id = _user(c)["id"]
    body = {"display_name": f"审计 {uuid.uuid4().hex[:4]}", "reason": "审计"}
    return lambda: c.client.patch(f"/api/v1/users/{user_id}", json=body, headers=c.admin_headers())


def _set_password(c: Ctx) -> Request:
    user_id = _user(c)["id"]
    return lambda: c.client.post(
        f"/api/v1/users/{user_id}/password",
        json={"password": PASSWORD, "reason": "审计"},
        headers=c.admin_headers(),
    )


def _person(c: Ctx) -> int:
    r = c.client.post(
        "/api/v1/people",
        json={"name": f"审计{uuid.uuid4().hex[:4]}", "grid": c.scopes.community, "reason": "审计"},
        headers=c.admin_headers(),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _new_person(c: Ctx) -> Request:
    body = {"name": f"审计{uuid.uuid4().hex[:4]}", "grid": c.scopes.community, "reason": "审计"}
    return lambda: c.client.post("/api/v1/people", json=body, headers=c.admin_headers())


def _patch_person(c: Ctx) -> Request:
    pid = _person(c)
    return lambda: c.client.patch(
        f"/api/v1/people/{pid}",
        json={"notes": f"审计 {uuid.uuid4().hex[:4]}", "reason": "审计"},
        headers=c.admin_headers(),
    )


def _current_grid(c: Ctx) -> int:
    """The current version of the scope's grid (the import recipes redraw it)."""
    with c.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id FROM grids WHERE valid_to IS NULL"
                " AND code = (SELECT code FROM grids WHERE id = :g)"
            ),
            {"g": c.scopes.grid},
        ).scalar_one()


def _assignment_body(c: Ctx) -> dict:
    return {"person_id": _person(c), "role": "building_head", "reason": "审计"}


def _assign(c: Ctx) -> Request:
    body = _assignment_body(c)
    return lambda: c.client.post(
        f"/api/v1/grids/{_current_grid(c)}/assignments", json=body, headers=c.admin_headers()
    )


def _replace_leader(c: Ctx) -> Request:
    body = {"person_id": _person(c), "reason": "审计"}
    return lambda: c.client.put(
        f"/api/v1/grids/{_current_grid(c)}/leader", json=body, headers=c.admin_headers()
    )


def _end_assignment(c: Ctx) -> Request:
    r = c.client.post(
        f"/api/v1/grids/{_current_grid(c)}/assignments",
        json=_assignment_body(c),
        headers=c.admin_headers(),
    )
    assert r.status_code == 201, r.text
    aid = r.json()["started"][0]
    return lambda: c.client.post(
        f"/api/v1/assignments/{aid}/end", json={"reason": "审计"}, headers=c.admin_headers()
    )


RECIPES: dict[tuple[str, str], Recipe] = {
    ("POST", "/api/v1/imports"): _import,
    ("POST", "/api/v1/grids/reassign"): _reassign,
    ("POST", "/api/v1/hazards"): _report_request,
    ("POST", "/api/v1/hazards/{hazard_id}/actions"): _action,
    ("POST", "/api/v1/auth/login"): _login,
    ("POST", "/api/v1/auth/logout"): _logout,
    ("POST", "/api/v1/auth/tokens"): _token,
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): _revoke_token,
    ("POST", "/api/v1/users"): _new_user,
    ("POST", "/api/v1/users/{user_id}/disable"): _user_action("disable"),
    ("POST", "/api/v1/users/{user_id}/enable"): _user_action("enable"),
    ("POST", "/api/v1/users/{user_id}/unlock"): _user_action("unlock"),
    ("PATCH", "/api/v1/users/{user_id}"): _patch_user,
    ("POST", "/api/v1/users/{user_id}/password"): _set_password,
    ("POST", "/api/v1/people"): _new_person,
    ("PATCH", "/api/v1/people/{person_id}"): _patch_person,
    ("POST", "/api/v1/grids/{grid_id}/assignments"): _assign,
    ("PUT", "/api/v1/grids/{grid_id}/leader"): _replace_leader,
    ("POST", "/api/v1/assignments/{assignment_id}/end"): _end_assignment,
    ("POST", "/api/v1/keys"): _new_key,
    ("DELETE", "/api/v1/keys/{key_id}"): _revoke_key,
    ("POST", "/open311/v2/requests.{fmt}"): _open311,
    ("POST", "/api/v1/receipts/{token}/callback"): _receipt_callback,
    ("POST", "/api/v1/hazards/{hazard_id}/whistles"): _whistle,
    ("POST", "/api/v1/whistles/{call_id}/actions"): _whistle_action,
    ("POST", "/api/v1/orders"): _order,
    ("POST", "/api/v1/orders/{order_id}/actions"): _order_action,
    ("POST", "/api/v1/volunteers"): _register("volunteers"),
    ("PATCH", "/api/v1/volunteers/{volunteer_id}"): _patch_registry("volunteers"),
    ("POST", "/api/v1/partners"): _register("partners"),
    ("PATCH", "/api/v1/partners/{partner_id}"): _patch_registry("partners"),
}


def _last_audit_id(c: Ctx) -> int:
    with c.engine.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


@pytest.mark.parametrize(("method", "path"), UNSAFE, ids=[f"{m} {p}" for m, p in UNSAFE])
def test_every_write_route_audits_in_its_transaction(ctx: Ctx, method: str, path: str) -> None:
    if (method, path) in READS_BY_POST:
        pytest.skip("a read sent as a body")
    recipe = RECIPES.get((method, path))
    if recipe is None:
        pytest.fail(
            f"No recipe for {method} {path}: add one to RECIPES in tests/test_audit_writes.py "
            "that makes one successful call, so its audit row is checked."
        )
    request = recipe(ctx)  # set-up first: its own audit rows come before the mark
    mark = _last_audit_id(ctx)
    r = request()
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, action, object_type, object_id, xmin::text AS xid FROM audit_log"
                " WHERE id > :mark ORDER BY id"
            ),
            {"mark": mark},
        ).all()
        assert rows, f"{method} {path} wrote no audit row"
        for row in rows:
            table = TABLES.get(row.object_type)
            assert table, f"unknown object_type {row.object_type!r}: add it to TABLES"
            xid = conn.execute(
                text(f"SELECT xmin::text FROM {table} WHERE id::text = :id"),
                {"id": row.object_id},
            ).scalar()
            assert xid == row.xid, (
                f"{method} {path}: the audit row {row.action} {row.object_type} "
                f"{row.object_id} was written by transaction {row.xid}, the object's row by {xid}"
            )


def test_recipes_name_only_routes_that_exist() -> None:
    stale = sorted(set(RECIPES) - set(UNSAFE))
    assert not stale, f"recipes for routes that no longer exist: {stale}"
    assert Path(__file__).exists()
