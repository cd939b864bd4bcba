"""Every indicator against a small hand-made October 2026: the rows are written directly,
and the expected numbers below were worked out by hand from them (not by the code).

West community (grid 9004) — five cases reported by 网格员 8006:
  W1 10-09 accepted, dispatched (person 8006 + 城管局), resolved 12:00 before due 14:00,
     verified 15:00 by 8002, closed 16:00 before 结案 due 10-10 12:00; callback 满意.
  W2 10-12 accepted, dispatched (person 8004 + 城管局) due 14:00; resolved 16:00, failed
     核查 17:00 (rework 1), resolved again 10-13 10:00 (late), verified 10-15 10:00 (16
     working hours after the report back: late), closed 10-15 11:00; callback 不满意.
  W3 10-14 accepted, dispatched by 8002 09:30, 退回 approved 11:00 (an exception), dispatched
     again 11:30 to 8006, due 14:00, never resolved: overdue.
  W4 10-15 rejected.  W5 10-16 accepted, then voided (作废).
East community (grid 9005) — three cases reported by 网格长 8005:
  E1 10-20 accepted, dispatched (调解委员会) due 11-05: not yet due at the period's end.
  E2 10-21 accepted, dispatched (调解委员会) due 17:00, resolved 16:00, verified 10-22 09:00
     by 8003, closed 09:30 before 结案 due 16:00; callback 基本满意.
  E3 10-27 09:00 accepted, dispatched to 8005 due 13:00, resolved 10:30, verified 10:45,
     closed 11:00 (2 working hours after the report): the only closing of the last 7 days.
Outside the period: X1 reported 09-30.
吹哨: 城管局 called on W3 10-14 10:00, due to report in 12:00, reported in 15:00 (late);
调解委员会 called on E1 10-20 10:00, due 12:00, reported in 11:00 (on time).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world

WEST, EAST = 9004, 9005
PERIOD = {"from": "2026-10-01", "to": "2026-11-01"}


def _t(s: str) -> str:
    return f"2026-{s}+08:00"


CASES = [
    # code, grid, status, reported, accepted, due, resolved, closed, close_due, person, dept,
    # rework
    ("W1", WEST, "closed", "10-09 09:00", True, "10-09 14:00", "10-09 12:00", "10-09 16:00",
     "10-10 12:00", 8006, "erqi_urban_management", 0),
    ("W2", WEST, "closed", "10-12 09:00", True, "10-12 14:00", "10-13 10:00", "10-15 11:00",
     "10-14 10:00", 8004, "erqi_urban_management", 1),
    ("W3", WEST, "dispatched", "10-14 09:00", True, "10-14 14:00", None, None, None, 8006,
     None, 0),
    ("W4", WEST, "rejected", "10-15 09:00", False, None, None, None, None, None, None, 0),
    ("W5", WEST, "voided", "10-16 09:00", True, None, None, None, None, None, None, 0),
    ("E1", EAST, "in_progress", "10-20 09:00", True, "11-05 12:00", None, None, None, None,
     "people_mediation", 0),
    ("E2", EAST, "closed", "10-21 09:00", True, "10-21 17:00", "10-21 16:00", "10-22 09:30",
     "10-22 16:00", None, "people_mediation", 0),
    ("E3", EAST, "closed", "10-27 09:00", True, "10-27 13:00", "10-27 10:30", "10-27 11:00",
     "10-27 18:00", 8005, None, 0),
    ("X1", EAST, "closed", "09-30 09:00", True, "09-30 14:00", "09-30 12:00", "09-30 13:00",
     "10-01 12:00", 8005, None, 0),
]  # fmt: skip

# (case, action, at, actor person)
EVENTS = [
    ("W1", "report", "10-09 09:00", 8006), ("W1", "dispatch", "10-09 09:30", 8002),
    ("W1", "resolve", "10-09 12:00", 8006), ("W1", "verify", "10-09 15:00", 8002),
    ("W2", "report", "10-12 09:00", 8006), ("W2", "dispatch", "10-12 09:30", 8002),
    ("W2", "resolve", "10-12 16:00", 8004), ("W2", "fail_verification", "10-12 17:00", 8002),
    ("W2", "resolve", "10-13 10:00", 8004), ("W2", "verify", "10-15 10:00", 8002),
    ("W3", "report", "10-14 09:00", 8006), ("W3", "dispatch", "10-14 09:30", 8002),
    ("W3", "send_back", "10-14 10:30", 8006), ("W3", "approve_send_back", "10-14 11:00", 8002),
    ("W3", "dispatch", "10-14 11:30", 8002),
    ("W4", "report", "10-15 09:00", 8006), ("W5", "report", "10-16 09:00", 8006),
    ("E1", "report", "10-20 09:00", 8005), ("E1", "dispatch", "10-20 09:30", 8003),
    ("E2", "report", "10-21 09:00", 8005), ("E2", "dispatch", "10-21 09:30", 8003),
    ("E2", "resolve", "10-21 16:00", 8005), ("E2", "verify", "10-22 09:00", 8003),
    ("E3", "report", "10-27 09:00", 8005), ("E3", "dispatch", "10-27 09:10", 8003),
    ("E3", "resolve", "10-27 10:30", 8005), ("E3", "verify", "10-27 10:45", 8003),
]  # fmt: skip

CALLBACKS = [
    ("W1", "satisfied", 8006),
    ("W2", "dissatisfied", 8004),
    ("E2", "basically_satisfied", None),
]


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("assess"), "hassess") as w:
        _build(w)
        yield w


def _build(w: World) -> None:
    ids: dict[str, int] = {}
    with w.engine.begin() as conn:
        for code, grid, status, rep, acc, due, res, clo, cdue, person, dept, rework in CASES:
            ids[code] = conn.execute(
                text(
                    """
                    INSERT INTO hazards (public_code, category_code, description, status, source,
                        geom, grid_id, grid_path, grid_chain, reported_at, accepted_at,
                        dispatched_at, due_at, resolved_at, verified_at, closed_at,
                        close_due_at, assignee_person_id, assignee_department_id,
                        rework_count, updated_at)
                    SELECT :code, 'clutter', :code, :status, 'patrol',
                           ST_PointOnSurface(g.geom), g.id, g.path, gis_grid_chain(g.id),
                           CAST(:rep AS timestamptz),
                           CASE WHEN :acc THEN CAST(:rep AS timestamptz) END,
                           CAST(:due AS timestamptz) - interval '4 hours',
                           CAST(:due AS timestamptz), CAST(:res AS timestamptz),
                           CAST(:clo AS timestamptz), CAST(:clo AS timestamptz),
                           CAST(:cdue AS timestamptz), :person,
                           (SELECT id FROM departments WHERE code = :dept), :rework, now()
                      FROM grids g WHERE g.id = :grid
                    RETURNING id
                    """
                ),
                {
                    "code": code,
                    "status": status,
                    "rep": _t(rep),
                    "acc": acc,
                    "due": _t(due) if due else None,
                    "res": _t(res) if res else None,
                    "clo": _t(clo) if clo else None,
                    "cdue": _t(cdue) if cdue else None,
                    "person": person,
                    "dept": dept,
                    "rework": rework,
                    "grid": grid,
                },
            ).scalar_one()
        for code, action, at, actor in EVENTS:
            conn.execute(
                text(
                    "INSERT INTO hazard_events (hazard_id, action, actor_person_id, created_at)"
                    " VALUES (:h, :a, :p, CAST(:at AS timestamptz))"
                ),
                {"h": ids[code], "a": action, "p": actor, "at": _t(at)},
            )
        conn.execute(
            text(
                "INSERT INTO case_exceptions (hazard_id, kind, status, reason, from_status,"
                " requested_by, requester_role, requested_at, decided_at, grid_path)"
                " SELECT id, 'send_back', 'approved', '不属于本网格', 'dispatched', 'user:1',"
                " 'field_staff', reported_at, reported_at, grid_path FROM hazards WHERE id = :h"
            ),
            {"h": ids["W3"]},
        )
        for code, rating, handler in CALLBACKS:
            conn.execute(
                text(
                    "INSERT INTO case_callbacks (hazard_id, rating, via, closed_at,"
                    " handler_person_id, grid_path, created_at)"
                    " SELECT id, :r, 'staff', closed_at, :p, grid_path,"
                    " closed_at + interval '1 day' FROM hazards WHERE id = :h"
                ),
                {"h": ids[code], "r": rating, "p": handler},
            )
        for code, dept, called, due, reported in (
            ("W3", "erqi_urban_management", "10-14 10:00", "10-14 12:00", "10-14 15:00"),
            ("E1", "people_mediation", "10-20 10:00", "10-20 12:00", "10-20 11:00"),
        ):
            conn.execute(
                text(
                    "INSERT INTO whistle_calls (hazard_id, department_id, party_name, status,"
                    " report_limit, act_limit, report_due_at, act_due_at, called_at,"
                    " reported_in_at, grid_path)"
                    " SELECT h.id, d.id, d.name_zh, 'reported_in', '{}', '{}',"
                    " CAST(:due AS timestamptz), CAST(:due AS timestamptz) + interval '3 days',"
                    " CAST(:called AS timestamptz), CAST(:rep AS timestamptz), h.grid_path"
                    " FROM hazards h, departments d WHERE h.id = :h AND d.code = :dept"
                ),
                {"h": ids[code], "dept": dept, "called": _t(called), "due": _t(due),
                 "rep": _t(reported)},
            )  # fmt: skip


def _get(world: World, path: str, who: str = "street", **params: object):
    period = {} if "month" in params else PERIOD
    r = world.client.get(
        f"/api/v1/assessment/{path}", params={**period, **params}, headers=world.auth(who)
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_community_indicators(world: World) -> None:
    body = _get(world, "areas", level="grid")
    rows = {a["area_id"]: a for a in body["areas"]}
    west, east = rows[WEST], rows[EAST]
    counts = ("reported", "accepted", "voided", "closed", "due_handle", "on_time_handle",
              "overdue", "on_time_close", "handled", "reworked", "excepted", "called_back",
              "satisfied", "dissatisfied")  # fmt: skip
    assert [west[k] for k in counts] == [5, 4, 1, 2, 3, 1, 2, 1, 2, 1, 1, 2, 1, 1]
    assert [east[k] for k in counts] == [3, 3, 0, 2, 2, 2, 0, 2, 2, 0, 0, 1, 1, 0]
    # 应结案: W1, W2 closed and W3 past its 处置 deadline (W5 voided, W4 never filed) = 3;
    # E2, E3 closed, E1 due 11-05 is still inside its limit at the period's end = 2
    assert (west["due_close"], east["due_close"]) == (3, 2)
    # 立案率 4/5; 按期处置率 1/3; 按期结案率 1/3 and 结案率 2/3; 返工率 1/2; 满意率 1/2;
    # 异常件占比 1/4
    assert west["accept_rate"] == 80.0
    assert west["on_time_handle_rate"] == 33.33
    assert west["on_time_close_rate"] == 33.33
    assert west["close_rate"] == 66.67
    assert west["rework_rate"] == 50.0
    assert west["satisfaction_rate"] == 50.0
    assert west["exception_rate"] == 25.0
    # 0.30·33.33 + 0.25·33.33 + 0.20·66.67 + 0.15·50 + 0.10·(100 − 50) = 44.1655
    assert west["composite"] == 44.17 and west["grade"] == "差"
    assert west["median_work_hours_to_close_7d"] is None  # nothing closed 10-25..10-31
    assert east["accept_rate"] == 100.0 and east["on_time_handle_rate"] == 100.0
    assert east["on_time_close_rate"] == 100.0 and east["close_rate"] == 100.0  # 2 of 2
    assert east["rework_rate"] == 0.0 and east["satisfaction_rate"] == 100.0
    # 0.30·100 + 0.25·100 + 0.20·100 + 0.15·100 + 0.10·100 = 100
    assert east["composite"] == 100.0 and east["grade"] == "优"
    assert east["median_work_hours_to_close_7d"] == 2.0  # E3: 09:00 to 11:00


def test_street_totals(world: World) -> None:
    (street,) = _get(world, "areas", level="street")["areas"]
    assert (street["reported"], street["accepted"], street["closed"], street["overdue"]) == (
        8,
        7,
        4,
        2,
    )
    assert street["on_time_handle_rate"] == 60.0  # 3 of 5
    assert street["close_rate"] == 80.0  # 4 of the 5 due to close (W1, W2, W3, E2, E3)
    assert street["on_time_close_rate"] == 60.0  # W1, E2, E3
    assert street["satisfaction_rate"] == 66.67  # 2 of 3


def test_department_indicators(world: World) -> None:
    rows = {d["code"]: d for d in _get(world, "departments")["departments"]}
    city = rows["erqi_urban_management"]
    assert (city["dispatched"], city["due_handle"], city["on_time_handle"], city["overdue"]) == (
        2,
        2,
        1,
        1,
    )
    assert city["handle_rate"] == 100.0 and city["rework_rate"] == 50.0
    assert (city["whistle_calls"], city["whistle_on_time"], city["whistle_late"]) == (1, 0, 1)
    assert city["whistle_on_time_rate"] == 0.0
    med = rows["people_mediation"]
    assert (med["dispatched"], med["due_handle"], med["on_time_handle"], med["handled"]) == (
        2,
        1,
        1,
        1,
    )
    assert med["handle_rate"] == 50.0 and med["on_time_handle_rate"] == 100.0
    assert med["whistle_on_time_rate"] == 100.0
    # 满意率 per department: 城管局 W1 满意, W2 不满意; 调解委员会 E2 基本满意 (E1 not called back)
    assert (city["called_back"], city["satisfied"], city["satisfaction_rate"]) == (2, 1, 50.0)
    assert (med["called_back"], med["satisfied"], med["satisfaction_rate"]) == (1, 1, 100.0)


def test_people_indicators(world: World) -> None:
    body = _get(world, "people")
    people = {p["person_id"]: p for p in body["people"]}
    assert (people[8006]["reports"], people[8006]["valid_reports"]) == (5, 3)
    assert people[8006]["valid_report_rate"] == 60.0
    assert people[8005]["valid_report_rate"] == 100.0
    # 8002 verified W1 (1.5 working hours after the report back), failed W2 (1 h) and
    # verified W2 16 working hours after its second report back (limit 1 工作日 = 8 h)
    assert (people[8002]["verifications"], people[8002]["verifications_on_time"]) == (3, 2)
    assert people[8002]["on_time_verification_rate"] == 66.67
    # 8002 dispatched four times; the first dispatch of W3 was sent back (退回 approved)
    assert (people[8002]["dispatches"], people[8002]["dispatches_sent_back"]) == (4, 1)
    assert people[8002]["accurate_dispatch_rate"] == 75.0
    assert people[8003]["accurate_dispatch_rate"] == 100.0
    assert people[8003]["on_time_verification_rate"] == 100.0
    roles = {r["role"]: r for r in body["roles"]}
    assert roles["community_staff"]["accurate_dispatch_rate"] == 85.71  # 6 of 7
    assert roles["community_staff"]["on_time_verification_rate"] == 80.0  # 4 of 5
    # 满意率 per handler (the case's assignee): 8006 handled W1 (满意), 8004 handled W2 (不满意);
    # E2 went to a department only; 8004 is a handler with no report, verification or dispatch
    assert (people[8006]["called_back"], people[8006]["satisfaction_rate"]) == (1, 100.0)
    assert (people[8004]["called_back"], people[8004]["satisfaction_rate"]) == (1, 0.0)
    assert people[8004]["reports"] == 0 and people[8004]["valid_report_rate"] is None
    assert people[8002]["satisfaction_rate"] is None  # a dispatcher handles nothing


def test_points_ranking(world: World) -> None:
    ranking = _get(world, "points", month="2026-10")["ranking"]
    got = [(r["person_id"], r["points"], r["rank"]) for r in ranking]
    # 8005: 3 valid reports (+6), E3 on time (+1) = 7
    # 8006: 3 valid reports (+6), W1 on time (+1), W3 overdue (−2) = 5
    # 8004: W2 overdue (−2), W2 callback 不满意 (−1) = −3
    assert got == [(8005, 7, 1), (8006, 5, 2), (8004, -3, 3)]


def test_drill_down_lists_the_cases_behind_a_figure(world: World) -> None:
    body = _get(world, "cases", indicator="overdue", area=WEST)
    assert sorted(i["public_code"] for i in body["items"]) == ["W2", "W3"]
    # area, department and person are three parameters (issue 11, finding 12: by= needed a
    # key=, a rule between parameters); the ones given all hold
    body = _get(world, "cases", indicator="overdue", person=8004)
    assert [i["public_code"] for i in body["items"]] == ["W2"]
    assert (body["area"], body["department"], body["person"]) == (None, None, 8004)
    body = _get(world, "cases", indicator="overdue", area=WEST, person=8006)
    assert [i["public_code"] for i in body["items"]] == ["W3"]
    body = _get(world, "cases", indicator="on_time_handle", department="erqi_urban_management")
    assert [i["public_code"] for i in body["items"]] == ["W1"]
    body = _get(world, "cases", indicator="excepted")
    assert [i["public_code"] for i in body["items"]] == ["W3"]


def test_scope_formats_and_bad_input(world: World) -> None:
    # the east community sees only its own areas
    rows = _get(world, "areas", who="east_community", level="grid")["areas"]
    assert [a["area_id"] for a in rows] == [EAST]
    r = world.client.get(
        "/api/v1/assessment/areas",
        params={**PERIOD, "grid": WEST},
        headers=world.auth("east_community"),
    )
    assert r.status_code == 404
    csv = world.client.get(
        "/api/v1/assessment/areas", params={**PERIOD, "level": "grid", "f": "csv"},
        headers=world.auth("street"),
    )  # fmt: skip
    assert csv.status_code == 200 and "按期处置率(%)" in csv.text and "33.33" in csv.text
    xlsx = world.client.get(
        "/api/v1/assessment/departments", params={**PERIOD, "f": "xlsx"},
        headers=world.auth("street"),
    )  # fmt: skip
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert world.client.get("/api/v1/assessment/areas", params=PERIOD).status_code == 401
    for params in ({"from": "9999-01-01", "to": "9999-02-01"}, {"month": "2026-13"}):
        r = world.client.get(
            "/api/v1/assessment/areas", params=params, headers=world.auth("street")
        )
        assert r.status_code == 422, (params, r.text)
    # Rules between parameters that the document cannot state are answered, not refused
    # (issue 11, finding 12): the period says what was assessed.
    for params, period in (
        ({"from": "2026-11-01", "to": "2026-10-01"}, ("2026-11-01", "2026-10-01")),  # empty
        ({"from": "2020-01-01", "to": "2026-10-01"}, ("2020-01-01", "2021-01-01")),  # a year
        ({"month": "2026-10", "from": "2026-10-15"}, ("2026-10-15", "2026-11-01")),
        ({"month": "2026-10", "to": "2026-10-15"}, ("2026-10-01", "2026-10-15")),
    ):
        r = world.client.get(
            "/api/v1/assessment/areas", params=params, headers=world.auth("street")
        )
        assert r.status_code == 200, (params, r.text)
        body = r.json()
        assert (body["from"][:10], body["to"][:10]) == period, (params, body["from"], body["to"])
        if period[0] > period[1]:
            assert all(a["reported"] == 0 for a in body["areas"]), body["areas"]
    nul = world.client.get(
        "/api/v1/assessment/areas",
        params={"from": "2026-10-01\x00", "to": "2026-11-01"},
        headers=world.auth("street"),
    )
    assert nul.status_code == 400 and nul.json()["code"] == "nul_character"  # at the edge
    for params in (
        {"indicator": "nope"},
        {"indicator": "overdue", "area": "9" * 30},
        {"indicator": "overdue", "person": "abc"},
        {"indicator": "overdue", "department": "no_such_department"},
    ):
        r = world.client.get(
            "/api/v1/assessment/cases", params={**PERIOD, **params}, headers=world.auth("street")
        )
        assert r.status_code == 422, (params, r.text)


@pytest.mark.parametrize(
    ("path", "first_heading"),
    [
        ("areas", "区域ID"),
        ("departments", "编码"),
        ("people", "人员ID"),
        ("points", "人员ID"),
        ("volunteers", "区域ID"),
    ],
)
def test_an_empty_table_still_has_its_header_row(
    world: World, path: str, first_heading: str
) -> None:
    """A month without a single case exports the heading row alone (CSV and XLSX), with the
    same columns as a month with data."""
    empty = {"month": "2001-01"}  # before the grids, their people and any case
    csv = world.client.get(
        f"/api/v1/assessment/{path}", params={**empty, "f": "csv"}, headers=world.auth("street")
    )
    assert csv.status_code == 200, csv.text
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 1 and lines[0].startswith(first_heading + ","), lines
    full = world.client.get(
        f"/api/v1/assessment/{path}", params={**PERIOD, "f": "csv"}, headers=world.auth("street")
    )
    assert full.content.decode("utf-8-sig").splitlines()[0] == lines[0]
    xlsx = world.client.get(
        f"/api/v1/assessment/{path}", params={**empty, "f": "xlsx"}, headers=world.auth("street")
    )
    from openpyxl import load_workbook

    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert [",".join(rows[0])] == lines


def test_the_demo_month_looks_real(demo_engine) -> None:
    """The demo district carries a working history, so the dashboard's assessment shows
    figures: callbacks, approved and pending exceptions, 吹哨 calls (some late), partner
    units, and every community assessed over the last 30 days."""
    from datetime import UTC, datetime, timedelta

    from gis_service.assessment import service
    from gis_service.catalog import load_catalog
    from gis_service.config import PROJECT_ROOT
    from gis_service.orders import service as orders

    cfg = load_catalog(PROJECT_ROOT / "layers").assessment
    with demo_engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM case_callbacks),"
                " (SELECT count(*) FROM case_exceptions WHERE status = 'approved'),"
                " (SELECT count(*) FROM case_exceptions WHERE status = 'pending'),"
                " (SELECT count(*) FROM whistle_calls),"
                " (SELECT count(*) FROM whistle_calls WHERE reported_in_at > report_due_at),"
                " (SELECT count(*) FROM partner_units),"
                " (SELECT count(*) FROM hazards WHERE status = 'voided'),"
                " (SELECT count(*) FROM volunteers),"
                " (SELECT count(*) FROM service_orders WHERE status = 'rated')"
            )
        ).one()
        assert all(n > 0 for n in counts), counts
        now = datetime.now(UTC)
        rows = service.areas(conn, cfg, now - timedelta(days=30), now, "community", None, None)
        points = service.points(conn, cfg, now - timedelta(days=30), now, None, None)
        served = orders.volunteer_stats(
            conn, now - timedelta(days=30), now, "community", None, None
        )
    assert len(rows) >= 3 and all(r["reported"] > 0 for r in rows)
    scored = [r for r in rows if r["composite"] is not None]
    assert scored and {r["grade"] for r in scored} <= {"优", "良", "中", "差"}
    sat = [r["satisfaction_rate"] for r in rows if r["satisfaction_rate"] is not None]
    assert sat and 70 <= sum(sat) / len(sat) <= 100
    assert points and points[0]["rank"] == 1
    assert served and sum(a["hours"] for a in served) > 0
