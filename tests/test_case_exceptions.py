"""Exceptions with approval (延期, 缓办, 退回, 作废), callbacks with rework and the receipt link,
and 吹哨报到: allowed and refused moves, who may decide, and what each step leaves behind."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from gis_service.auth.principal import Principal
from gis_service.errors import Forbidden
from gis_service.hazards.policy import authorize_move, case_facts
from gis_service.whistles.workflow import WHISTLE_MACHINE
from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("exc"), "hexc") as w:
        yield w


def _dispatched(world: World) -> int:
    hid = world.report("admin")["id"]
    assert world.act(hid, "accept").status_code == 200
    assert world.act(hid, "dispatch", assignee_person_id=8006).status_code == 200
    return hid


def _closed(world: World, **report: object) -> int:
    hid = world.report("admin", **report)["id"]
    for action, args in (
        ("accept", {}),
        ("dispatch", {"assignee_person_id": 8006}),
        ("start", {}),
        ("resolve", {"note": "已清理"}),
        ("verify", {}),
        ("close", {}),
    ):
        who = "field" if action in ("start", "resolve") else "admin"
        r = world.act(hid, action, who=who, **args)
        assert r.status_code == 200, (action, r.text)
    return hid


def _write(world: World, sql: str, **params: object) -> None:
    """Change a row behind the service's back (committed), to move a clock."""
    with world.engine.begin() as conn:
        conn.execute(text(sql), params)


def _props(world: World, hid: int, who: str = "admin") -> dict:
    return world.client.get(f"/api/v1/hazards/{hid}", headers=world.auth(who)).json()["properties"]


def test_extension_needs_a_reason_and_a_role_above(world: World) -> None:
    hid = _dispatched(world)
    due = world.scalar("SELECT due_at FROM hazards WHERE id = :id", id=hid)
    # a request needs a reason and the time asked for
    assert world.act(hid, "request_extension", who="field", extension_days=2).status_code == 422
    assert world.act(hid, "request_extension", who="field", note="等材料").status_code == 422
    r = world.act(hid, "request_extension", who="field", note="等待配件到货", extension="2 工作日")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "dispatched"
    # one request at a time
    again = world.act(hid, "request_extension", who="field", note="再延", extension_days=1)
    assert again.status_code == 409 and again.json()["code"] == "request_pending"
    # the requester, a grid leader (no dispatch) and nobody of the same rank may decide
    assert world.act(hid, "approve_extension", who="field").status_code == 403
    assert world.act(hid, "approve_extension", who="west_leader").status_code == 403
    offered = _props(world, hid, "west_community")["allowed_actions"]
    assert {"approve_extension", "refuse_extension"} <= set(offered)
    assert "request_extension" not in offered
    r = world.act(hid, "approve_extension", who="west_community", note="同意")
    assert r.status_code == 200, r.text
    new_due = world.scalar("SELECT due_at FROM hazards WHERE id = :id", id=hid)
    expected = world.scalar(
        "SELECT gis_work_due(CAST(:d AS timestamptz), "
        'CAST(\'{"amount": 2, "unit": "work_days"}\' AS jsonb))',
        d=due,
    )
    assert new_due == expected and new_due > due
    row = world.scalar(
        "SELECT json_build_object('s', status, 'role', decider_role, 'req', requester_role,"
        " 'reason', reason)::text FROM case_exceptions WHERE hazard_id = :id",
        id=hid,
    )
    assert json.loads(row) == {
        "s": "approved",
        "role": "community_staff",
        "req": "field_staff",
        "reason": "等待配件到货",
    }
    history = [e["action"] for e in _props(world, hid)["history"]]
    assert history[-2:] == ["request_extension", "approve_extension"]
    # no request left: a decision is refused
    r = world.act(hid, "approve_extension", who="west_community")
    assert r.status_code == 409 and r.json()["code"] == "no_such_request"


def test_suspension_stops_the_clock_and_resume_gives_it_back(world: World) -> None:
    hid = _dispatched(world)
    r = world.act(hid, "request_suspension", who="west_community", note="等待业主回国")
    assert r.status_code == 200, r.text
    # community staff asked: not they themselves, only street staff or an admin decide
    own = world.act(hid, "approve_suspension", who="west_community")
    assert own.status_code == 403 and "own request" in own.json()["message"]
    r = world.act(hid, "approve_suspension", who="street", note="同意缓办")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "suspended"
    assert world.act(hid, "start", who="field").status_code == 409
    _write(world, "UPDATE hazards SET due_at = now() - interval '1 hour' WHERE id = :id", id=hid)
    # suspended cases are not overdue: the clock stands still
    overdue = world.client.get("/api/v1/hazards/overdue", headers=world.auth("admin")).json()
    assert hid not in [f["id"] for f in overdue["features"]]
    _write(
        world,
        "UPDATE hazards SET due_at = suspended_at + interval '3 days' WHERE id = :id",
        id=hid,
    )
    left = world.scalar(
        "SELECT gis_work_seconds(suspended_at, due_at) FROM hazards WHERE id = :id", id=hid
    )
    r = world.act(hid, "resume", who="west_community", note="业主已回")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "dispatched"
    back = world.scalar(
        "SELECT gis_work_seconds(now(), due_at) FROM hazards WHERE id = :id", id=hid
    )
    assert abs(back - left) < 120  # the working time left is given back (within the test run)


def test_send_back_refused_then_approved(world: World) -> None:
    hid = _dispatched(world)
    assert world.act(hid, "send_back", who="field", note="不属于本网格").status_code == 200
    assert world.act(hid, "refuse_send_back", who="west_community").status_code == 422
    r = world.act(hid, "refuse_send_back", who="west_community", note="属于本网格，请处置")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "dispatched"
    assert world.act(hid, "send_back", who="field", note="确属东社区").status_code == 200
    r = world.act(hid, "approve_send_back", who="west_community")
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["status"] == "accepted" and props["assignee"] is None and props["due_at"] is None
    kinds = world.scalar(
        "SELECT string_agg(status, ',' ORDER BY id) FROM case_exceptions WHERE hazard_id = :id",
        id=hid,
    )
    assert kinds == "refused,approved"


def test_void_by_street_on_community_request(world: World) -> None:
    hid = world.report("admin")["id"]
    assert world.act(hid, "request_void", who="west_community", note="重复录入").status_code == 200
    r = world.act(hid, "approve_void", who="admin")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "voided"
    assert world.act(hid, "accept").status_code == 409
    # the approval queue lists it, in scope only
    done = world.client.get(
        "/api/v1/exceptions", params={"status": "approved"}, headers=world.auth("street")
    ).json()
    assert hid in [i["hazard_id"] for i in done["items"]]
    east = world.client.get(
        "/api/v1/exceptions", params={"status": "approved"}, headers=world.auth("east_community")
    ).json()
    assert hid not in [i["hazard_id"] for i in east["items"]]


def test_decisions_are_people_not_keys() -> None:
    class Case:
        status = "dispatched"
        public_code = "YH-1"
        grid_path = (1, 2)
        assignee_person_id = None
        pending_kind = "extension"
        requester_role = "field_staff"
        pending_requested_by = "user:7"

    key = Principal("api_key", 3, "热线", None, frozenset({"dispatch", "write"}), None, (), None)
    with pytest.raises(Forbidden):
        authorize_move(key, Case(), "approve_extension")
    same = Principal("user", 7, "王", "community_staff", frozenset({"dispatch"}), None, (), None)
    with pytest.raises(Forbidden, match="own request"):
        authorize_move(same, Case(), "approve_extension")
    boss = Principal("user", 8, "李", "community_staff", frozenset({"dispatch"}), None, (), None)
    authorize_move(boss, Case(), "approve_extension")  # community above field staff
    Case.requester_role = "community_staff"  # a colleague of the same rank may not decide
    with pytest.raises(Forbidden) as info:
        authorize_move(boss, Case(), "approve_extension")
    assert info.value.code == "approval_needs_higher_role"
    street = Principal("user", 9, "赵", "street_staff", frozenset({"dispatch"}), None, (), None)
    authorize_move(street, Case(), "approve_extension")
    assert case_facts(Case()) == ["pending:extension"]


def test_callback_rework_by_staff(world: World) -> None:
    hid = _closed(world)
    assert world.act(hid, "callback", who="west_community").status_code == 422  # no rating
    assert world.act(hid, "rework", who="west_community").status_code == 409  # no answer yet
    r = world.act(hid, "callback", who="west_community", rating="dissatisfied", note="仍有杂物")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "closed"
    again = world.act(hid, "callback", who="west_community", rating="satisfied")
    assert again.status_code == 409 and again.json()["code"] == "callback_taken"
    r = world.act(hid, "rework", who="west_community", note="返工")
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["status"] == "dispatched" and props["assignee"]["id"] == 8006
    assert world.scalar("SELECT rework_count FROM hazards WHERE id = :id", id=hid) == 1


def test_receipt_callback_with_rework_and_window(world: World) -> None:
    body = {"category": "clutter", "lon": 113.603, "lat": 34.703, "description": "门口垃圾"}
    r = world.client.post("/api/v1/hazards", json=body)
    assert r.status_code == 201, r.text
    token = r.json()["receipt"]["token"]
    url = r.json()["receipt"]["url"]
    hid = r.json()["id"]
    seen = world.client.get(url).json()
    assert seen["public_code"] == r.json()["properties"]["public_code"]
    assert seen["may_answer_callback"] is False and "reporter" not in json.dumps(seen)
    early = world.client.post(f"{url}/callback", json={"rating": "satisfied"})
    assert early.status_code == 409 and early.json()["code"] == "not_closed"
    for action, args, who in (
        ("accept", {}, "admin"),
        ("dispatch", {"assignee_person_id": 8006}, "admin"),
        ("start", {}, "field"),
        ("resolve", {"note": "清理"}, "field"),
        ("verify", {}, "admin"),
        ("close", {}, "admin"),
    ):
        assert world.act(hid, action, who=who, **args).status_code == 200
    assert world.client.get(url).json()["may_answer_callback"] is True
    bad = world.client.post(f"{url}/callback", json={"rating": "satisfied", "rework": True})
    assert bad.status_code == 409 and bad.json()["code"] == "rework_refused"
    ok = world.client.post(
        f"{url}/callback", json={"rating": "dissatisfied", "comment": "没清干净", "rework": True}
    )
    assert ok.status_code == 200 and ok.json()["rework"] is True, ok.text
    assert _props(world, hid)["status"] == "dispatched"
    rows = world.scalar(
        "SELECT json_agg(json_build_object('v', via, 'r', rating, 'w', rework))::text "
        "FROM case_callbacks WHERE hazard_id = :id",
        id=hid,
    )
    assert json.loads(rows) == [{"v": "receipt", "r": "dissatisfied", "w": True}]
    # closed again, too long ago: no rework any more, and nothing is recorded
    for action, args, who in (
        ("start", {}, "field"),
        ("resolve", {"note": "再清理"}, "field"),
        ("verify", {}, "admin"),
        ("close", {}, "admin"),
    ):
        assert world.act(hid, action, who=who, **args).status_code == 200
    _write(
        world,
        "UPDATE hazards SET closed_at = closed_at - interval '30 days' WHERE id = :id",
        id=hid,
    )
    late = world.client.post(f"{url}/callback", json={"rating": "dissatisfied", "rework": True})
    assert late.status_code == 409 and late.json()["code"] == "rework_window_passed"
    assert world.scalar("SELECT count(*) FROM case_callbacks WHERE hazard_id = :id", id=hid) == 1
    assert token.startswith("rc_")
    assert world.client.get("/api/v1/receipts/rc_" + "x" * 32).status_code == 404
    assert world.client.get("/api/v1/receipts/rc_%00" + "x" * 30).status_code == 422
    assert world.client.get("/api/v1/receipts/" + "9" * 400).status_code == 422


# ---- 吹哨报到 -----------------------------------------------------------------------------------
WHISTLE_EXPECTED = {
    "called": {"report_in": "reported_in", "withdraw": "withdrawn"},
    "reported_in": {"progress": "reported_in", "finish": "finished", "withdraw": "withdrawn"},
    "finished": {},
    "withdrawn": {},
}


def test_whistle_state_table_is_complete() -> None:
    assert set(WHISTLE_EXPECTED) == set(WHISTLE_MACHINE.statuses)
    for status, moves in WHISTLE_EXPECTED.items():
        assert set(WHISTLE_MACHINE.allowed(status)) == set(moves), status
        for action, target in moves.items():
            assert WHISTLE_MACHINE.target(action, status) == target


def _partner(world: World) -> int:
    with world.engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO partner_units (name, offers) "
                "VALUES ('郑州市市政设施事务中心（测试）', '{管道疏通}') "
                "ON CONFLICT (name) DO UPDATE SET active = true RETURNING id"
            )
        ).scalar_one()


def _call_act(world: World, call: dict, action: str, who: str, **kw) -> object:
    return world.client.post(
        f"/api/v1/whistles/{call['id']}/actions",
        json={"action": action, "version": call["version"], **kw},
        headers=world.auth(who),
    )


def _calls(world: World, hid: int, who: str = "west_community", **params) -> list[dict]:
    r = world.client.get(
        "/api/v1/whistles", params={"hazard": hid, **params}, headers=world.auth(who)
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_whistle_calls_report_in_and_late(world: World) -> None:
    hid = _dispatched(world)
    partner = _partner(world)
    url = f"/api/v1/hazards/{hid}/whistles"
    body = {
        "parties": [{"department": "erqi_urban_management"}, {"partner_id": partner}],
        "report_in": "2 工作时",
        "act": "3 工作日",
        "note": "井盖下沉需市政处置",
    }
    assert world.client.post(url, json=body, headers=world.auth("field")).status_code == 403
    assert world.client.post(url, json=body, headers=world.auth("east_community")).status_code in (
        403,
        404,
    )
    r = world.client.post(url, json=body, headers=world.auth("west_community"))
    assert r.status_code == 201, r.text
    assert len(r.json()["calls"]) == 2
    ok = world.scalar(
        "SELECT bool_and(report_due_at = gis_work_due(called_at, report_limit)"
        " AND act_due_at = gis_work_due(called_at, act_limit)) FROM whistle_calls"
        " WHERE hazard_id = :id",
        id=hid,
    )
    assert ok is True
    assert "whistle" in [e["action"] for e in _props(world, hid)["history"]]
    dept, unit = sorted(_calls(world, hid), key=lambda c: c["partner_id"] or 0)
    assert dept["allowed_actions"] == ["report_in", "withdraw"]
    # refused moves: finishing before reporting in, a stale version, withdrawing as a handler
    assert _call_act(world, dept, "finish", "field").status_code == 409
    assert _call_act(world, {**dept, "version": 9}, "report_in", "field").status_code == 412
    assert _call_act(world, dept, "withdraw", "field", note="x").status_code == 403
    assert _call_act(world, dept, "report_in", "east_leader").status_code in (403, 404)
    r = _call_act(world, dept, "report_in", "field", note="城管已到场")
    assert r.status_code == 200 and r.json()["late"] is False, r.text
    # the partner is late: its report-in deadline has passed
    _write(
        world,
        "UPDATE whistle_calls SET report_due_at = now() - interval '1 hour' WHERE id = :id",
        id=unit["id"],
    )
    late = _calls(world, hid, late="true")
    assert [c["id"] for c in late] == [unit["id"]]
    r = _call_act(world, unit, "report_in", "field")
    assert r.status_code == 200 and r.json()["late"] is True
    dept = next(c for c in _calls(world, hid) if c["id"] == dept["id"])
    assert _call_act(world, dept, "progress", "field").status_code == 422  # needs a note
    r = _call_act(world, dept, "progress", "field", note="已更换井盖")
    assert r.status_code == 200 and r.json()["status"] == "reported_in"
    dept = next(c for c in _calls(world, hid) if c["id"] == dept["id"])
    r = _call_act(world, dept, "finish", "field", note="完成")
    assert r.status_code == 200 and r.json()["status"] == "finished"
    dept = next(c for c in _calls(world, hid) if c["id"] == dept["id"])
    assert [h["action"] for h in dept["history"]] == ["call", "report_in", "progress", "finish"]
    assert _call_act(world, dept, "withdraw", "west_community", note="x").status_code == 409


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"parties": []}, 422),
        ({"parties": [{"department": "nope_dept"}]}, 422),
        ({"parties": [{"department": "erqi_urban_management", "partner_id": 1}]}, 422),
        ({"parties": [{"partner_id": 2**62}]}, 422),
        ({"parties": [{"department": "erqi_urban_management"}], "report_in": "soon"}, 422),
        ({"parties": [{"department": "erqi_urban_management"}], "act": "9999 工作日"}, 422),
        ({"parties": [{"department": "erqi\x00"}]}, 422),
    ],
)
def test_whistle_refuses_bad_bodies(world: World, body: dict, status: int) -> None:
    hid = _dispatched(world)
    r = world.client.post(
        f"/api/v1/hazards/{hid}/whistles", json=body, headers=world.auth("west_community")
    )
    assert r.status_code == status, r.text


def test_whistle_on_closed_case_and_unknown_ids(world: World) -> None:
    hid = _closed(world)
    body = {"parties": [{"department": "erqi_urban_management"}]}
    r = world.client.post(
        f"/api/v1/hazards/{hid}/whistles", json=body, headers=world.auth("west_community")
    )
    assert r.status_code == 409 and r.json()["code"] == "case_closed"
    huge = world.client.post(
        f"/api/v1/hazards/{2**63}/whistles", json=body, headers=world.auth("admin")
    )
    assert huge.status_code == 422
    missing = world.client.post(
        "/api/v1/whistles/999999/actions",
        json={"action": "report_in", "version": 1},
        headers=world.auth("admin"),
    )
    assert missing.status_code == 404
