"""Field work over HTTP (issue 14): people under care (scoped, audited), visits, patrols with
GPX, duties today, the offline pack, idempotent retries of offline work with its original
times, the ledger import, and hostile input. One small hand-made district per module."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from tests.support.databases import Databases
from tests.support.field_world import (
    EAST_ELDER,
    NAMES,
    PHONES,
    WEST_CHILD,
    WEST_ELDER,
    WEST_VETERAN,
    add_care,
    gpx_text,
    patrol_body,
    track,
)
from tests.support.hazard_world import World, build_world, jpeg_with_gps


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("field"), "field") as w:
        add_care(w)
        yield w


def _key(world: World, scopes: list[str], grid: int | None = None) -> dict[str, str]:
    from gis_service.auth import admin as service

    with world.engine.connect() as conn:
        _, secret = service.create_key(
            conn, None, name=f"key {'-'.join(scopes)} {grid}", scopes=scopes, grid=grid
        )
    return {"X-API-Key": secret}


def _audited(world: World, person: int, username: str) -> int:
    return world.scalar(
        """
        SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.principal_id
         WHERE a.action = 'care.read' AND a.object_type = 'care_person'
           AND a.object_id = :id AND a.principal_kind = 'user' AND u.username = :u
        """,
        id=str(person),
        u=username,
    )


def _visit(world: World, who: str = "west_leader", key: str | None = None, **fields) -> object:
    headers = world.auth(who)
    if key:
        headers["Idempotency-Key"] = key
    return world.client.post(
        "/api/v1/visits", json={"person_id": WEST_ELDER, **fields}, headers=headers
    )


# ---- the registry ----------------------------------------------------------------------------
def test_categories_come_from_layers_and_name_nobody(world: World) -> None:
    body = world.client.get("/api/v1/care/categories").json()
    cats = {c["name"]: c["visit_every_days"] for c in body["categories"]}
    assert cats["孤寡老人"] == 7 and cats["困难家庭"] == 30 and len(cats) == 7
    assert {n["name"] for n in body["needs"]} >= {"生活照料", "医疗健康"}
    assert not any(name in json.dumps(body, ensure_ascii=False) for name in NAMES.values())


def test_staff_in_scope_read_people_and_every_read_is_audited(world: World) -> None:
    before = _audited(world, WEST_ELDER, "west_leader")
    r = world.client.get("/api/v1/care/people", headers=world.auth("west_leader"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {p["id"] for p in items} == {WEST_ELDER, WEST_VETERAN, WEST_CHILD}
    elder = next(p for p in items if p["id"] == WEST_ELDER)
    assert elder["name"] == "孙秀英" and elder["phone"] == PHONES[WEST_ELDER]
    assert elder["category_names"] == ["孤寡老人"] and elder["visit_every_days"] == 7
    assert elder["household"]["address"].startswith("西社区1号楼")
    assert elder["navigation_url"].startswith("https://uri.amap.com/marker?")
    child = next(p for p in items if p["id"] == WEST_CHILD)
    assert child["visit_every_days"] == 14  # the most frequent of its two categories
    assert _audited(world, WEST_ELDER, "west_leader") == before + 1
    one = world.client.get(f"/api/v1/care/people/{WEST_ELDER}", headers=world.auth("west_leader"))
    assert one.status_code == 200 and one.json()["name"] == "孙秀英"
    assert _audited(world, WEST_ELDER, "west_leader") == before + 2
    # Households carry the same people, and reading them is audited too.
    hh = world.client.get("/api/v1/care/households/7001", headers=world.auth("west_community"))
    assert hh.status_code == 200 and {p["name"] for p in hh.json()["people"]} == {
        "孙秀英",
        "孙建国",
    }
    assert _audited(world, WEST_VETERAN, "west_community") >= 1
    # The list: each household with its own people, every one of them audited as read.
    before = _audited(world, WEST_CHILD, "west_community")
    page = world.client.get("/api/v1/care/households", headers=world.auth("west_community"))
    assert page.status_code == 200, page.text
    assert {h["code"]: {p["name"] for p in h["people"]} for h in page.json()["items"]} == {
        "W-0001": {"孙秀英", "孙建国"},
        "W-0002": {"钱小明"},
    }
    assert _audited(world, WEST_CHILD, "west_community") == before + 1


def test_outside_scope_keys_and_anonymous_see_no_person(world: World) -> None:
    east = world.auth("east_leader")
    assert world.client.get(f"/api/v1/care/people/{WEST_ELDER}", headers=east).status_code == 404
    assert world.client.get("/api/v1/care/households/7001", headers=east).status_code == 404
    listed = world.client.get("/api/v1/care/people", headers=east).json()["items"]
    assert [p["id"] for p in listed] == [EAST_ELDER]
    r = world.client.get("/api/v1/care/people", params={"grid": 9004}, headers=east)
    assert r.status_code == 404
    assert world.client.get("/api/v1/care/people").status_code == 401
    read_key = _key(world, ["read"])
    assert world.client.get("/api/v1/care/people", headers=read_key).status_code == 403
    private_east = _key(world, ["read", "read_private"], grid=9003)
    listed = world.client.get("/api/v1/care/people", headers=private_east).json()["items"]
    assert [p["id"] for p in listed] == [EAST_ELDER]
    assert (
        world.scalar(
            "SELECT count(*) FROM audit_log WHERE principal_kind = 'api_key' "
            "AND action = 'care.read' AND object_id = :id",
            id=str(EAST_ELDER),
        )
        >= 1
    )


def test_counts_coverage_and_tint_name_nobody(world: World) -> None:
    key = _key(world, ["read"], grid=9002)
    for path in ("/api/v1/care/counts", "/api/v1/care/coverage", "/api/v1/care/overdue-map"):
        r = world.client.get(path, headers=key)
        assert r.status_code == 200, (path, r.text)
        body = r.text
        for name in NAMES.values():
            assert name not in body, path
        for phone in PHONES.values():
            assert phone not in body, path
        assert world.client.get(path).status_code == 401
    cov = world.client.get("/api/v1/care/coverage", headers=world.auth("west_community")).json()
    assert cov["grid"]["id"] == 9002 and cov["total"]["people"] == 3
    assert (
        world.client.get(
            "/api/v1/care/coverage", params={"month": "1999-12"}, headers=key
        ).status_code
        == 422
    )
    tint = world.client.get("/api/v1/care/overdue-map", headers=world.auth("street")).json()
    assert {f["id"] for f in tint["features"]} == {9006, 9007, 9008}
    assert all({"people", "overdue", "due_today"} <= set(f["properties"]) for f in tint["features"])


# ---- visits ------------------------------------------------------------------------------------
def test_visit_moves_next_due_keeps_its_time_and_is_sent_once(world: World) -> None:
    at = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    photo = jpeg_with_gps()
    fields = {
        "person_id": str(WEST_ELDER),
        "visited_at": at.isoformat(),
        "lon": "113.6041",
        "lat": "34.7041",
        "accuracy_m": "8",
        "findings": "身体平稳，已提醒服药",
        "needs": "medical,daily_care",
    }
    headers = {**world.auth("west_leader"), "Idempotency-Key": "visit-once-0001"}
    files = [("photos", ("visit.jpg", photo, "image/jpeg"))]
    first = world.client.post("/api/v1/visits", data=fields, files=files, headers=headers)
    assert first.status_code == 201, first.text
    visit = first.json()
    assert datetime.fromisoformat(visit["visited_at"]) == at
    assert visit["need_names"] == ["医疗健康", "生活照料"] and len(visit["photos"]) == 1
    again = world.client.post("/api/v1/visits", data=fields, files=files, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == visit["id"]
    assert world.scalar("SELECT count(*) FROM visits WHERE person_id = :p", p=WEST_ELDER) == 1
    other = world.client.post(
        "/api/v1/visits", data={**fields, "findings": "另一次"}, headers=headers
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    person = world.client.get(
        f"/api/v1/care/people/{WEST_ELDER}", headers=world.auth("west_leader")
    ).json()
    assert person["due_status"] in ("later", "today")
    assert person["visits"][0]["id"] == visit["id"]
    # The photo is private to staff in scope.
    url = visit["photos"][0]["url"]
    assert world.client.get(url, headers=world.auth("west_leader")).status_code == 200
    assert world.client.get(url, headers=world.auth("east_leader")).status_code == 404
    assert world.client.get(url).status_code == 401
    # An earlier visit sent late does not move the last visit backwards.
    late = _visit(world, visited_at=(at - timedelta(days=2)).isoformat(), findings="补录")
    assert late.status_code == 201
    last = world.scalar("SELECT last_visit_at FROM care_people WHERE id = :p", p=WEST_ELDER)
    assert last == at
    audit = world.scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'visit.create' AND object_id = :id",
        id=str(visit["id"]),
    )
    assert audit == 1


def test_visit_raises_a_hazard_and_a_service_need_in_one_step(world: World) -> None:
    r = _visit(
        world,
        who="field",
        findings="楼道堆放杂物，老人进出不便",
        needs=["safety"],
        hazard_category="corridor_clutter",
        hazard_description="1号楼1单元楼道堆放纸箱，影响通行",
        service_need="需要志愿者每周帮忙买菜",
    )
    assert r.status_code == 201, r.text
    visit = r.json()
    hazard = visit["hazard"]
    assert hazard and hazard["public_code"].startswith("YH")
    feature = world.client.get(f"/api/v1/hazards/{hazard['id']}").json()
    # The public sees the hazard, never whom the visit was to.
    assert feature["properties"]["description"].startswith("1号楼")
    assert "孙秀英" not in json.dumps(feature, ensure_ascii=False)
    assert visit["service_need"]["status"] == "raised"
    assert visit["service_need"]["note"] == "需要志愿者每周帮忙买菜"


def test_a_service_need_with_a_type_becomes_a_service_order(world: World) -> None:
    body = {
        "findings": "老人腿脚不便，出门困难",
        "service_need": "需要借用轮椅",
        "service_type": "wheelchair_delivery",
    }
    r = _visit(world, key="visit-order-0001", **body)
    assert r.status_code == 201, r.text
    need = r.json()["service_need"]
    assert need["status"] == "ordered" and need["order"]["public_code"].startswith("FW")
    order = need["order"]["id"]
    sql = "SELECT {} FROM service_orders WHERE id = :id"
    assert world.scalar(sql.format("service_type"), id=order) == "wheelchair_delivery"
    assert world.scalar(sql.format("resident_name"), id=order) == "孙秀英"
    assert world.scalar(sql.format("grid_id"), id=order) == world.grids["west_grid"] or (
        world.scalar(
            "SELECT parent_id FROM grids WHERE id = (SELECT grid_id FROM service_orders"
            " WHERE id = :id)",
            id=order,
        )
        == world.grids["west_grid"]
    )
    visit_id = r.json()["id"]
    events = world.scalar(
        "SELECT count(*) FROM service_order_events WHERE order_id = :id AND action = 'order'"
        " AND (data->>'visit_id')::bigint = :v",
        id=order,
        v=visit_id,
    )
    assert events == 1
    # The offline queue sends it again: the same visit and order, not a second one.
    again = _visit(world, key="visit-order-0001", **body)
    assert again.status_code == 200 and again.json()["service_need"]["order"]["id"] == order
    assert (
        world.scalar(
            "SELECT count(*) FROM service_orders WHERE resident_name = '孙秀英'"
            " AND service_type = 'wheelchair_delivery'"
        )
        == 1
    )
    # A service the list does not know, or a type without the need, is refused; nothing stays.
    before = world.scalar("SELECT count(*) FROM visits")
    for fields, code in (
        ({"service_need": "修灯", "service_type": "no_such_service"}, "invalid_parameter"),
        ({"findings": "看望", "service_type": "wheelchair_delivery"}, None),
    ):
        bad = _visit(world, **fields)
        assert bad.status_code == 422, bad.text
        if code:
            assert bad.json()["code"] == code and "services.yaml" in bad.json()["message"]
    assert world.scalar("SELECT count(*) FROM visits") == before


def test_visit_refuses_what_it_should(world: World) -> None:
    now = datetime.now(UTC)
    cases = [
        ({"person_id": EAST_ELDER}, 403, "outside_scope"),
        ({"person_id": 6999}, 404, None),
        ({"person_id": 2**63}, 422, None),
        ({"person_id": WEST_ELDER, "visited_at": (now + timedelta(days=1)).isoformat()}, 422,
         "bad_recorded_time"),
        ({"person_id": WEST_ELDER, "visited_at": "1970-01-01T00:00:00Z"}, 422,
         "bad_recorded_time"),
        ({"person_id": WEST_ELDER, "visited_at": "99999-01-01"}, 422, None),
        ({"person_id": WEST_ELDER, "needs": ["flying"]}, 422, None),
        ({"person_id": WEST_ELDER, "lon": 113.6}, 422, None),
        ({"person_id": WEST_ELDER, "hazard_category": "clutter"}, 422, None),
        ({"person_id": WEST_ELDER, "findings": "x" * 5000}, 422, None),
    ]  # fmt: skip
    for body, status, code in cases:
        r = world.client.post("/api/v1/visits", json=body, headers=world.auth("west_leader"))
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["code"] == code, r.text
    assert world.client.post("/api/v1/visits", json={"person_id": WEST_ELDER}).status_code == 401
    viewer = world.client.post(
        "/api/v1/visits", json={"person_id": WEST_ELDER}, headers=world.auth("viewer")
    )
    assert viewer.status_code == 403


# ---- offline work reaches the server once, with its original times -----------------------------
def test_offline_report_and_move_keep_their_times_and_are_idempotent(world: World) -> None:
    seen = (datetime.now(UTC) - timedelta(hours=5)).replace(microsecond=0)
    report = world.report(
        who="west_leader",
        observed_at=seen.isoformat(),
        patrol_ref="6f1c0b52-1111-4e2f-9e52-4a1d3c2b1a00",
        idempotency_key="offline-report-001",
    )
    hid = report["id"]
    assert datetime.fromisoformat(report["properties"]["observed_at"]) == seen
    for action in ("accept",):
        assert world.act(hid, action).status_code == 200
    assert world.act(hid, "dispatch", assignee_person_id=8004).status_code == 200
    assert world.act(hid, "start", who="west_leader").status_code == 200
    version = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
    done = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    body = {"action": "resolve", "note": "已清理", "occurred_at": done.isoformat()}
    headers = {
        **world.auth("west_leader"),
        "If-Match": f'"{version}"',
        "Idempotency-Key": "offline-move-0001",
    }
    first = world.client.post(f"/api/v1/hazards/{hid}/actions", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = world.client.post(f"/api/v1/hazards/{hid}/actions", json=body, headers=headers)
    assert again.status_code == 200, again.text  # not 412: the queue's retry is recognised
    assert again.json()["event"]["replayed"] is True
    assert again.json()["event"]["id"] == first.json()["event"]["id"]
    events = world.scalar(
        "SELECT count(*) FROM hazard_events WHERE hazard_id = :h AND action = 'resolve'", h=hid
    )
    assert events == 1
    occurred = world.scalar(
        "SELECT occurred_at FROM hazard_events WHERE hazard_id = :h AND action = 'resolve'", h=hid
    )
    assert occurred == done
    history = world.client.get(f"/api/v1/hazards/{hid}", headers=world.auth("west_leader"))
    step = next(e for e in history.json()["properties"]["history"] if e["action"] == "resolve")
    assert datetime.fromisoformat(step["occurred_at"]) == done
    # A move sent when someone else moved the case meanwhile: 412, shown to the user.
    stale = world.client.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "comment", "note": "迟到的备注"},
        headers={**world.auth("west_leader"), "If-Match": f'"{version}"'},
    )
    assert stale.status_code == 412
    far = world.client.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "comment", "note": "x", "occurred_at": "2001-01-01T00:00:00Z"},
        headers={**world.auth("west_leader"), "If-Match": history.headers["etag"]},
    )
    assert far.status_code == 422 and far.json()["code"] == "bad_recorded_time"


# ---- patrols -----------------------------------------------------------------------------------
def test_patrol_is_stored_with_its_times_counted_and_exported_as_gpx(world: World) -> None:
    points = track()
    body = patrol_body(points, note="例行巡查")
    headers = {**world.auth("west_leader"), "Idempotency-Key": "patrol-once-0001"}
    r = world.client.post("/api/v1/patrols", json=body, headers=headers)
    assert r.status_code == 201, r.text
    feature = r.json()
    props = feature["properties"]
    assert props["points"] == 30 and props["micro_grids"] == 2
    assert 1500 < props["length_m"] < 2000
    assert len(props["times"]) == 30
    assert datetime.fromisoformat(props["times"][0].replace("Z", "+00:00")).timestamp() == (
        pytest.approx(points[0][2], abs=0.001)
    )
    assert world.client.post("/api/v1/patrols", json=body, headers=headers).status_code == 200
    assert world.scalar("SELECT count(*) FROM patrols WHERE ref = :r", r=body["ref"]) == 1
    # A hazard reported on the patrol links to it, whichever arrived first.
    world.report(who="west_leader", patrol_ref=body["ref"], description="巡查发现乱堆放")
    again = world.client.get(f"/api/v1/patrols/{feature['id']}", headers=world.auth("west_leader"))
    assert len(again.json()["properties"]["hazards"]) == 1
    gpx = world.client.get(f"/api/v1/patrols/{feature['id']}/gpx", headers=world.auth("street"))
    assert gpx.status_code == 200 and gpx.headers["content-type"].startswith("application/gpx")
    assert gpx.text.count("<trkpt") == 30 and "<time>" in gpx.text
    # The GPX goes back in as the same track (another patrol, since another walker sends it).
    back = world.client.post(
        "/api/v1/patrols/gpx",
        content=gpx.content,
        headers={**world.auth("field"), "Content-Type": "application/gpx+xml"},
    )
    assert back.status_code == 201, back.text
    assert back.json()["properties"]["points"] == 30
    stats = world.client.get("/api/v1/patrols/stats", headers=world.auth("west_community")).json()
    west = stats["grids"][0]
    assert west["patrols"] >= 2 and west["micro_grids"] == 2
    assert west["micro_grids_passed"] == 2 and west["coverage_pct"] == 100.0
    assert west["distance_m"] > 1000 and west["duration_s"] > 0
    east = world.client.get(f"/api/v1/patrols/{feature['id']}", headers=world.auth("east_leader"))
    assert east.status_code == 404


def test_gpx_upload_from_other_software(world: World) -> None:
    points = track(start=(113.6015, 34.7012), n=12)
    text_ = gpx_text(points)
    r = world.client.post(
        "/api/v1/patrols/gpx",
        files={"file": ("walk.gpx", text_.encode(), "application/gpx+xml")},
        data={"note": "外业手持机"},
        headers=world.auth("west_leader"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["source"] == "gpx"
    again = world.client.post(
        "/api/v1/patrols/gpx",
        files={"file": ("walk.gpx", text_.encode(), "application/gpx+xml")},
        headers=world.auth("west_leader"),
    )
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]


def test_bad_tracks_and_gpx_get_a_clear_4xx(world: World) -> None:
    good = track()
    back = [*good[:5], [good[5][0], good[5][1], good[4][2] - 30], *good[6:]]
    abroad = [[2.35, 48.85, good[0][2]], *good[1:]]
    old = track(begin=datetime.now(UTC) - timedelta(days=400))
    future = track(begin=datetime.now(UTC) + timedelta(days=2))
    still = [[113.602, 34.703, good[0][2] + i] for i in range(5)]
    cases = [
        (patrol_body(back), "track_out_of_order"),
        (patrol_body(abroad), "outside_china"),
        (patrol_body(old), "bad_recorded_time"),
        (patrol_body(future), "bad_recorded_time"),
        (patrol_body(still), "track_without_movement"),
        (patrol_body([[113.6, 34.7, 1e300]] * 3), None),
        (patrol_body([[113.6, 34.7]] * 3), None),
        (patrol_body([good[0]]), None),
        ({"ref": "not-a-uuid", "points": good}, None),
        (patrol_body(track(start=(113.70, 34.80))), "outside_grids"),
    ]
    for body, code in cases:
        r = world.client.post("/api/v1/patrols", json=body, headers=world.auth("west_leader"))
        assert r.status_code == 422, (code, r.status_code, r.text)
        if code:
            assert r.json()["code"] == code, r.text
    east = world.client.post(
        "/api/v1/patrols",
        json=patrol_body(track(start=(113.6150, 34.7030), step=(0.0001, 0.0005))),
        headers=world.auth("west_leader"),
    )
    assert east.status_code == 403 and east.json()["code"] == "outside_scope"
    gpx_cases = [
        (b"", "application/gpx+xml", 422),
        (b"PK\x03\x04 zip", "application/gpx+xml", 415),
        (b"<kml xmlns='http://www.opengis.net/kml/2.2'/>", "application/xml", 422),
        (b"<gpx><trk><trkseg><trkpt lat='34.7' lon='113.6'/></trkseg></trk></gpx>",
         "application/gpx+xml", 422),
        (b"<?xml version='1.0'?><!DOCTYPE gpx [<!ENTITY a 'aaaa'>]><gpx>&a;</gpx>",
         "application/gpx+xml", 422),
        (b"<gpx><trk><trkseg>", "application/gpx+xml", 422),
        (b"<gpx>\x00</gpx>", "application/gpx+xml", 422),
        (b'{"type": "FeatureCollection"}', "application/json", 415),
    ]  # fmt: skip
    for data, ctype, status in gpx_cases:
        r = world.client.post(
            "/api/v1/patrols/gpx",
            content=data,
            headers={**world.auth("west_leader"), "Content-Type": ctype},
        )
        assert r.status_code in ((status,) if status != 422 else (400, 422)), (data, r.text)
        assert r.json()["code"] in ("not_gpx", "gpx_without_times", "nul_character"), r.text
    for path in ("/api/v1/patrols/9223372036854775808", "/api/v1/care/people/0",
                 "/api/v1/visits/99999999999999999999"):  # fmt: skip
        assert world.client.get(path, headers=world.auth("street")).status_code == 422, path


# ---- the day on the phone ----------------------------------------------------------------------
def test_duties_and_offline_pack_of_a_grid_leader(world: World) -> None:
    r = world.client.get(
        "/api/v1/me/duties", params={"near": "113.6040,34.7140"}, headers=world.auth("west_leader")
    )
    assert r.status_code == 200, r.text
    duties = r.json()
    due = duties["visits"]["today"] + duties["visits"]["overdue"]
    assert all(p["grid"]["id"] in (9006, 9007) for p in due)
    mine_today = world.scalar(
        "SELECT count(*) FROM patrols p JOIN users u ON u.id = p.user_id WHERE u.username = "
        "'west_leader' AND gis_local_day(p.started_at) = gis_local_day(now())"
    )
    assert duties["patrol"]["patrols"] == mine_today
    assert world.client.get("/api/v1/me/duties", headers=_key(world, ["read", "read_private"]))
    pack = world.client.get("/api/v1/me/offline", headers=world.auth("west_leader"))
    assert pack.status_code == 200 and pack.headers["cache-control"] == "private, no-store"
    body = pack.json()
    assert {f["id"] for f in body["micro_grids"]["features"]} == {9006, 9007}
    with world.engine.connect() as conn:  # the tint's counts, from the tables themselves
        held = dict(
            conn.execute(
                text(
                    "SELECT h.grid_id, count(*) FROM care_people p"
                    " JOIN households h ON h.id = p.household_id"
                    " WHERE p.active AND h.active GROUP BY h.grid_id"
                )
            ).all()
        )
    for f in body["micro_grids"]["features"]:
        tint = f["properties"]
        assert tint["people"] == held.get(f["id"], 0), f
        assert 0 <= tint["overdue"] + tint["due_today"] <= tint["people"], f
    assert {p["id"] for p in body["people"]} == {WEST_ELDER, WEST_VETERAN, WEST_CHILD}
    assert body["grid"]["id"] == 9004 and len(body["categories"]) == 7
    key = world.client.get("/api/v1/me/offline", headers=_key(world, ["read", "read_private"]))
    assert key.status_code == 403


# ---- importing a community's ledger ------------------------------------------------------------
def _ledger(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(
        ["户编号", "地址", "网格编码", "姓名", "性别", "出生年份", "联系电话", "人员类别", "备注"]
    )
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _import(world: World, data: bytes, who: str = "street", **form) -> object:
    return world.client.post(
        "/api/v1/imports",
        data={"layer": "care", **form},
        files={"file": ("台账.xlsx", data, "application/octet-stream")},
        headers=world.auth(who),
    )


def test_ledger_import_dry_run_errors_and_one_transaction(world: World, tmp_path: Path) -> None:
    good = [
        ["W-0101", "西社区2号院5单元101室", "410103900001001002", "周玉兰", "女", 1944,
         "100-8000-0101", "孤寡老人", ""],
        ["W-0101", "西社区2号院5单元101室", "410103900001001002", "周国强", "男", "1975年",
         "", "残疾人、低保户", "肢体二级"],
    ]  # fmt: skip
    dry = _import(world, _ledger(good), check="true")
    assert dry.status_code == 200, dry.text
    assert dry.json()["status"] == "checked" and dry.json()["counts"]["new_people"] == 2
    assert world.scalar("SELECT count(*) FROM households WHERE code = 'W-0101'") == 0
    bad = [
        *good,
        ["W-0102", "西社区", "NO-SUCH-GRID", "吴某", "男", 1950, "", "孤寡老人", ""],
        ["W-0103", "西社区", "410103900001001002", "郑某", "未知", 1850, "abc", "外星人", ""],
    ]
    refused = _import(world, _ledger(bad))
    assert refused.status_code == 422
    findings = refused.json()["details"]["findings"]
    kinds = {(f["kind"], f.get("row")) for f in findings}
    assert ("unknown_grid", 4) in kinds and ("unknown_category", 5) in kinds
    assert ("bad_value", 5) in kinds and ("bad_phone", 5) in kinds
    assert world.scalar("SELECT count(*) FROM households WHERE code = 'W-0101'") == 0
    done = _import(world, _ledger(good))
    assert done.status_code == 200 and done.json()["status"] == "imported", done.text
    cats = world.scalar("SELECT categories FROM care_people WHERE name = '周国强'")
    assert sorted(cats) == ["disabled_family", "hardship_family"]
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'import.care'") >= 1
    # The same ledger again changes nothing; another one needs --update.
    same = _import(world, _ledger(good), who="admin")
    assert same.status_code == 200 and same.json()["counts"]["unchanged"] == 2
    changed = [[*good[0][:7], "孤寡老人、退役军人", "改"], good[1]]
    refused = _import(world, _ledger(changed), who="admin")
    assert refused.status_code == 422
    assert refused.json()["details"]["findings"][0]["kind"] == "exists"
    update = _import(world, _ledger(changed), who="admin", update="true")
    assert update.status_code == 200 and update.json()["counts"]["updated_people"] == 1


def test_ledger_import_stays_inside_the_importers_area(world: World) -> None:
    from gis_service.auth import admin, service

    with world.engine.connect() as conn:
        admin.create_user(
            conn,
            None,
            username="east-street",
            display_name="east street",
            password="hazard-world-pass-1",
            role="street_staff",
            grid=9003,
        )
        with conn.begin():
            _, token, *_ = service.issue_token(
                conn,
                world.settings,
                conn.execute(text("SELECT id FROM users WHERE username = 'east-street'")).scalar(),
                "bearer",
            )
    row = ["W-0201", "西社区", "410103900001001001", "冯某", "男", 1950, "", "退役军人", ""]
    r = world.client.post(
        "/api/v1/imports",
        data={"layer": "care"},
        files={"file": ("台账.xlsx", _ledger([row]), "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422
    assert any(f["kind"] == "outside_scope" for f in r.json()["details"]["findings"])


# ---- nothing private on the public surfaces ----------------------------------------------------
def test_no_person_under_care_on_public_surfaces(world: World) -> None:
    collections = world.client.get("/ogc/collections").json()["collections"]
    assert not any("care" in c["id"] or "visit" in c["id"] for c in collections)
    tiles = world.client.get("/tiles").json()
    assert "care" not in json.dumps(tiles) and "visit" not in json.dumps(tiles)
    for layer in ("grids", "facilities", "hazards"):
        r = world.client.get(
            f"/api/v1/exports/{layer}", params={"format": "geojson"}, headers=world.auth("street")
        )
        assert r.status_code == 200
        for name in NAMES.values():
            assert name not in r.text, layer
    for who in (None, "west_leader"):
        search = world.client.get("/api/v1/search", params={"q": "孙秀英"}, headers=world.auth(who))
        assert "孙秀英" not in json.dumps(search.json()["items"], ensure_ascii=False)
    assert world.client.get("/api/v1/exports/care").status_code in (401, 404, 422)
