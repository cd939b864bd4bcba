"""Accounts: login and cookies, CSRF, bearer tokens, argon2, brute force, API keys, audit,
the users/keys CLI and the HTTP hardening (body cap, headers, CORS)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import argon2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gis_service.app import create_app
from gis_service.auth import audit, service
from gis_service.auth.passwords import needs_rehash, verify_password
from gis_service.auth.principal import ANONYMOUS, Principal
from gis_service.cli import app as cli_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.authkit import (
    PASSWORD,
    Scopes,
    app_settings,
    bearer_for,
    find_scopes,
    key_for,
    make_user,
)
from tests.support.clock import ManualClock
from tests.support.databases import DEMO, Databases

LOGIN = "/api/v1/auth/login"


@pytest.fixture(scope="module")
def url(databases: Databases) -> str:
    return databases.new("auth", DEMO)


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def scopes(engine: Engine) -> Scopes:
    return find_scopes(engine)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth-data")


@pytest.fixture(scope="module")
def client(url: str, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings(url, data_dir))) as c:
        yield c


@pytest.fixture(scope="module")
def admin(engine: Engine) -> dict:
    return make_user(engine, "admin")


@pytest.fixture(scope="module")
def admin_headers(engine: Engine, client: TestClient, admin: dict) -> dict[str, str]:
    return bearer_for(engine, client.app.state.settings, admin["id"])


def _login(client: TestClient, username: str, password: str = PASSWORD, ip: str | None = None):
    headers = {"X-Forwarded-For": ip} if ip else {}
    return client.post(LOGIN, json={"username": username, "password": password}, headers=headers)


def _fresh_ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


# ---- login, cookies, CSRF ----------------------------------------------------------------
def test_login_sets_httponly_samesite_cookies(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    fresh = TestClient(client.app)
    r = _login(fresh, user["username"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["username"] == user["username"]
    assert "password_hash" not in r.text
    assert r.headers["cache-control"] == "no-store"
    cookies = {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}
    session = cookies["gis_session"].lower()
    assert "httponly" in session and "samesite=lax" in session and "path=/" in session
    assert "secure" not in session  # cookie_secure defaults to false (plain http on a LAN)
    csrf = cookies["gis_csrf"].lower()
    assert "httponly" not in csrf and "samesite=lax" in csrf
    me = fresh.get("/api/v1/auth/me").json()
    assert me["kind"] == "user" and me["via"] == "session" and me["role"] == "viewer"
    assert me["grid_id"] == find_scopes(engine).community


def test_secure_cookie_setting(url: str, data_dir: Path, engine: Engine) -> None:
    user = make_user(engine, "admin")
    app = create_app(app_settings(url, data_dir, cookie_secure=True))
    with TestClient(app, base_url="https://testserver") as c:
        r = _login(c, user["username"])
        assert r.status_code == 200
        for cookie in r.headers.get_list("set-cookie"):
            assert "secure" in cookie.lower()


def test_csrf_required_for_cookie_writes(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "admin")
    c = TestClient(client.app)
    r = _login(c, user["username"])
    csrf = r.json()["csrf_token"]
    assert c.cookies.get("gis_csrf") == csrf
    # a read needs no token
    assert c.get("/api/v1/users").status_code == 200
    # a write with the cookie alone is refused
    r = c.post("/api/v1/auth/tokens", json={"name": "x"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = c.post("/api/v1/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = c.post("/api/v1/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # a bearer token is not ambient, so it needs no CSRF token
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    r = TestClient(client.app).post("/api/v1/auth/tokens", json={}, headers=bearer)
    assert r.status_code == 201


def test_wrong_password_and_unknown_user_look_alike(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    wrong = _login(client, user["username"], "not the password")
    unknown = _login(client, "nobody-" + uuid.uuid4().hex[:6], "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    assert "gis_session" not in wrong.headers.get("set-cookie", "")


def test_known_and_unknown_usernames_answer_alike(url: str, data_dir: Path, engine: Engine) -> None:
    """Failed logins of a known and of an unknown username give the same statuses, codes,
    messages and Retry-After at every step: slowed, then locked (issue 11, finding 10; the
    known one used to get 429 and "N more failed attempts will lock the account", the
    unknown one 401 forever)."""
    settings = app_settings(
        url,
        data_dir,
        login_slowdown_after=2,
        login_delay_seconds=2,
        login_max_failures=4,
        login_lock_minutes=15,
    )
    known = make_user(engine, "viewer", grid=find_scopes(engine).community)["username"]
    unknown = "nobody-" + uuid.uuid4().hex[:8]
    clock = ManualClock()

    def answer(r) -> tuple:
        body = r.json()
        return r.status_code, body["code"], body["message"], r.headers.get("retry-after")

    with TestClient(create_app(settings, clock=clock)) as c:
        seen = []
        for step in range(8):
            pair = [answer(_login(c, name, f"wrong-{step}")) for name in (known, unknown)]
            assert pair[0] == pair[1], (step, pair)
            seen.append(pair[0][0])
            clock.advance(2.5 if step < 4 else 0.1)
    assert 429 in seen and 423 in seen, seen


def test_passwords_are_argon2_and_tokens_hashed(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "admin")
    r = client.post(
        "/api/v1/auth/tokens",
        json={"username": user["username"], "password": PASSWORD, "name": "script"},
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]}
        ).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        cost = Settings()  # GIS_PASSWORD_* as this process has them
        assert (
            f"$m={cost.password_memory_kib},t={cost.password_time_cost},"
            f"p={cost.password_parallelism}$"
        ) in stored
        rows = conn.execute(
            text("SELECT token_hash, t::text AS dump FROM auth_tokens t WHERE user_id = :u"),
            {"u": user["id"]},
        ).all()
    assert any(bytes(r.token_hash) == hashlib.sha256(token.encode()).digest() for r in rows)
    assert all(token not in r.dump for r in rows)


def test_password_cost_defaults_to_rfc9106_and_old_hashes_are_upgraded(
    client: TestClient, engine: Engine
) -> None:
    fields = Settings.model_fields
    production = (
        fields["password_time_cost"].default,
        fields["password_memory_kib"].default,
        fields["password_parallelism"].default,
    )
    low_memory = argon2.profiles.RFC_9106_LOW_MEMORY
    assert production == (low_memory.time_cost, low_memory.memory_cost, low_memory.parallelism)
    # A hash made with another cost still verifies, and the login re-makes it with today's.
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    old = argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=2).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE id = :id"), {"h": old, "id": user["id"]}
        )
    assert _login(TestClient(client.app), user["username"]).status_code == 200
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]}
        ).scalar_one()
    assert stored != old and not needs_rehash(stored) and verify_password(stored, PASSWORD)


def test_minted_token_never_outlives_its_parent(client: TestClient, engine: Engine) -> None:
    """A bearer token minted while logged in expires with the session or token it was
    minted with, at the latest, and is revoked with it (issue 11, finding 10: 366 days from
    an 86-second token, and it survived the parent's revocation)."""
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    settings = client.app.state.settings
    with engine.connect() as conn, conn.begin():
        _, parent, _, _, parent_expires = service.issue_token(
            conn, settings, user["id"], "bearer", ttl_seconds=86
        )
    headers = {"Authorization": f"Bearer {parent}"}
    r = client.post(
        "/api/v1/auth/tokens", json={"name": "子令牌", "ttl_days": 366}, headers=headers
    )
    assert r.status_code == 201, r.text
    child = r.json()
    assert datetime.fromisoformat(child["expires_at"]) <= parent_expires
    grandchild = client.post(
        "/api/v1/auth/tokens",
        json={"name": "孙令牌"},
        headers={"Authorization": f"Bearer {child['token']}"},
    ).json()
    for token in (child["token"], grandchild["token"]):
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
    # Logging out with the parent ends it and everything minted from it.
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    for token in (parent, child["token"], grandchild["token"]):
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401, token[:8]


def test_bearer_token_lifecycle(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "community_staff", grid=find_scopes(engine).community)
    other = make_user(engine, "community_staff", grid=find_scopes(engine).community)
    anon = TestClient(client.app)
    r = anon.post(
        "/api/v1/auth/tokens",
        json={"username": user["username"], "password": PASSWORD, "ttl_days": 1},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("gst_") and created["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {created['token']}"}
    me = anon.get("/api/v1/auth/me", headers=headers).json()
    assert me["kind"] == "user" and me["via"] == "bearer" and me["id"] == user["id"]
    listed = anon.get("/api/v1/auth/tokens", headers=headers).json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    # someone else's token id is 404, as if it did not exist
    other_headers = bearer_for(engine, client.app.state.settings, other["id"])
    r = anon.delete(f"/api/v1/auth/tokens/{created['id']}", headers=other_headers)
    assert r.status_code == 404
    r = anon.delete(f"/api/v1/auth/tokens/{created['id']}", headers=headers)
    assert r.status_code == 200 and r.json()["revoked"] is True
    r = anon.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert anon.get("/api/v1/auth/me", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert anon.post("/api/v1/auth/tokens", json={}).status_code == 401


def test_sessions_and_tokens_expire_on_the_clock(url: str, data_dir: Path, engine: Engine) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    clock = ManualClock()
    app = create_app(app_settings(url, data_dir, session_ttl_hours=8), clock=clock)
    with TestClient(app) as c:
        r = c.post(
            "/api/v1/auth/tokens",
            json={"username": user["username"], "password": PASSWORD, "ttl_days": 1},
        )
        assert r.status_code == 201, r.text
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        r = _login(c, user["username"])
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["expires_at"]) == clock.now() + timedelta(hours=8)

        def live() -> list[str]:
            return [t["kind"] for t in c.get("/api/v1/auth/tokens", headers=bearer).json()]

        clock.advance(8 * 3600 - 1)
        assert c.get("/api/v1/auth/me").json()["kind"] == "user"  # the session, a second left
        assert sorted(live()) == ["bearer", "session"]
        clock.advance(1)
        # An expired session is a stale cookie: the caller is anonymous, the map still works.
        assert c.get("/api/v1/auth/me").json()["kind"] == "anonymous"
        assert c.get("/api/v1/users").status_code == 401
        assert live() == ["bearer"]
        clock.advance(16 * 3600 - 1)
        assert c.get("/api/v1/auth/me", headers=bearer).json()["kind"] == "user"
        clock.advance(1)
        # An expired bearer token is refused, never downgraded to anonymous.
        r = c.get("/api/v1/auth/me", headers=bearer)
        assert r.status_code == 401 and "expired" in r.json()["message"]


def test_logout_revokes_the_session(client: TestClient, engine: Engine) -> None:
    user = make_user(engine, "admin")
    c = TestClient(client.app)
    csrf = _login(c, user["username"]).json()["csrf_token"]
    cookie = c.cookies.get("gis_session")
    assert c.post("/api/v1/auth/logout").status_code == 403  # CSRF applies to logout too
    assert c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = TestClient(client.app, cookies={"gis_session": cookie})
    assert replay.get("/api/v1/auth/me").json()["kind"] == "anonymous"
    assert replay.get("/api/v1/users").status_code == 401


def test_disabled_user_is_logged_out_everywhere(
    client: TestClient, engine: Engine, admin_headers: dict
) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    headers = bearer_for(engine, client.app.state.settings, user["id"])
    assert client.get("/api/v1/auth/me", headers=headers).json()["kind"] == "user"
    r = client.post(f"/api/v1/users/{user['id']}/disable", headers=admin_headers)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    r = _login(client, user["username"])
    assert r.status_code == 403 and r.json()["code"] == "account_disabled"
    assert client.post(f"/api/v1/users/{user['id']}/enable", headers=admin_headers).json()["active"]
    assert _login(client, user["username"]).status_code == 200


# ---- brute force -------------------------------------------------------------------------
def test_brute_force_is_slowed_then_locked(url: str, data_dir: Path, engine: Engine) -> None:
    settings = app_settings(
        url,
        data_dir,
        login_slowdown_after=2,
        login_delay_seconds=2,
        login_max_failures=4,
        login_lock_minutes=15,
    )
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    name = user["username"]
    clock = ManualClock()
    with TestClient(create_app(settings, clock=clock)) as c:
        assert _login(c, name, "wrong-1").status_code == 401
        assert _login(c, name, "wrong-2").status_code == 401
        # slowed: the next try must wait, even with the right password
        r = _login(c, name)
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "2"
        assert "wait" in r.json()["message"]
        clock.advance(1.9)
        assert _login(c, name).status_code == 429  # the wait runs from the last failure
        clock.advance(0.2)
        assert _login(c, name, "wrong-3").status_code == 401
        r = _login(c, name, "wrong-now")
        assert r.status_code == 429 and r.headers["retry-after"] == "4"  # the wait doubled
        clock.advance(3.9)
        assert _login(c, name, "wrong-now").status_code == 429
        clock.advance(0.2)
        r = _login(c, name, "wrong-4")
        assert r.status_code == 423, r.text
        assert r.json()["code"] == "account_locked"
        assert "locked" in r.json()["message"]
        # locked: the right password does not help
        r = _login(c, name)
        assert r.status_code == 423 and r.headers["retry-after"] == str(15 * 60 + 1)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT failed_logins, locked_until FROM users WHERE id = :id"),
                {"id": user["id"]},
            ).one()
            assert row.failed_logins == 4 and row.locked_until == clock.now() + timedelta(
                minutes=15
            )
            actions = conn.execute(
                text(
                    "SELECT action FROM audit_log WHERE object_type = 'user' "
                    "AND object_id = :id ORDER BY id"
                ),
                {"id": str(user["id"])},
            ).scalars()
            assert list(actions)[-4:] == ["login_failed"] * 3 + ["lock"]
        clock.advance(15 * 60 - 1)
        assert _login(c, name).status_code == 423  # still locked a second before the end
        clock.advance(1.5)  # the lock runs out
        r = _login(c, name)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["failed_logins"] == 0


def test_unlock_by_admin(client: TestClient, engine: Engine, admin_headers: dict) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE users SET failed_logins = 10, locked_until = now() + interval '1 hour'"
                " WHERE id = :id"
            ),
            {"id": user["id"]},
        )
    assert _login(client, user["username"]).status_code == 423
    r = client.post(f"/api/v1/users/{user['id']}/unlock", headers=admin_headers)
    assert r.status_code == 200 and r.json()["locked_until"] is None
    assert _login(client, user["username"]).status_code == 200


def test_login_rate_limit_per_address(url: str, data_dir: Path, engine: Engine) -> None:
    user = make_user(engine, "viewer", grid=find_scopes(engine).community)
    # Fixed one-minute windows: start 5 s into one.
    clock = ManualClock(datetime.now(UTC).replace(second=5, microsecond=0))
    app = create_app(app_settings(url, data_dir, login_ip_per_minute=3), clock=clock)
    with TestClient(app) as c:
        ip = _fresh_ip()
        for _ in range(3):
            assert _login(c, "nobody-at-all", "x", ip=ip).status_code == 401
        r = _login(c, user["username"], ip=ip)
        assert r.status_code == 429 and "login attempts" in r.json()["message"]
        assert r.headers["retry-after"] == "55"  # until the window ends
        # another address is not affected
        assert _login(c, user["username"], ip=_fresh_ip()).status_code == 200
        clock.advance(54.5)
        assert _login(c, user["username"], ip=ip).status_code == 429
        clock.advance(1)  # the next window
        assert _login(c, user["username"], ip=ip).status_code == 200


def test_forwarded_for_is_ignored_from_untrusted_peers(url: str, data_dir: Path) -> None:
    from starlette.requests import Request

    from gis_service.auth.deps import client_ip

    app = create_app(app_settings(url, data_dir, trusted_proxies=[]))

    def request(peer: str, xff: str) -> Request:
        scope = {
            "type": "http",
            "app": app,
            "client": (peer, 1),
            "headers": [(b"x-forwarded-for", xff.encode())],
        }
        return Request(scope)

    assert client_ip(request("198.51.100.7", "1.2.3.4")) == "198.51.100.7"
    app.state.settings.trusted_proxies = ["10.0.0.1"]
    assert client_ip(request("10.0.0.1", "1.2.3.4, 10.0.0.1")) == "1.2.3.4"
    assert client_ip(request("10.0.0.1", "not-an-ip")) == "10.0.0.1"


def test_spoofed_forwarded_for_does_not_reset_the_limits(url: str, tmp_path: Path) -> None:
    """On a real server, as ``serve`` runs it: rotating X-Forwarded-For used to get 12 of 12
    anonymous reports and 40 of 40 logins through the per-address limits, because uvicorn
    itself believed the header from a loopback peer (issue 11, finding 4). Only
    GIS_TRUSTED_PROXIES decides; with it empty the socket peer is the client."""
    import httpx

    from tests.support.servers import Server

    eng = make_engine(url, pool_size=1)
    with eng.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids"
                " WHERE level = 'grid' AND valid_to IS NULL ORDER BY id LIMIT 1) x"
            )
        ).one()
        category = conn.execute(
            text("SELECT code FROM hazard_categories WHERE active ORDER BY code LIMIT 1")
        ).scalar_one()
    eng.dispose()
    report = {"category": category, "lon": lon, "lat": lat, "description": "限流测试"}
    login = {"password": "wrong password"}

    def statuses(base: str, path: str, body: dict) -> list[int]:
        out = []
        with httpx.Client(base_url=base, trust_env=False) as http:
            for i in range(1, 6):
                if path == LOGIN:  # a new name each time: only the address limit may refuse
                    body = {**body, "username": f"nobody-{uuid.uuid4().hex[:8]}"}
                headers = {"X-Forwarded-For": f"203.0.113.{i}"}
                out.append(http.post(path, json=body, headers=headers).status_code)
        return out

    for proxies, limited in (([], True), (["127.0.0.1"], False)):
        settings = app_settings(
            url,
            tmp_path / f"data-{len(proxies)}",
            trusted_proxies=proxies,
            anon_reports_per_hour=3,
            login_ip_per_minute=3,
        )
        with Server(settings) as base:
            reports = statuses(base, "/api/v1/hazards", report)
            logins = statuses(base, LOGIN, login)
        if limited:  # the peer (127.0.0.1) is the client: three, then 429
            assert reports == [201, 201, 201, 429, 429], reports
            assert logins == [401, 401, 401, 429, 429], logins
        else:  # a trusted proxy: each forwarded address counts on its own
            assert reports == [201] * 5 and logins == [401] * 5, (reports, logins)


def test_api_key_is_never_echoed_in_links(client: TestClient, engine: Engine) -> None:
    """Open311 clients may send api_key in the query; self, next, prev and alternate links
    must not repeat it (issue 11, finding 10)."""
    _, secret = key_for(engine, ["read"])
    for url in (
        "/api/v1/hazards?limit=1&offset=1",
        "/api/v1/grids?limit=1&offset=1",
        "/ogc/collections/grids_grid/items?limit=1&offset=1",
        "/ogc/collections",
    ):
        r = client.get(url, params={"api_key": secret})
        assert r.status_code == 200, (url, r.text[:200])
        links = r.json().get("links", [])
        assert links, url
        assert secret not in r.text and "api_key" not in json.dumps(links), url


# ---- API keys ----------------------------------------------------------------------------
def test_api_keys_hashed_scoped_revocable(
    client: TestClient, engine: Engine, admin_headers: dict, scopes: Scopes
) -> None:
    r = client.post(
        "/api/v1/keys",
        json={"name": "12345 热线平台", "scopes": ["read", "report"], "grid": scopes.community},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert secret.startswith(created["prefix"] + "_")
    assert r.headers["cache-control"] == "no-store"
    listed = client.get("/api/v1/keys", headers=admin_headers).json()["keys"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in mine and secret not in str(listed)
    assert mine["scopes"] == ["read", "report"] and mine["grid_id"] == scopes.community
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT key_hash, k::text AS dump FROM api_keys k WHERE id = :id"),
            {"id": created["id"]},
        ).one()
    assert bytes(row.key_hash) == hashlib.sha256(secret.encode()).digest()
    assert secret not in row.dump

    anon = TestClient(client.app)
    me = anon.get("/api/v1/auth/me", headers={"X-API-Key": secret}).json()
    assert me["kind"] == "api_key" and me["scopes"] == ["read", "report"]
    assert me["grid_id"] == scopes.community and scopes.street in me["grid_path"]
    # Open311 style: the key as a query parameter (accepted on every route)
    assert anon.get(f"/api/v1/auth/me?api_key={secret}").json()["kind"] == "api_key"
    assert anon.get(f"/api/v1/grids?api_key={secret}&limit=1").status_code == 200

    def last_used():
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": created["id"]}
            ).scalar()

    first = last_used()
    assert first is not None
    anon.get("/api/v1/auth/me", headers={"X-API-Key": secret})
    assert last_used() == first  # written at most once a minute, so reads stay cheap
    # a key cannot do an admin's work, nor mint user tokens
    assert anon.get("/api/v1/users", headers={"X-API-Key": secret}).status_code == 403
    assert anon.post("/api/v1/auth/tokens", json={}, headers={"X-API-Key": secret}).status_code == (
        403
    )
    r = client.delete(f"/api/v1/keys/{created['id']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = anon.get("/api/v1/grids?limit=1", headers={"X-API-Key": secret})
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    assert anon.get("/api/v1/grids?limit=1", headers={"X-API-Key": "gsk_bogus"}).status_code == 401


def test_key_without_read_scope_cannot_read(client: TestClient, engine: Engine) -> None:
    _, secret = key_for(engine, ["report"])
    r = client.get("/api/v1/grids?limit=1", headers={"X-API-Key": secret})
    assert r.status_code == 403 and r.json()["details"]["missing_scopes"] == ["read"]


def test_unknown_key_scope_refused(client: TestClient, admin_headers: dict) -> None:
    r = client.post("/api/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin_headers)
    assert r.status_code == 422


# ---- users API ---------------------------------------------------------------------------
def test_users_api(client: TestClient, engine: Engine, admin_headers: dict, scopes: Scopes) -> None:
    name = f"zhang-{uuid.uuid4().hex[:6]}"
    body = {
        "username": name,
        "display_name": "张伟",
        "password": PASSWORD,
        "role": "grid_leader",
        "grid": scopes.grid,
        "person_id": scopes.grid_leader_person,
    }
    r = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["grid_id"] == scopes.grid and "password" not in r.text
    assert client.post("/api/v1/users", json=body, headers=admin_headers).status_code == 409
    r = client.post(
        "/api/v1/users", json={**body, "username": name + "x", "grid": None}, headers=admin_headers
    )
    assert r.status_code == 422 and "needs a grid" in r.json()["message"]
    r = client.post(
        "/api/v1/users", json={**body, "username": name + "y", "password": "short"},
        headers=admin_headers,
    )  # fmt: skip
    assert r.status_code == 422
    # An unknown person is 404, as an unknown grid is (issue 11, finding 12).
    r = client.post(
        "/api/v1/users",
        json={**body, "username": name + "z", "person_id": 2**62},
        headers=admin_headers,
    )
    assert r.status_code == 404 and r.json()["details"]["person_id"] == 2**62
    users = client.get("/api/v1/users?role=grid_leader", headers=admin_headers).json()["users"]
    assert name in [u["username"] for u in users]
    viewer = make_user(engine, "viewer", grid=scopes.community)
    headers = bearer_for(engine, client.app.state.settings, viewer["id"])
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert client.post("/api/v1/users", json=body, headers=headers).status_code == 403
    assert TestClient(client.app).get("/api/v1/users").status_code == 401


# ---- audit -------------------------------------------------------------------------------
def test_audit_filters(
    client: TestClient, admin: dict, admin_headers: dict, scopes: Scopes
) -> None:
    name = f"li-{uuid.uuid4().hex[:6]}"
    r = client.post(
        "/api/v1/users",
        json={
            "username": name,
            "display_name": "李娜",
            "password": PASSWORD,
            "role": "community_staff",
            "grid": scopes.community,
        },
        headers=admin_headers,
    )
    created = r.json()
    entries = client.get(
        f"/api/v1/audit?object_type=user&object_id={created['id']}", headers=admin_headers
    ).json()["entries"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["action"] == "create" and entry["principal_kind"] == "user"
    assert entry["principal_id"] == admin["id"] and entry["ip"] == "testclient"
    assert entry["after"]["username"] == name and entry["before"] is None
    assert "password" not in str(entry)
    by_grid = client.get(f"/api/v1/audit?grid={scopes.street}", headers=admin_headers).json()
    assert created["id"] in [int(e["object_id"]) for e in by_grid["entries"]]
    by_other = client.get(f"/api/v1/audit?grid={scopes.other_street}", headers=admin_headers)
    assert str(created["id"]) not in [e["object_id"] for e in by_other.json()["entries"]]
    by_user = client.get(f"/api/v1/audit?user={admin['username']}", headers=admin_headers).json()
    assert by_user["entries"] and all(e["principal_id"] == admin["id"] for e in by_user["entries"])
    assert client.get("/api/v1/audit?user=nobody-here", headers=admin_headers).json() == {
        "entries": [],
        "limit": 100,
        "offset": 0,
    }
    assert client.get("/api/v1/audit?bogus=1", headers=admin_headers).status_code == 400


def test_audit_record_shares_the_callers_transaction(engine: Engine) -> None:
    marker = f"rollback-{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        with conn.begin() as tx:
            audit.record(conn, ANONYMOUS, "test", marker, 1, None, {"password": "x"}, None, None)
            tx.rollback()
        with conn.begin():
            audit.record(conn, ANONYMOUS, "test", marker, 2, None, {"password": "x"}, None, None)
        rows = conn.execute(
            text("SELECT object_id, after FROM audit_log WHERE object_type = :t"), {"t": marker}
        ).all()
    assert [r.object_id for r in rows] == ["2"]
    assert rows[0].after == {"password": "<redacted>"}


# ---- the Principal -------------------------------------------------------------------------
def test_principal_scope_rules() -> None:
    staff = Principal(
        kind="user",
        id=1,
        name="x",
        role="community_staff",
        scopes=frozenset({"read", "read_private", "write", "dispatch"}),
        grid_id=20,
        grid_path=(1, 20),
        person_id=7,
        scope_ids=frozenset({20, 21}),  # 21: the same community, redrawn
    )
    assert staff.in_scope([1, 20, 300]) and staff.in_scope([1, 21, 301])
    assert not staff.in_scope([1, 22, 302]) and not staff.in_scope([]) and not staff.in_scope(None)
    assert staff.can("dispatch", [1, 20]) and not staff.can("admin", [1, 20])
    assert staff.can_work_on([9, 99], assignee_person_id=7)  # assigned to me, elsewhere
    assert not staff.can_work_on([9, 99], assignee_person_id=8)
    assert staff.scope_filter() == [20, 21]
    admin = Principal("user", 2, "a", "admin", frozenset({"read"}), None, (), None)
    assert admin.in_scope([5]) and admin.scope_filter() is None
    assert not ANONYMOUS.in_scope([1]) and not ANONYMOUS.authenticated


# ---- the CLI -------------------------------------------------------------------------------
CLI = [
    ["users"],
    ["users", "create"],
    ["users", "update"],
    ["users", "list"],
    ["users", "disable"],
    ["users", "enable"],
    ["users", "unlock"],
    ["users", "set-password"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
]


@pytest.mark.parametrize("cmd", CLI, ids=" ".join)
def test_cli_help(cmd: list[str]) -> None:
    result = CliRunner().invoke(cli_app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_cli_users_and_keys(url: str, client: TestClient, scopes: Scopes, engine: Engine) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": url}
    name = f"first-admin-{uuid.uuid4().hex[:6]}"
    r = runner.invoke(
        cli_app,
        ["users", "create", name, "--role", "admin", "--name", "管理员", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "role admin" in r.output and "scope everything" in r.output
    assert _login(client, name).status_code == 200
    # a non-admin needs a grid; a bad role or a weak password is refused with a reason
    r = runner.invoke(
        cli_app, ["users", "create", name + "b", "--role", "viewer", "--password-stdin"],
        input=PASSWORD + "\n", env=env,
    )  # fmt: skip
    assert r.exit_code == 1 and "needs a grid" in r.output
    r = runner.invoke(
        cli_app, ["users", "create", name + "c", "--role", "king", "--password-stdin"],
        input=PASSWORD + "\n", env=env,
    )  # fmt: skip
    assert r.exit_code == 1 and "unknown role" in r.output
    r = runner.invoke(
        cli_app,
        ["users", "create", name + "d", "--role", "grid_leader", "--grid", str(scopes.grid),
         "--password-stdin"],
        input="short\n", env=env,
    )  # fmt: skip
    assert r.exit_code == 1 and "at least 10" in r.output
    r = runner.invoke(cli_app, ["users", "list", "--json"], env=env)
    assert r.exit_code == 0 and name in r.output and "password" not in r.output
    r = runner.invoke(cli_app, ["users", "disable", name], env=env)
    assert r.exit_code == 0 and "disabled" in r.output
    assert _login(client, name).status_code == 403
    r = runner.invoke(cli_app, ["users", "list"], env=env)
    assert name not in r.output  # disabled users only with --all
    assert name in runner.invoke(cli_app, ["users", "list", "--all"], env=env).output
    assert runner.invoke(cli_app, ["users", "disable", "no-such-user"], env=env).exit_code == 1

    r = runner.invoke(
        cli_app,
        ["keys", "create", "一网通办", "--scope", "read", "--scope", "open311", "--grid",
         str(scopes.community)],
        env=env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert secret.startswith("gsk_")
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": secret}).json()
    assert me["kind"] == "api_key" and me["scopes"] == ["open311", "read"]
    prefix = "_".join(secret.split("_")[:2])
    r = runner.invoke(cli_app, ["keys", "list"], env=env)
    assert prefix in r.output and secret not in r.output
    r = runner.invoke(cli_app, ["keys", "revoke", prefix], env=env)
    assert r.exit_code == 0 and "revoked" in r.output
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": secret}).status_code == 401
    r = runner.invoke(cli_app, ["keys", "create", "x", "--scope", "root"], env=env)
    assert r.exit_code == 1 and "Unknown" in r.output
    with engine.connect() as conn:
        kinds = conn.execute(
            text("SELECT DISTINCT principal_kind FROM audit_log WHERE object_type = 'api_key'")
        ).scalars()
        assert "system" in set(kinds)


# ---- hardening ---------------------------------------------------------------------------
def test_security_headers(client: TestClient) -> None:
    r = client.get("/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    err = client.get("/api/v1/no-such-thing")
    assert err.status_code == 404 and err.headers["x-frame-options"] == "DENY"


def test_body_size_limit(url: str, data_dir: Path) -> None:
    app = create_app(app_settings(url, data_dir, max_body_bytes=2048))
    with TestClient(app) as c:
        big = {"points": [[113.6, 34.7]] * 400}
        r = c.post("/api/v1/locate", json=big)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large"
        assert r.json()["details"]["max_body_bytes"] == 2048

        def chunks():  # no Content-Length: counted while streaming
            yield b'{"points": ['
            for _ in range(400):
                yield b"[113.6, 34.7],"
            yield b"[113.6, 34.7]]}"

        r = c.post("/api/v1/locate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large"
        small = c.post("/api/v1/locate", json={"points": [[113.6, 34.7]]})
        assert small.status_code == 200


def test_cors_from_settings(url: str, data_dir: Path, client: TestClient) -> None:
    preflight = {
        "Origin": "https://map.example.cn",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    r = client.options("/api/v1/grids", headers=preflight)
    assert "access-control-allow-origin" not in r.headers  # default: no cross-origin access
    app = create_app(app_settings(url, data_dir, cors_origins=["https://map.example.cn"]))
    with TestClient(app) as c:
        r = c.options("/api/v1/grids", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://map.example.cn"
        r = c.get("/api/v1/grids?limit=1", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_cors_setting_parses_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.config import Settings

    monkeypatch.setenv("GIS_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_openapi_documents_who_may_call(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    users = schema["paths"]["/api/v1/users"]["get"]
    assert users["x-roles"] == ["admin", "street_staff"]
    assert "Who may call: users with role admin" in users["description"]
    grids = schema["paths"]["/api/v1/grids"]["get"]
    assert grids["x-roles"][0] == "anonymous" and grids["x-api-key-scopes"] == ["read"]
    assert "Who may call: anyone" in grids["description"]


def test_work_bounds(url: str, data_dir: Path) -> None:
    """Page size clamped, batch size and CQL2 length and depth refused; a large bbox paged."""
    settings = app_settings(url, data_dir, max_limit=5, max_batch=3)
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/v1/grids?limit=100000")
        assert r.status_code == 200 and len(r.json()["features"]) == 5
        r = c.get("/ogc/collections/grids_grid/items?limit=100000")
        assert r.status_code == 200 and r.json()["numberReturned"] == 5
        r = c.get("/api/v1/grids?bbox=100,20,130,50&limit=100000")
        assert r.status_code == 200 and len(r.json()["features"]) == 5
        r = c.post("/api/v1/locate", json={"points": [[113.6, 34.7]] * 4})
        assert r.status_code == 422 and r.json()["details"]["max_batch"] == 3
        long_filter = "name = '" + "x" * 5000 + "'"
        r = c.get("/ogc/collections/grids_grid/items", params={"filter": long_filter})
        assert r.status_code == 400, r.text
        deep = "(" * 30 + "name = 'x'" + ")" * 30
        r = c.get("/ogc/collections/grids_grid/items", params={"filter": deep})
        assert r.status_code == 400 and "deeply" in r.json()["message"]
        r = c.get("/api/v1/grids?offset=99999999")
        assert r.status_code == 422
