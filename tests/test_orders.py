"""Service orders (三单制): the order machine (allowed and refused moves), the volunteer and
partner registries with their scopes, the orders as a map layer, and volunteer-service
figures per community against a hand-counted world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gis_service.orders.workflow import ORDER_MACHINE
from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world

EXPECTED = {
    "ordered": {"dispatch": "dispatched", "cancel": "cancelled", "comment": "ordered"},
    "dispatched": {
        "dispatch": "dispatched",
        "take": "taken",
        "decline": "ordered",
        "cancel": "cancelled",
        "comment": "dispatched",
    },
    "taken": {"finish": "done", "cancel": "cancelled", "comment": "taken"},
    "done": {"rate": "rated", "comment": "done"},
    "rated": {"comment": "rated"},
    "cancelled": {"comment": "cancelled"},
}
ORDER = {"service_type": "wheelchair_delivery", "lon": 113.603, "lat": 34.703,
         "description": "老人腿脚不便，需借用轮椅", "resident_phone": "100-5555-0001"}  # fmt: skip


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("orders"), "horders") as w:
        yield w


def test_order_state_table_is_complete() -> None:
    assert set(EXPECTED) == set(ORDER_MACHINE.statuses)
    for status, moves in EXPECTED.items():
        assert set(ORDER_MACHINE.allowed(status)) == set(moves), status
        for action, target in moves.items():
            assert ORDER_MACHINE.target(action, status) == target


def _post(world: World, path: str, body: dict, who: str | None) -> object:
    return world.client.post(f"/api/v1/{path}", json=body, headers=world.auth(who))


def _act(world: World, oid: int, action: str, who: str = "west_community", **kw) -> object:
    order = world.client.get(f"/api/v1/orders/{oid}", headers=world.auth("admin")).json()
    version = kw.pop("version", order["features"][0]["properties"]["version"])
    return _post(world, f"orders/{oid}/actions", {"action": action, "version": version, **kw}, who)


def test_registries_and_the_whole_order(world: World) -> None:
    vol = {"name": "王志愿", "phone": "100-5555-0002", "skills": ["送轮椅"], "party_member": True,
           "grid": 9004}  # fmt: skip
    assert _post(world, "volunteers", vol, "field").status_code == 403
    assert _post(world, "volunteers", vol, "east_community").status_code == 404
    r = _post(world, "volunteers", vol, "west_community")
    assert r.status_code == 201, r.text
    west_vol = r.json()["id"]
    east_vol = _post(world, "volunteers", {**vol, "name": "东志愿", "grid": 9005},
                     "east_community").json()["id"]  # fmt: skip
    listed = world.client.get("/api/v1/volunteers", headers=world.auth("west_community")).json()
    assert [v["phone"] for v in listed["items"]] == ["100-5555-0002"]
    east = world.client.get("/api/v1/volunteers", headers=world.auth("east_community")).json()
    assert [v["id"] for v in east["items"]] == [east_vol]
    partner = {"name": "青禾志愿服务中心（测试）", "offers": ["送轮椅"], "grid": 9002}
    assert _post(world, "partners", partner, "west_community").status_code == 201
    assert _post(world, "partners", partner, "west_community").status_code == 409
    # 群众点单, anonymously
    bad = _post(world, "orders", {**ORDER, "service_type": "flying"}, None)
    assert bad.status_code == 422
    r = _post(world, "orders", ORDER, None)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    assert r.json()["public_code"].startswith("FW")
    # refused: a handler cannot dispatch, nor to another community's volunteer
    assert _act(world, oid, "dispatch", "field", volunteer_id=west_vol).status_code == 403
    far = _act(world, oid, "dispatch", volunteer_id=east_vol)
    assert far.status_code == 422 and far.json()["code"] == "assignee_out_of_area"
    assert _act(world, oid, "finish", hours=1).status_code == 409
    assert _act(world, oid, "dispatch", volunteer_id=west_vol).status_code == 200
    assert _act(world, oid, "take", "field", version=1).status_code == 412
    assert _act(world, oid, "take", "field").json()["status"] == "taken"
    assert _act(world, oid, "finish", "field").status_code == 422  # hours missing
    assert _act(world, oid, "finish", "field", hours=99).status_code == 422
    assert _act(world, oid, "finish", "field", hours=2.5).json()["status"] == "done"
    assert _act(world, oid, "rate", "field", rating="satisfied").json()["status"] == "rated"
    assert _act(world, oid, "cancel", note="x").status_code == 409
    # a second order, cancelled (with a reason)
    other = _post(world, "orders", {**ORDER, "service_type": "home_certification"}, "field")
    assert other.status_code == 201
    assert _act(world, other.json()["id"], "cancel").status_code == 422
    assert _act(world, other.json()["id"], "cancel", note="居民已自行办理").status_code == 200
    # the map layer: staff in scope see the resident, others nothing
    layer = world.client.get("/api/v1/orders", headers=world.auth("west_community"))
    assert layer.status_code == 200 and layer.json()["numberMatched"] == 2
    assert "100-5555-0001" in layer.text
    props = layer.json()["features"][0]["properties"]
    assert props["community"] == {"id": 9002, "name": "西社区"}
    # the desk's 派单 lists the volunteers and partners of the order's community only
    street = world.auth("street")
    near = world.client.get("/api/v1/volunteers", params={"grid": 9002}, headers=street).json()
    assert [v["id"] for v in near["items"]] == [west_vol]
    units = world.client.get("/api/v1/partners", params={"grid": 9003}, headers=street).json()
    assert units["items"] == []
    assert (
        world.client.get("/api/v1/orders", headers=world.auth("east_community")).json()[
            "numberMatched"
        ]
        == 0
    )
    assert world.client.get("/api/v1/orders").status_code == 401
    missing = world.client.get(f"/api/v1/orders/{oid}", headers=world.auth("east_community"))
    assert missing.status_code == 404
    # 志愿服务 per community: one order done in 2.5 hours by one party member, one cancelled
    stats = world.client.get(
        "/api/v1/assessment/volunteers",
        params={"from": "2000-01-01", "to": "2100-01-01", "level": "community"},
        headers=world.auth("street"),
    )
    # more than a year: the first year is assessed, and the answer says so
    assert stats.status_code == 200 and stats.json()["to"][:10] == "2001-01-01", stats.text
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    stats = world.client.get(
        "/api/v1/assessment/volunteers",
        params={"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2)),
                "level": "community"},
        headers=world.auth("street"),
    ).json()  # fmt: skip
    (west,) = stats["areas"]
    assert (west["orders"], west["done"], west["hours"], west["volunteers"]) == (2, 1, 2.5, 1)
    assert west["party_members"] == 1 and west["satisfaction_rate"] == 100.0
    assert world.client.patch(
        f"/api/v1/volunteers/{west_vol}", json={"active": False},
        headers=world.auth("east_community"),
    ).status_code == 404  # fmt: skip
    assert world.client.patch(
        f"/api/v1/volunteers/{west_vol}", json={"skills": ["送轮椅", "助老陪护"]},
        headers=world.auth("west_community"),
    ).status_code == 200  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {**ORDER, "lon": 200},
        {**ORDER, "description": ""},
        {**ORDER, "description": "x\x00" * 3000},
        {**ORDER, "resident_phone": "call me"},
        {**ORDER, "lon": 100.0, "lat": 20.0},
    ],
)
def test_orders_refuse_bad_bodies(world: World, body: dict) -> None:
    r = _post(world, "orders", body, None)
    # A NUL is refused at the edge (400 nul_character), the rest by the route (422).
    assert r.status_code == (400 if _has_nul(body) else 422), r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("volunteers", {"name": "", "grid": 9004}),
        ("volunteers", {"name": "王", "grid": 2**63}),
        ("volunteers", {"name": "王", "grid": 9004, "skills": ["x" * 41]}),
        ("volunteers", {"name": "王", "grid": 9004, "phone": "\x00"}),
        ("partners", {"name": "单位", "grid": 9002, "offers": [""]}),
        ("partners", {"name": "单位", "grid": 9002, "extra": 1}),
    ],
)
def test_registries_refuse_bad_bodies(world: World, path: str, body: dict) -> None:
    r = _post(world, path, body, "west_community")
    assert r.status_code == (400 if _has_nul(body) else 422), r.text


def _has_nul(body: dict) -> bool:
    return any(isinstance(v, str) and "\x00" in v for v in body.values())


@pytest.mark.parametrize("body", [{"active": None}, {"skills": None}, {}, {"grid": 9005}])
def test_registry_patches_refuse_bad_bodies(world: World, body: dict) -> None:
    """A volunteer's required fields cannot be nulled, nor its grid moved by a patch."""
    vol = {"name": "补丁志愿", "skills": ["送轮椅"], "grid": 9004}
    vid = _post(world, "volunteers", vol, "west_community").json()["id"]
    r = world.client.patch(
        f"/api/v1/volunteers/{vid}", json=body, headers=world.auth("west_community")
    )
    assert r.status_code == 422, r.text


def test_order_actions_refuse_bad_input(world: World) -> None:
    url = "/api/v1/orders/{}/actions"
    auth = world.auth("west_community")
    for oid, body, status in (
        (2**63, {"action": "take", "version": 1}, 422),
        (999999, {"action": "take", "version": 1}, 404),
        (1, {"action": "fly", "version": 1}, 422),
        (1, {"action": "rate", "version": 1, "rating": "great"}, 422),
    ):
        r = world.client.post(url.format(oid), json=body, headers=auth)
        assert r.status_code == status, (oid, body, r.text)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-10-01", "to": "2026-11-01", "level": "planet"},
        {"from": "2026-10-01\x00", "to": "2026-11-01"},
        {"from": "99999-01-01", "to": "2026-11-01"},
        {"month": "2026-13"},
        {"from": "2026-10-01", "to": "2026-11-01", "f": "pdf"},
    ],
)
def test_volunteer_figures_refuse_bad_input(world: World, params: dict) -> None:
    r = world.client.get(
        "/api/v1/assessment/volunteers", params=params, headers=world.auth("street")
    )
    # a NUL is refused at the edge (400 nul_character), the rest by the route (422)
    assert r.status_code == (400 if "\x00" in params.get("from", "") else 422), (params, r.text)
    assert r.json()["code"] and r.json()["message"]


def test_volunteer_figures_as_csv_and_xlsx(world: World) -> None:
    """志愿服务 exports with Chinese headings, like every assessment table (the orders of
    test_registries_and_the_whole_order, placed today)."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2)),
              "level": "community"}  # fmt: skip
    csv_ = world.client.get(
        "/api/v1/assessment/volunteers", params={**params, "f": "csv"},
        headers=world.auth("street"),
    )  # fmt: skip
    assert csv_.status_code == 200 and csv_.headers["content-type"].startswith("text/csv")
    assert "志愿服务时长(小时)" in csv_.text.splitlines()[0]
    xlsx = world.client.get(
        "/api/v1/assessment/volunteers", params={**params, "f": "xlsx"},
        headers=world.auth("street"),
    )  # fmt: skip
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
