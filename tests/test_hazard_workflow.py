"""The closed loop: every allowed and every refused move, who may make them, versions under
concurrency, escalation, reopening, duplicates, overdue work, statistics and my tasks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from gis_service.geo.datums import wgs84_to_gcj02
from gis_service.hazards.states import HAZARD_STATUSES
from gis_service.hazards.workflow import ACTIONS, MOVES
from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world, jpeg_with_gps

# The moves that bring a fresh report into each state.
PATHS: dict[str, list[tuple[str, dict]]] = {
    "reported": [],
    "accepted": [("accept", {})],
    "rejected": [("reject", {"note": "不属于本辖区"})],
    "dispatched": [("accept", {}), ("dispatch", {"assignee_person_id": 8006})],
}
PATHS["in_progress"] = [*PATHS["dispatched"], ("start", {})]
PATHS["resolved"] = [*PATHS["in_progress"], ("resolve", {"note": "已清理"})]
PATHS["verified"] = [*PATHS["resolved"], ("verify", {})]
PATHS["closed"] = [*PATHS["verified"], ("close", {})]
PATHS["voided"] = [("request_void", {"note": "重复录入"}), ("approve_void", {})]
PATHS["suspended"] = [
    *PATHS["dispatched"],
    ("request_suspension", {"note": "等待业主"}),
    ("approve_suspension", {}),
]

# The body each action needs to succeed.
ARGS: dict[str, dict] = {
    "dispatch": {"assignee_person_id": 8006},
    "reject": {"note": "不予立案"},
    "fail_verification": {"note": "现场仍有杂物"},
    "reopen": {"note": "居民反映问题复发"},
    "escalate": {"assignee_department": "erqi_urban_management"},
    "comment": {"note": "备注"},
    "request_extension": {"note": "等待配件", "extension": "2 工作日"},
    "request_suspension": {"note": "等待业主"},
    "send_back": {"note": "不属于本网格"},
    "request_void": {"note": "重复录入"},
    "callback": {"rating": "satisfied"},
    "resume": {"note": "恢复"},
}
# Moves whose guard needs a fact a fresh case in the state lacks (a waiting request, an
# unsatisfied callback), and the 409 code that says so.
GUARDED = {
    **{
        f"{step}_{kind}": "no_such_request"
        for kind in ("extension", "suspension", "send_back", "void")
        for step in ("approve", "refuse")
    },
    "rework": "rework_not_open",
}
_EXCEPTIONS_ON = {
    f"{step}_{kind}": "__same__"
    for kind in ("extension", "suspension", "void")
    for step in ("request", "approve", "refuse")
}
_HANDLING_EXCEPTIONS = {
    **_EXCEPTIONS_ON,
    "send_back": "__same__",
    "approve_send_back": "accepted",
    "refuse_send_back": "__same__",
    "approve_suspension": "suspended",
    "approve_void": "voided",
}
_VOID_ONLY = {"request_void": "__same__", "approve_void": "voided", "refuse_void": "__same__"}

# The whole state table, written out by hand so that a change to workflow.py shows up here.
EXPECTED: dict[str, dict[str, str]] = {
    "reported": {
        "accept": "accepted",
        "reject": "rejected",
        "mark_duplicate": "closed",
        "comment": "reported",
        **_VOID_ONLY,
    },
    "accepted": {
        "dispatch": "dispatched",
        "escalate": "dispatched",
        "mark_duplicate": "closed",
        "comment": "accepted",
        **_VOID_ONLY,
    },
    "rejected": {"comment": "rejected"},
    "dispatched": {
        "dispatch": "dispatched",
        "start": "in_progress",
        "escalate": "dispatched",
        "mark_duplicate": "closed",
        "comment": "dispatched",
        **_HANDLING_EXCEPTIONS,
    },
    "in_progress": {
        "resolve": "resolved",
        "escalate": "dispatched",
        "mark_duplicate": "closed",
        "comment": "in_progress",
        **_HANDLING_EXCEPTIONS,
    },
    "resolved": {
        "verify": "verified",
        "fail_verification": "dispatched",
        "comment": "resolved",
    },
    "verified": {"close": "closed", "comment": "verified"},
    "closed": {
        "reopen": "accepted",
        "comment": "closed",
        "callback": "closed",
        "rework": "dispatched",
    },
    "suspended": {"resume": "dispatched", "comment": "suspended"},
    "voided": {"comment": "voided"},
}
for _status, _moves in EXPECTED.items():
    for _action, _target in _moves.items():
        if _target == "__same__":
            _moves[_action] = _status


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("flow"), "hflow") as w:
        yield w


def _in_state(world: World, status: str, **report: object) -> int:
    hid = world.report("admin", **report)["id"]
    for action, args in PATHS[status]:
        # requests come from the community, decisions from above it (the admin)
        who = "west_community" if action.startswith("request_") else "admin"
        r = world.act(hid, action, who=who, **args)
        assert r.status_code == 200, r.text
    assert world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["status"] == status
    return hid


def test_state_table_is_complete() -> None:
    assert set(EXPECTED) == set(HAZARD_STATUSES)
    for status, moves in EXPECTED.items():
        assert {a for a in ACTIONS if status in MOVES[a].sources} == set(moves), status


@pytest.mark.parametrize("status", HAZARD_STATUSES)
def test_every_move(world: World, status: str) -> None:
    """Every action from every state: refused ones on one case (they change nothing), each
    allowed one on a fresh case in that state."""
    refused_on = _in_state(world, status)
    # a fresh case has no request waiting and no callback (the guards' facts)
    fresh_allowed = [
        a for a in ACTIONS if a in EXPECTED[status] and not (a in GUARDED or MOVES[a].guard)
    ] + [a for a in ACTIONS if a in EXPECTED[status] and MOVES[a].guard == "no_pending"]
    fresh_allowed = [a for a in ACTIONS if a in fresh_allowed]
    for action in ACTIONS:
        expected = EXPECTED[status].get(action)
        if expected is None or action in GUARDED:
            before = world.client.get(f"/api/v1/hazards/{refused_on}").json()["properties"]
            r = world.act(refused_on, action, version=before["version"], **ARGS.get(action, {}))
            assert r.status_code == 409, (action, r.text)
            body = r.json()
            if expected is None:
                assert body["code"] == "move_not_allowed", (action, body)
                assert body["details"]["allowed"] == fresh_allowed, action
                assert action in body["message"]
            else:
                assert body["code"] == GUARDED[action], (action, body)
            after = world.client.get(f"/api/v1/hazards/{refused_on}").json()["properties"]
            assert after["version"] == before["version"] and after["status"] == status
            continue
        hid = _in_state(world, status)
        args = dict(ARGS.get(action, {}))
        if action == "mark_duplicate":
            args["duplicate_of"] = str(world.report("admin")["id"])
        before = world.client.get(f"/api/v1/hazards/{hid}")
        version = before.json()["properties"]["version"]
        events = len(before.json()["properties"]["history"])
        who = "admin" if not action.startswith(("request_", "send_back")) else "west_community"
        r = world.act(hid, action, who=who, version=version, **args)
        assert r.status_code == 200, (action, r.text)
        props = r.json()["properties"]
        assert props["status"] == expected, action
        assert props["version"] == version + 1
        assert r.headers["etag"] == f'"{version + 1}"'
        assert r.json()["event"]["action"] == action
        history = props["history"]
        assert len(history) == events + 1
        last = history[-1]
        assert (last["action"], last["from_status"], last["to_status"]) == (
            action,
            status,
            expected,
        )
        # each move is audited in the same transaction
        assert (
            world.scalar(
                "SELECT count(*) FROM audit_log WHERE object_type = 'hazard' "
                "AND object_id = :id AND action = :a",
                id=str(hid),
                a=f"hazard.{action}",
            )
            >= 1
        )


def test_moves_set_timestamps_and_deadline(world: World) -> None:
    hid = _in_state(world, "dispatched")
    handle = '{"amount": 4, "unit": "work_hours"}'
    accept = '{"amount": 2, "unit": "work_hours"}'
    row = world.scalar(
        "SELECT json_build_object("
        " 'd', due_at = gis_work_due(dispatched_at, CAST(:handle AS jsonb)),"
        " 'r', accept_due_at = gis_work_due(reported_at, CAST(:accept AS jsonb)),"
        " 'a', accepted_at IS NOT NULL, 'who', assignee_person_id)::text"
        " FROM hazards WHERE id = :id",
        id=hid,
        handle=handle,
        accept=accept,
    )
    # clutter: 立案 2 工作时 from the report, 处置 4 工作时 from the dispatch (working time)
    assert '"d" : true' in row and '"r" : true' in row, row
    assert '"a" : true' in row and '"who" : 8006' in row
    props = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]
    assert props["assignee"]["name"] == "西网格员"
    # a re-dispatch changes the handler but not the deadline
    due = world.scalar("SELECT due_at FROM hazards WHERE id = :id", id=hid)
    assert (
        world.act(hid, "dispatch", assignee_department="erqi_urban_management").status_code == 200
    )
    assert world.scalar("SELECT due_at FROM hazards WHERE id = :id", id=hid) == due
    props = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]
    assert props["assignee_department"]["code"] == "erqi_urban_management"


def test_move_bodies_are_checked(world: World) -> None:
    hid = _in_state(world, "accepted")
    cases = [
        ({"action": "dispatch"}, 422, "assignee"),
        ({"action": "dispatch", "assignee_person_id": 999999}, 422, "No active person"),
        ({"action": "dispatch", "assignee_department": "nope"}, 422, "department"),
        ({"action": "start", "note": "x"}, 409, "not possible"),
        ({"action": "fly"}, 422, "action"),
        ({"action": "accept", "assignee_person_id": 8006}, 422, "does not take"),
        ({"action": "comment"}, 422, "note or photos"),
        ({"action": "mark_duplicate"}, 422, "duplicate_of"),
        ({"action": "mark_duplicate", "duplicate_of": str(hid)}, 422, "itself"),
        ({"action": "mark_duplicate", "duplicate_of": "YH00000000-999999"}, 422, "No hazard"),
    ]
    for body, status, fragment in cases:
        version = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
        r = world.client.post(
            f"/api/v1/hazards/{hid}/actions",
            json=body,
            headers={**world.auth("admin"), "If-Match": f'"{version}"'},
        )
        assert r.status_code == status, (body, r.text)
        assert fragment in r.text, (body, r.text)
    closed = _in_state(world, "closed")
    version = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
    r = world.act(hid, "mark_duplicate", version=version, duplicate_of=str(closed))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_target_closed"
    # reject, fail_verification and reopen need a reason
    fresh = _in_state(world, "reported")
    assert world.act(fresh, "reject").status_code == 422


def test_preconditions(world: World) -> None:
    hid = _in_state(world, "reported")
    url = f"/api/v1/hazards/{hid}/actions"
    r = world.client.post(url, json={"action": "accept"}, headers=world.auth("admin"))
    assert r.status_code == 428 and r.json()["details"]["etag"] == '"1"'
    r = world.client.post(
        url, json={"action": "accept"}, headers={**world.auth("admin"), "If-Match": "soon"}
    )
    assert r.status_code == 400
    r = world.client.post(
        url, json={"action": "accept"}, headers={**world.auth("admin"), "If-Match": '"7"'}
    )
    assert r.status_code == 412 and r.headers["etag"] == '"1"'
    # W/"1" and a version field work too
    r = world.client.post(
        url, json={"action": "accept"}, headers={**world.auth("admin"), "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200
    r = world.client.post(
        url, json={"action": "comment", "note": "x", "version": 2}, headers=world.auth("admin")
    )
    assert r.status_code == 200
    assert world.client.get(f"/api/v1/hazards/{hid}").headers["etag"] == '"3"'
    r = world.client.post(
        "/api/v1/hazards/99999999/actions",
        json={"action": "accept"},
        headers={**world.auth("admin"), "If-Match": '"1"'},
    )
    assert r.status_code == 404


def test_concurrent_moves_exactly_one_wins(world: World) -> None:
    hid = _in_state(world, "dispatched")
    version = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
    barrier = threading.Barrier(2)
    codes: dict[str, int] = {}

    def move(action: str, args: dict) -> None:
        barrier.wait()
        codes[action] = world.act(hid, action, version=version, **args).status_code

    threads = [
        threading.Thread(target=move, args=("start", {})),
        threading.Thread(target=move, args=("escalate", {"assignee_department": "power_supply"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [200, 412], codes
    props = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]
    assert props["version"] == version + 1
    winner = next(a for a, c in codes.items() if c == 200)
    assert props["history"][-1]["action"] == winner


def test_no_update_is_lost_under_retries(world: World) -> None:
    hid = _in_state(world, "in_progress")
    start = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
    n = 6
    conflicts: list[int] = []

    def comment(i: int) -> None:
        while True:
            r = world.act(hid, "comment", note=f"第{i}条")
            if r.status_code == 200:
                return
            assert r.status_code == 412, r.text
            conflicts.append(i)

    threads = [threading.Thread(target=comment, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    props = world.client.get(f"/api/v1/hazards/{hid}", headers=world.auth("admin")).json()
    assert props["properties"]["version"] == start + n
    notes = [e["note"] for e in props["properties"]["history"] if e["action"] == "comment"]
    assert sorted(notes) == sorted(f"第{i}条" for i in range(n))


# ---- who may do what --------------------------------------------------------------------------
def test_permissions(world: World) -> None:
    west = _in_state(world, "reported")
    east = _in_state(world, "reported", lon=113.615, lat=34.715)
    # community staff decide inside their community only
    assert world.act(east, "accept", who="west_community").status_code == 403
    assert world.act(west, "accept", who="west_community").status_code == 200
    # grid leaders and field staff have no say on accepting
    assert world.act(east, "accept", who="east_leader").status_code == 403
    assert world.act(east, "accept", who="east_community").status_code == 200
    # viewers and anonymous callers do nothing
    assert world.act(west, "comment", who="viewer", note="x").status_code == 403
    r = world.client.post(
        f"/api/v1/hazards/{west}/actions",
        json={"action": "comment", "note": "x"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 401
    # field staff work in their grid, and on what is assigned to them anywhere
    assert (
        world.act(west, "dispatch", who="west_community", assignee_person_id=8004).status_code
        == 200
    )
    assert world.act(west, "start", who="field").status_code == 200  # in their grid
    assert (
        world.act(east, "dispatch", who="east_community", assignee_person_id=8005).status_code
        == 200
    )
    assert world.act(east, "start", who="field").status_code == 403  # outside, not theirs
    assert world.act(east, "comment", who="west_leader", note="x").status_code == 403
    assert world.act(east, "dispatch", who="street", assignee_person_id=8006).status_code == 200
    assert world.act(east, "start", who="field").status_code == 200  # assigned to them
    assert world.act(east, "resolve", who="field", note="处理好了").status_code == 200
    # a field worker may not verify; community staff may; the street may everywhere
    assert world.act(east, "verify", who="field").status_code == 403
    assert world.act(east, "verify", who="west_community").status_code == 403
    assert world.act(east, "verify", who="east_community").status_code == 200
    assert world.act(east, "close", who="street").status_code == 200
    # the allowed actions offered to each caller follow the same rule
    offered = world.client.get(f"/api/v1/hazards/{west}", headers=world.auth("field")).json()
    # the handler works and may ask for an exception; the decisions are the community's
    requests = ["request_extension", "request_suspension", "send_back", "request_void"]
    assert offered["properties"]["allowed_actions"] == ["resolve", *requests, "comment"]
    offered = world.client.get(f"/api/v1/hazards/{west}", headers=world.auth("west_community"))
    assert offered.json()["properties"]["allowed_actions"] == [
        "resolve",
        "escalate",
        "mark_duplicate",
        *requests,
        "comment",
    ]


def test_nobody_verifies_their_own_work(world: World) -> None:
    hid = _in_state(world, "accepted")
    assert (
        world.act(hid, "dispatch", who="west_community", assignee_person_id=8002).status_code == 200
    )
    assert world.act(hid, "start", who="west_community").status_code == 200
    assert world.act(hid, "resolve", who="west_community").status_code == 200
    r = world.act(hid, "verify", who="west_community")
    assert r.status_code == 403 and "own work" in r.json()["message"]
    assert world.act(hid, "verify", who="street").status_code == 200


def test_escalation_walks_up_the_chain(world: World) -> None:
    hid = _in_state(world, "dispatched")  # handled by the west grid member (8006)
    r = world.act(hid, "escalate", who="field", note="需要社区协调")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["assignee"]["name"] == "西社区书记"
    r = world.act(hid, "escalate", who="west_community", note="社区吹哨")
    assert r.status_code == 200
    assert r.json()["properties"]["assignee"]["name"] == "街道主任"
    r = world.act(hid, "escalate", who="street")
    assert r.status_code == 409 and r.json()["code"] == "nowhere_to_escalate"
    r = world.act(hid, "escalate", who="street", assignee_department="zz_municipal_facilities")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["assignee"] is None
    assert props["assignee_department"]["code"] == "zz_municipal_facilities"
    assert props["status"] == "dispatched"
    # escalating an accepted case starts its clock
    acc = _in_state(world, "accepted")
    world.act(acc, "escalate", assignee_department="power_supply")
    assert world.scalar("SELECT due_at IS NOT NULL FROM hazards WHERE id = :id", id=acc) is True


def test_reopen_within_the_window(world: World) -> None:
    hid = _in_state(world, "closed")
    r = world.act(hid, "reopen", note="又坏了")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["status"] == "accepted" and props["closed_at"] is None and props["due_at"] is None
    old = _in_state(world, "closed")
    days = world.settings.hazard_reopen_days
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE hazards SET closed_at = now() - make_interval(days => :d) WHERE id = :id"),
            {"d": days + 1, "id": old},
        )
    r = world.act(old, "reopen", note="又坏了")
    assert r.status_code == 409 and r.json()["code"] == "reopen_window_passed"
    assert str(days) in r.json()["message"]


def test_mark_duplicate_links_and_closes(world: World) -> None:
    original = _in_state(world, "dispatched")
    code = world.client.get(f"/api/v1/hazards/{original}").json()["properties"]["public_code"]
    dup = _in_state(world, "reported")
    r = world.act(dup, "mark_duplicate", duplicate_of=code, note="同一处")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["status"] == "closed"
    assert props["duplicate_of"] == {"id": original, "public_code": code}
    assert world.scalar("SELECT duplicate_of_id FROM hazards WHERE id = :id", id=dup) == original


def test_a_move_can_carry_photos(world: World) -> None:
    hid = _in_state(world, "in_progress")
    version = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
    r = world.client.post(
        f"/api/v1/hazards/{hid}/actions",
        data={"action": "resolve", "note": "处置后照片"},
        files=[("photos", ("after.jpg", jpeg_with_gps(), "image/jpeg"))],
        headers={**world.auth("field"), "If-Match": f'"{version}"'},
    )
    assert r.status_code == 200, r.text
    last = r.json()["properties"]["history"][-1]
    assert last["action"] == "resolve" and len(last["photos"]) == 1
    assert r.json()["event"]["photos"] == [last["photos"][0]["id"]]
    assert world.client.get(last["photos"][0]["url"]).status_code == 200
    # the actor and note of a step are shown to staff in scope, not to the public
    assert last["actor"] == "field" and last["note"] == "处置后照片"
    public = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["history"][-1]
    assert public["actor"] is None and public["note"] is None


# ---- overdue, statistics, my tasks -----------------------------------------------------------
def _make_overdue(world: World, hid: int, hours: float) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE hazards SET due_at = now() - make_interval(hours => :h) WHERE id = :id"),
            {"h": hours, "id": hid},
        )


def test_overdue_list(world: World) -> None:
    west = _in_state(world, "dispatched")
    east = _in_state(world, "in_progress", lon=113.615, lat=34.715)
    late_done = _in_state(world, "resolved")
    for hid, hours in ((west, 5), (east, 30), (late_done, 50)):
        _make_overdue(world, hid, hours)
    r = world.client.get("/api/v1/hazards/overdue", headers=world.auth("street"))
    assert r.status_code == 200
    ids = [i["id"] for i in r.json()["features"]]
    assert east in ids and west in ids and late_done not in ids  # resolved: the clock stopped
    assert ids.index(east) < ids.index(west)  # longest overdue first
    item = next(i["properties"] for i in r.json()["features"] if i["id"] == east)
    assert 29.9 < item["overdue_hours"] < 30.5
    # A list like the others: CSV too (it was a 400), with the same rows in the same order.
    csv = world.client.get(
        "/api/v1/hazards/overdue", params={"f": "csv"}, headers=world.auth("street")
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    rows = list(__import__("csv").DictReader(csv.text.lstrip("\ufeff").splitlines()))
    assert [int(r["id"]) for r in rows] == ids
    assert r.json()["numberMatched"] == len(ids)
    # a subtree, by parameter or by the caller's scope
    west_only = world.client.get(
        "/api/v1/hazards/overdue", params={"grid": 9002}, headers=world.auth("admin")
    ).json()
    assert west in [i["id"] for i in west_only["features"]]
    assert east not in [i["id"] for i in west_only["features"]]
    mine = world.client.get("/api/v1/hazards/overdue", headers=world.auth("east_community"))
    assert [i["id"] for i in mine.json()["features"]] == [
        i for i in ids if i in [x["id"] for x in mine.json()["features"]]
    ]
    assert west not in [i["id"] for i in mine.json()["features"]]
    # outside the scope: 404; anonymous: 401
    r = world.client.get(
        "/api/v1/hazards/overdue", params={"grid": 9002}, headers=world.auth("east_community")
    )
    assert r.status_code == 404
    assert world.client.get("/api/v1/hazards/overdue").status_code == 401
    # the public list and the grid summary agree
    flagged = world.client.get("/api/v1/hazards", params={"overdue": "true", "limit": 1000})
    assert {f["id"] for f in flagged.json()["features"]} >= {west, east}
    assert world.client.get(f"/api/v1/hazards/{west}").json()["properties"]["overdue"] is True


def test_stats(world: World) -> None:
    # Three hazards closed in the east grid in January 2021, 2, 4 and 10 hours after report,
    # one still open and overdue, one rejected.
    ids = [_in_state(world, "closed", lon=113.615, lat=34.715) for _ in range(3)]
    open_one = _in_state(world, "dispatched", lon=113.615, lat=34.716)
    rejected = _in_state(world, "rejected", lon=113.616, lat=34.716)
    with world.engine.begin() as conn:
        for i, (hid, hours) in enumerate(zip(ids, (2, 4, 10), strict=True)):
            conn.execute(
                text(
                    "UPDATE hazards SET reported_at = :t, "
                    "closed_at = CAST(:t AS timestamptz) + make_interval(hours => :h) "
                    "WHERE id = :id"
                ),
                {"t": f"2021-01-0{i + 2}T08:00:00Z", "h": hours, "id": hid},
            )
        for hid in (open_one, rejected):
            conn.execute(
                text("UPDATE hazards SET reported_at = '2021-01-20T08:00:00Z' WHERE id = :id"),
                {"id": hid},
            )
        conn.execute(
            text("UPDATE hazards SET due_at = '2021-01-21T08:00:00Z' WHERE id = :id"),
            {"id": open_one},
        )
    params = {"grid": 9005, "since": "2021-01-01", "until": "2021-02-01"}
    r = world.client.get("/api/v1/stats", params=params, headers=world.auth("street"))
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] == 5
    assert s["by_status"] == {"closed": 3, "dispatched": 1, "rejected": 1}
    assert s["by_category"][0]["category"] == "clutter" and s["by_category"][0]["total"] == 5
    assert s["median_hours_to_close"] == 4.0
    assert s["overdue"] == 1 and s["open"] == 1 and s["closed"] == 3
    assert s["top_grids"] == [
        {
            "grid_id": 9005,
            "code": "410103900002001",
            "name": "东一网格",
            "level": "grid",
            "open": 1,
            "overdue": 1,
        }
    ]
    # the whole street, all time: consistent with the table
    whole = world.client.get("/api/v1/stats", headers=world.auth("street")).json()
    assert whole["total"] == world.scalar("SELECT count(*) FROM hazards")
    assert sum(whole["by_status"].values()) == whole["total"]
    # a reversed period holds nothing (issue 11 finding 12: the document cannot state
    # "since before until", so the server answers it as /ogc answers a reversed interval)
    reversed_ = world.client.get(
        "/api/v1/stats",
        params={"since": "2021-02-01", "until": "2021-01-01"},
        headers=world.auth("street"),
    )
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["total"] == 0
    outside = world.client.get(
        "/api/v1/stats", params={"grid": 9005}, headers=world.auth("west_community")
    )
    assert outside.status_code == 404
    assert world.client.get("/api/v1/stats").status_code == 401


def test_my_tasks_sorted_by_distance_with_amap_links(world: World) -> None:
    near = _in_state(world, "dispatched", lon=113.6011, lat=34.7011)
    far = _in_state(world, "in_progress", lon=113.6089, lat=34.7189)
    r = world.client.get(
        "/api/v1/me/tasks", params={"near": "113.601,34.701"}, headers=world.auth("field")
    )
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    ids = [f["id"] for f in feats]
    assert ids.index(near) < ids.index(far)
    dists = [f["properties"]["distance_m"] for f in feats]
    assert dists == sorted(dists)
    first = next(f for f in feats if f["id"] == near)
    assert first["properties"]["distance_m"] < 20
    link = urlparse(first["properties"]["navigation_url"])
    assert (link.scheme, link.netloc, link.path) == ("https", "uri.amap.com", "/marker")
    q = parse_qs(link.query)
    assert q["coordinate"] == ["gaode"]
    lon, lat = (float(v) for v in q["position"][0].split(","))
    glon, glat = (float(v) for v in wgs84_to_gcj02(113.6011, 34.7011))
    assert abs(lon - glon) < 1e-6 and abs(lat - glat) < 1e-6
    assert abs(lon - 113.6011) > 1e-3  # GCJ-02 is really shifted here
    assert q["name"][0].startswith("YH")
    # near given in GCJ-02 ranks the same
    gnear = ",".join(f"{v:.7f}" for v in (float(x) for x in wgs84_to_gcj02(113.601, 34.701)))
    r2 = world.client.get(
        "/api/v1/me/tasks", params={"near": gnear, "crs": "gcj02"}, headers=world.auth("field")
    )
    assert [f["id"] for f in r2.json()["features"]] == ids
    # nobody else's tasks, no person: 403, anonymous: 401
    other = world.client.get("/api/v1/me/tasks", headers=world.auth("east_leader")).json()
    assert near not in [f["id"] for f in other["features"]]
    assert world.client.get("/api/v1/me/tasks", headers=world.auth("admin")).status_code == 403
    assert world.client.get("/api/v1/me/tasks").status_code == 401
    bad = world.client.get("/api/v1/me/tasks", params={"near": "east"}, headers=world.auth("field"))
    assert bad.status_code == 422


def test_workflow_table_is_published(world: World) -> None:
    r = world.client.get("/api/v1/hazards/workflow")
    assert r.status_code == 200
    moves = {m["action"]: m for m in r.json()["moves"]}
    assert moves["fail_verification"]["to"] == "dispatched"
    assert set(moves["escalate"]["from"]) == {"accepted", "dispatched", "in_progress"}


def test_answers_are_sent_as_the_document_says(world: World) -> None:
    """A report, its retry and a move answer with the media type their operation documents
    (a GeoJSON Feature, application/geo+json): the document said application/json, which a
    client generated from it checks (schemathesis, --checks all, issue 11 finding 12)."""
    doc = world.client.get("/openapi.json").json()

    def documented(path: str, status: int) -> set[str]:
        return set(doc["paths"][path]["post"]["responses"][str(status)]["content"])

    def sent(r) -> str:
        return r.headers["content-type"].split(";")[0]

    body = {"category": "clutter", "lon": 113.603, "lat": 34.703, "description": "楼道堆物"}
    headers = {**world.auth("field"), "Idempotency-Key": "media-type-check-1"}
    first = world.client.post("/api/v1/hazards", json=body, headers=headers)
    again = world.client.post("/api/v1/hazards", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert sent(first) in documented("/api/v1/hazards", 201)
    assert sent(again) in documented("/api/v1/hazards", 200)
    moved = world.act(first.json()["id"], "accept")
    assert moved.status_code == 200, moved.text
    assert sent(moved) in documented("/api/v1/hazards/{hazard_id}/actions", 200)
