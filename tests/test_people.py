"""The people API: find people in one's scope, keep their records, give and end roles on
grids, hand a grid's leadership over in one step, and see it at once where people look (locate,
the grid's card, the history), with an audit row (who and why) for every change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.db.engine import make_engine
from tests.support.authkit import Scopes, app_settings, bearer_for, find_scopes, make_user
from tests.support.databases import DEMO, Databases


@dataclass
class World:
    """A demo district of its own, an app, and staff of each office."""

    engine: Engine
    client: TestClient
    scopes: Scopes
    users: dict[str, dict]
    settings: Any
    url: str

    def as_(self, who: str) -> dict[str, str]:
        """Fresh bearer headers of a user of the world."""
        return bearer_for(self.engine, self.settings, self.users[who]["id"])

    def sql(self, query: str, **params: Any) -> Any:
        """Run a query and return all rows."""
        with self.engine.connect() as conn:
            return conn.execute(text(query), params).all()


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = databases.new("people", DEMO)
    engine = make_engine(url, pool_size=2)
    scopes = find_scopes(engine)
    users = {
        "admin": make_user(engine, "admin"),
        "street": make_user(engine, "street_staff", grid=scopes.street),
        "community": make_user(engine, "community_staff", grid=scopes.community),
        "other_street": make_user(engine, "street_staff", grid=scopes.other_street),
        "leader": make_user(engine, "grid_leader", grid=scopes.grid),
        "viewer": make_user(engine, "viewer", grid=scopes.community),
    }
    settings = app_settings(url, tmp_path_factory.mktemp("people-data"))
    with TestClient(create_app(settings)) as client:
        yield World(engine, client, scopes, users, settings, url)
    engine.dispose()


def _point_in(w: World, grid_id: int) -> tuple[float, float]:
    return w.sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids"
        " WHERE id = :g) x",
        g=grid_id,
    )[0]


def _leader_of(w: World, grid_id: int) -> Any:
    rows = w.sql(
        "SELECT a.id, a.person_id, p.name FROM grid_assignments a JOIN people p"
        " ON p.id = a.person_id WHERE a.grid_id = :g AND a.is_primary"
        " AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())",
        g=grid_id,
    )
    return rows[0] if rows else None


def _tag() -> str:
    return uuid.uuid4().hex[:6]


# ---- finding people ----------------------------------------------------------------------
def test_find_by_name_phone_and_grid(world: World) -> None:
    leader = _leader_of(world, world.scopes.grid)
    h = world.as_("community")
    by_name = world.client.get("/api/v1/people", params={"q": leader.name}, headers=h)
    assert by_name.status_code == 200, by_name.text
    body = by_name.json()
    hit = next(p for p in body["people"] if p["id"] == leader.person_id)
    assert any(a["grid"]["id"] == world.scopes.grid for a in hit["assignments"])
    assert body["matched"] >= 1
    phone = world.sql("SELECT mobile_phone FROM people WHERE id = :i", i=leader.person_id)[0][0]
    digits = "".join(c for c in phone if c.isdigit())[-6:]
    by_phone = world.client.get("/api/v1/people", params={"q": digits}, headers=h).json()
    assert leader.person_id in [p["id"] for p in by_phone["people"]]
    by_grid = world.client.get(
        "/api/v1/people", params={"grid": world.scopes.grid}, headers=h
    ).json()
    assert leader.person_id in [p["id"] for p in by_grid["people"]]
    csv = world.client.get("/api/v1/people", params={"q": leader.name, "f": "csv"}, headers=h)
    assert csv.status_code == 200 and leader.name in csv.text


def test_search_stays_in_scope(world: World) -> None:
    outside = _leader_of(world, world.scopes.other_grid)
    h = world.as_("community")
    found = world.client.get("/api/v1/people", params={"q": outside.name}, headers=h).json()
    assert outside.person_id not in [p["id"] for p in found["people"]]
    one = world.client.get(f"/api/v1/people/{outside.person_id}", headers=h)
    assert one.status_code == 404
    grid = world.client.get("/api/v1/people", params={"grid": world.scopes.other_grid}, headers=h)
    assert grid.status_code == 404
    admin = world.client.get(f"/api/v1/people/{outside.person_id}", headers=world.as_("admin"))
    assert admin.status_code == 200 and admin.json()["name"] == outside.name


# ---- handing a grid over -----------------------------------------------------------------
def _locate_names(w: World, lon: float, lat: float, grid_id: int, **params: Any) -> list[str]:
    r = w.client.get("/api/v1/locate", params={"lon": lon, "lat": lat, **params})
    assert r.status_code == 200, r.text
    entry = next(g for g in r.json()["chain"] if g["id"] == grid_id)
    return [p["name"] for p in entry["people"] if p["is_primary"]]


def test_replace_leader_shows_at_once_and_keeps_the_past(world: World) -> None:
    grid = world.scopes.grid
    old = _leader_of(world, grid)
    lon, lat = _point_in(world, grid)
    name = f"新网格长{_tag()}"
    r = world.client.put(
        f"/api/v1/grids/{grid}/leader",
        json={
            "person": {"name": name, "mobile_phone": "138 0371 0001", "party_member": True},
            "reason": "换届选举",
        },
        headers=world.as_("street"),
    )
    assert r.status_code == 200, r.text
    change = r.json()
    assert change["ended"] == [old.id] and len(change["started"]) == 1
    assert change["grid"]["leader"]["person_name"] == name
    assert change["grid"]["gap"] is False
    assert _locate_names(world, lon, lat, grid) == [name]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert _locate_names(world, lon, lat, grid, at=yesterday) == [old.name]
    # The grid's own page and summary name the new leader too.
    feature = world.client.get(f"/api/v1/grids/{grid}").json()
    assert name in [p["name"] for p in feature["properties"]["people"]]
    # History: the old leader's assignment ended, with who and why.
    people = world.client.get(
        f"/api/v1/grids/{grid}/assignments", headers=world.as_("community")
    ).json()
    ended = next(a for a in people["past"] if a["id"] == old.id)
    assert ended["ended_by"]["reason"] == "换届选举"
    assert ended["ended_by"]["by"] == world.users["street"]["display_name"]
    new_person = change["grid"]["leader"]["person_id"]
    record = world.client.get(f"/api/v1/people/{new_person}", headers=world.as_("community")).json()
    assert record["mobile_phone"] == "13803710001" and record["party_member"] is True
    assert record["grid"]["id"] == grid
    audit = world.sql(
        "SELECT action, object_type, reason, principal_id FROM audit_log"
        " WHERE object_type IN ('grid_assignment', 'person')"
        " AND (object_id = :old OR object_id = :new OR object_id = :p) ORDER BY id",
        old=str(old.id),
        new=str(change["started"][0]),
        p=str(new_person),
    )
    assert {(a.action, a.object_type) for a in audit} == {
        ("end", "grid_assignment"),
        ("create", "person"),
        ("create", "grid_assignment"),
    }
    assert all(a.reason == "换届选举" for a in audit)
    assert all(a.principal_id == world.users["street"]["id"] for a in audit)


def test_assign_end_and_history(world: World) -> None:
    grid = world.scopes.grid
    h = world.as_("community")
    person = world.client.post(
        "/api/v1/people",
        json={"name": f"楼栋长{_tag()}", "work_phone": "0371-6612 3456", "reason": "新任"},
        headers=h,
    )
    assert person.status_code == 201, person.text
    pid = person.json()["id"]
    assert person.json()["work_phone"] == "0371-66123456"
    assert person.json()["grid"]["id"] == world.scopes.community  # default: my scope's root
    given = world.client.post(
        f"/api/v1/grids/{grid}/assignments",
        json={"person_id": pid, "role": "building_head", "reason": "分工调整"},
        headers=h,
    )
    assert given.status_code == 201, given.text
    aid = given.json()["started"][0]
    current = given.json()["grid"]["current"]
    assert any(a["id"] == aid and a["role_name"] == "楼栋长" for a in current)
    again = world.client.post(
        f"/api/v1/grids/{grid}/assignments",
        json={"person_id": pid, "role": "building_head", "reason": "重复"},
        headers=h,
    )
    assert again.status_code == 409 and again.json()["code"] == "already_assigned"
    leader = world.client.post(
        f"/api/v1/grids/{grid}/assignments",
        json={"person_id": pid, "role": "grid_leader", "reason": "想当网格长"},
        headers=h,
    )
    assert leader.status_code == 409 and leader.json()["code"] == "leader_taken"
    assert "/leader" in leader.json()["message"]
    ended = world.client.post(f"/api/v1/assignments/{aid}/end", json={"reason": "搬家"}, headers=h)
    assert ended.status_code == 200, ended.text
    assert all(a["id"] != aid for a in ended.json()["grid"]["current"])
    past = next(a for a in ended.json()["grid"]["past"] if a["id"] == aid)
    assert past["ended_by"]["reason"] == "搬家" and past["started_by"]["reason"] == "分工调整"
    twice = world.client.post(f"/api/v1/assignments/{aid}/end", json={"reason": "x"}, headers=h)
    assert twice.status_code == 409 and twice.json()["code"] == "already_ended"
    record = world.client.get(f"/api/v1/people/{pid}", headers=h).json()
    assert [a["state"] for a in record["assignments"]] == ["past"]


def test_update_person(world: World) -> None:
    h = world.as_("community")
    pid = world.client.post(
        "/api/v1/people", json={"name": f"网格员{_tag()}", "reason": "新人"}, headers=h
    ).json()["id"]
    r = world.client.patch(
        f"/api/v1/people/{pid}",
        json={"mobile_phone": "+86 139-0000-1111", "notes": "周末值班", "reason": "补登电话"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["mobile_phone"] == "13900001111" and r.json()["notes"] == "周末值班"
    row = world.sql(
        "SELECT before, after, reason FROM audit_log WHERE object_type = 'person'"
        " AND object_id = :i AND action = 'update'",
        i=str(pid),
    )[0]
    assert row.before["mobile_phone"] is None and row.after["mobile_phone"] == "13900001111"
    assert row.reason == "补登电话"
    same = world.client.patch(
        f"/api/v1/people/{pid}", json={"notes": "周末值班", "reason": "再来"}, headers=h
    )
    assert same.status_code == 409
    viewer = world.client.patch(
        f"/api/v1/people/{pid}", json={"notes": "x", "reason": "x"}, headers=world.as_("viewer")
    )
    assert viewer.status_code == 403


def test_roster_shows_gaps(world: World) -> None:
    h = world.as_("community")
    top = world.client.get("/api/v1/roster", headers=h)
    assert top.status_code == 200, top.text
    roots = top.json()["grids"]
    assert [g["id"] for g in roots] == [world.scopes.community]
    # Make a gap: end the leader of a micro-grid below the community.
    micro = world.sql(
        "SELECT g.id FROM grids g WHERE g.level = 'micro_grid' AND g.valid_to IS NULL"
        " AND g.path @> ARRAY[CAST(:c AS bigint)] ORDER BY g.id LIMIT 1",
        c=world.scopes.community,
    )[0][0]
    before = roots[0]["gaps"]
    lead = _leader_of(world, micro)
    r = world.client.post(f"/api/v1/assignments/{lead.id}/end", json={"reason": "退休"}, headers=h)
    assert r.status_code == 200 and r.json()["grid"]["gap"] is True
    after = world.client.get("/api/v1/roster", headers=h).json()["grids"][0]["gaps"]
    assert after == before + 1
    parent = world.sql("SELECT parent_id FROM grids WHERE id = :m", m=micro)[0][0]
    kids = world.client.get("/api/v1/roster", params={"parent": parent}, headers=h).json()
    gap = next(g for g in kids["grids"] if g["id"] == micro)
    assert gap["leader"] is None and gap["needs_leader"]
    code = world.sql("SELECT code FROM grids WHERE id = :c", c=world.scopes.community)[0][0]
    # The coverage check (street staff and admins maintain grids) finds the same gap.
    check = world.client.get(
        "/api/v1/grids/check", params={"root": code}, headers=world.as_("street")
    ).json()
    assert gap["code"] in {
        f["properties"]["code"] for f in check["features"] if f["properties"]["kind"] == "no_leader"
    }


# ---- scope: nobody changes people or roles outside their subtree -----------------------------
def test_no_changes_outside_the_subtree(world: World) -> None:
    outside_grid = world.scopes.other_grid
    outside = _leader_of(world, outside_grid)
    for who in ("community", "street"):
        h = world.as_(who)
        r = world.client.put(
            f"/api/v1/grids/{outside_grid}/leader",
            json={"person": {"name": "越权"}, "reason": "x"},
            headers=h,
        )
        assert r.status_code == 403 and r.json()["code"] == "out_of_scope", r.text
        r = world.client.post(
            f"/api/v1/assignments/{outside.id}/end", json={"reason": "x"}, headers=h
        )
        assert r.status_code == 403, r.text
        r = world.client.patch(
            f"/api/v1/people/{outside.person_id}", json={"notes": "x", "reason": "x"}, headers=h
        )
        assert r.status_code == 404, r.text
        r = world.client.post(
            "/api/v1/people",
            json={"name": "越权", "grid": outside_grid, "reason": "x"},
            headers=h,
        )
        assert r.status_code == 403, r.text
    assert _leader_of(world, outside_grid).id == outside.id
    # A person serving on both sides may be changed only by staff who cover both.
    h = world.as_("other_street")
    pid = world.client.post(
        "/api/v1/people", json={"name": f"两边{_tag()}", "reason": "新人"}, headers=h
    ).json()["id"]
    inside_grid = world.scopes.grid
    give = world.client.post(
        f"/api/v1/grids/{inside_grid}/assignments",
        json={"person_id": pid, "role": "volunteer", "reason": "x"},
        headers=world.as_("admin"),
    )
    assert give.status_code == 201, give.text
    r = world.client.patch(
        f"/api/v1/people/{pid}", json={"notes": "x", "reason": "x"}, headers=world.as_("street")
    )
    assert r.status_code == 403 and "outside your scope" in r.json()["message"]
    r = world.client.patch(
        f"/api/v1/people/{pid}", json={"notes": "x", "reason": "x"}, headers=world.as_("admin")
    )
    assert r.status_code == 200
    # …while the role on the street's own grid is the street's to end.
    aid = give.json()["started"][0]
    r = world.client.post(
        f"/api/v1/assignments/{aid}/end", json={"reason": "x"}, headers=world.as_("street")
    )
    assert r.status_code == 200, r.text


# ---- bad input: a clear 4xx, never a 500 -------------------------------------------------
def test_bad_input(world: World) -> None:
    h = world.as_("community")
    grid = world.scopes.grid
    pid = world.client.post(
        "/api/v1/people", json={"name": f"测试{_tag()}", "reason": "x"}, headers=h
    ).json()["id"]

    def post(url: str, body: Any) -> Any:
        return world.client.post(url, json=body, headers=h)

    base = {"person_id": pid, "role": "volunteer", "reason": "x"}
    r = post(
        f"/api/v1/grids/{grid}/assignments",
        {**base, "valid_from": "2026-03-01", "valid_to": "2026-02-01"},
    )
    assert r.status_code == 422 and r.json()["code"] == "ends_before_start", r.text
    r = post(f"/api/v1/grids/{grid}/assignments", {**base, "role": "mayor"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_role"
    assert "grid_leader (网格长)" in r.json()["message"]
    r = post(f"/api/v1/grids/{grid}/assignments", {**base, "role": "micro_grid_member"})
    assert r.status_code == 422 and r.json()["code"] == "role_not_for_level"
    for phone in ("12345", "call me", "100-1234-5678", "1380013800", "+1 650 253 0000"):
        r = post("/api/v1/people", {"name": "电话", "mobile_phone": phone, "reason": "x"})
        assert r.status_code == 422, (phone, r.text)
        assert "mobile" in r.json()["message"], r.text
    hostile = [
        ("/api/v1/people", {"name": "a\x00b", "reason": "x"}),
        ("/api/v1/people", {"name": "ok", "reason": "x\x00"}),
        ("/api/v1/people", {"name": "ok", "notes": "\x07", "reason": "x"}),
        ("/api/v1/people", {"name": "   ", "reason": "x"}),
        ("/api/v1/people", {"name": "x" * 51, "reason": "x"}),
        ("/api/v1/people", {"name": "ok", "reason": "x", "grid": 10**30}),
        ("/api/v1/people", {"name": "ok", "reason": "x", "grid": "no-such-grid"}),
        ("/api/v1/people", {"name": "ok"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "person_id": 10**30}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "person_id": 2**63 - 1}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "valid_from": "9999-12-31"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "valid_from": "0001-01-01"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "valid_from": "99999-01-01"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "valid_from": "2026-02-30"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "valid_from": "\x00"}),
        (f"/api/v1/grids/{grid}/assignments", {**base, "person": {"name": "x"}}),
        (f"/api/v1/grids/{grid}/assignments", {"role": "volunteer", "reason": "x"}),
        (f"/api/v1/grids/{2**63 - 1}/assignments", base),
        (f"/api/v1/grids/{10**20}/assignments", base),
        (f"/api/v1/assignments/{2**63 - 1}/end", {"reason": "x"}),
        ("/api/v1/people", {"name": {"a": {"b": {"c": [[[[[]]]]]}}}, "reason": "x"}),
    ]
    for url, body in hostile:
        r = post(url, body)
        assert 400 <= r.status_code < 500, (url, body, r.status_code, r.text)
        assert set(r.json()) == {"code", "message", "details"}
    for params in ({"q": "\x00"}, {"grid": "9" * 40}, {"role": "DROP"}, {"limit": 10**9}):
        r = world.client.get("/api/v1/people", params=params, headers=h)
        assert r.status_code < 500, (params, r.text)
    assert world.client.get(f"/api/v1/people/{2**63}", headers=h).status_code == 422


# ---- the command line --------------------------------------------------------------------
def test_cli_people_find_and_accounts(world: World) -> None:
    from typer.testing import CliRunner

    from gis_service.cli import app as cli_app

    runner = CliRunner()
    env = {"DATABASE_URL": world.url}
    grid_code = world.sql("SELECT code FROM grids WHERE id = :g", g=world.scopes.grid)[0][0]
    # A person of this grid only, with a name nobody else has.
    name = f"李强{_tag()}"
    r = world.client.post(
        f"/api/v1/grids/{world.scopes.grid}/assignments",
        json={"person": {"name": name}, "role": "grid_member", "reason": "新任"},
        headers=world.as_("community"),
    )
    assert r.status_code == 201, r.text
    pid = next(a["person_id"] for a in r.json()["grid"]["current"] if a["person_name"] == name)
    out = runner.invoke(cli_app, ["people", "find", name], env=env)
    assert out.exit_code == 0, out.output
    assert str(pid) in out.output and grid_code in out.output and "网格员" in out.output
    by_grid = runner.invoke(cli_app, ["people", "find", grid_code], env=env)
    assert name in by_grid.output
    assert "(none)" in runner.invoke(cli_app, ["people", "find", "无此人zz"], env=env).output

    other = world.sql("SELECT code FROM grids WHERE id = :g", g=world.scopes.other_grid)[0][0]
    user = f"li-{_tag()}"
    # The person does not belong to another street's grid: said so, before any password.
    r = runner.invoke(
        cli_app,
        ["users", "create", user, "--role", "field_staff", "--grid", other,
         "--person", str(pid), "--password-stdin"],
        input="correct horse battery staple\n", env=env,
    )  # fmt: skip
    assert r.exit_code == 1 and "does not belong to grid" in r.output, r.output
    r = runner.invoke(
        cli_app,
        ["users", "create", user, "--role", "field_staff", "--grid", grid_code,
         "--person", name, "--password-stdin"],
        input="correct horse battery staple\n", env=env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"person {pid} ({name})" in r.output
    twice = runner.invoke(
        cli_app,
        ["users", "create", user + "b", "--role", "field_staff", "--grid", grid_code,
         "--person", str(pid), "--password-stdin"],
        input="correct horse battery staple\n", env=env,
    )  # fmt: skip
    assert twice.exit_code == 1 and "linked to the account" in twice.output
    r = runner.invoke(
        cli_app,
        ["users", "update", user, "--role", "grid_leader", "--name", "李强",
         "--reason", "升任网格长"],
        env=env,
    )  # fmt: skip
    assert r.exit_code == 0 and "role grid_leader" in r.output, r.output
    r = runner.invoke(cli_app, ["users", "update", user, "--person", "none"], env=env)
    assert r.exit_code == 0 and "person none" in r.output, r.output
    r = runner.invoke(cli_app, ["users", "update", user, "--grid", other], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["users", "update", user, "--person", name], env=env)
    assert r.exit_code == 1 and "Nobody called" in r.output, r.output
    audit = world.sql(
        "SELECT action, reason FROM audit_log WHERE object_type = 'user'"
        " AND object_id = (SELECT id::text FROM users WHERE username = :u) ORDER BY id",
        u=user,
    )
    assert [a.action for a in audit] == ["create", "update", "update", "update"]
    assert audit[1].reason == "升任网格长"


def test_readme_account_example_runs_on_the_demo(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's account commands, run as written on a fresh demo district: the person
    `people find` shows for the grid (as the README's comment says) is the one `--person`
    links, by name, never by a hard-coded id."""
    import re
    import shlex

    from typer.testing import CliRunner

    from gis_service.cli import app as cli_app
    from gis_service.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "people find" in b)
    shown = re.search(r"^#\s+…\s+(\S+)\s+(\S+)\s+…\s+(\d+)\s.*\s(\S+)\s+\(", block, re.M)
    assert shown, block
    name, phone, grid_code, role_name = shown.groups()
    url = databases.new("readme", DEMO)
    runner = CliRunner()
    env = {"DATABASE_URL": url}
    outputs = []
    for line in block.splitlines():
        if not line.startswith(".venv/bin/gis-service "):
            continue
        args = shlex.split(line.split("#")[0])[1:]
        password = "correct horse battery staple\n"
        r = runner.invoke(cli_app, args, env=env, input=password * 2)
        assert r.exit_code == 0, (line, r.output)
        outputs.append((args, r.output))
    found = next(out for args, out in outputs if args[:2] == ["people", "find"])
    row = next(ln for ln in found.splitlines() if name in ln)
    assert phone.replace("-", "") in row.replace("-", "") and grid_code in row
    assert role_name in row
    created = next(out for args, out in outputs if args[:2] == ["users", "create"] and
                   "--person" in args)  # fmt: skip
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            linked = conn.execute(
                text(
                    "SELECT p.name, g.code FROM users u JOIN people p ON p.id = u.person_id"
                    " JOIN grids g ON g.id = u.grid_id WHERE u.person_id IS NOT NULL"
                    " AND u.username = :u"
                ),
                {"u": re.search(r"created user (\S+)", created).group(1)},
            ).one()
    finally:
        engine.dispose()
    assert tuple(linked) == (name, grid_code)
