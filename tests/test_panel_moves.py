"""The hazard panel's other moves, clicked as their users click them (issue 12): 不予立案 needs
a reason, 派遣 to a department, 延期申请 by the handler on a phone and its approval on the
desk, 核查不通过 (返工) with a reason, 退回 and its approval, and a comment with photos (at
most 5 go up). The happy path of the loop is in test_workbench.py."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import Image

from tests.support.webkit import Site, _clean, _close, _open

pytestmark = pytest.mark.usefixtures("browser")


def _photo(i: int) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (20 * i, 90, 40)).save(buf, "JPEG")
    return {"name": f"照片{i}.jpg", "mimeType": "image/jpeg", "buffer": buf.getvalue()}


def _act(client: httpx.Client, hid: int, **fields: object) -> dict:
    """One move through the API, on the version just read."""
    etag = client.get(f"/api/v1/hazards/{hid}").headers["ETag"]
    r = client.post(f"/api/v1/hazards/{hid}/actions", json=fields, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    return r.json()["properties"]


@pytest.fixture(scope="module")
def world(site: Site) -> dict:
    """Three reported hazards of one community, its staff user and a handler with a login."""
    community = site.one(
        """
        SELECT g.id, g.code FROM grids g JOIN hazards h ON h.grid_path[2] = g.id
         WHERE g.level = 'community' AND h.status = 'reported'
         GROUP BY g.id HAVING count(*) >= 3 ORDER BY g.id DESC LIMIT 1
        """
    )
    hazards = [
        r["id"]
        for r in site.rows(
            "SELECT id FROM hazards WHERE status = 'reported' AND grid_path[2] = :c"
            " ORDER BY id DESC LIMIT 3",
            c=community["id"],
        )
    ]
    person = site.one(
        """
        SELECT a.person_id, p.name, g.code FROM grid_assignments a
          JOIN grids g ON g.id = a.grid_id JOIN people p ON p.id = a.person_id
         WHERE g.path @> ARRAY[CAST(:c AS bigint)] AND g.level = 'grid' AND a.valid_to IS NULL
           AND p.active
         ORDER BY a.is_primary DESC, a.person_id LIMIT 1
        """,
        c=community["id"],
    )
    tag = uuid.uuid4().hex[:6]
    staff = site.create_user(f"zhou.{tag}", "community_staff", community["code"], "周敏")
    field = site.create_user(
        f"wu.{tag}", "field_staff", person["code"], person["name"], person["person_id"]
    )
    return {
        "hazards": hazards,
        "staff": staff,
        "field": field,
        "person": person,
        "community": community["id"],
    }


def _open_move(page, action: str) -> None:
    page.click(f'[data-move-open="{action}"]')
    page.wait_for_selector(f'form[data-move="{action}"]')


def _send(page, action: str) -> None:
    page.click(f'form[data-move="{action}"] [data-gm=move-submit]')


def _after(page, hid: int, action: str) -> None:
    """Wait until the panel shows the hazard again with action in its history."""
    page.wait_for_selector(
        f'header[data-hazard-id="{hid}"] ~ section [data-gm=history] li[data-action="{action}"]',
        timeout=15000,
    )


def test_reject_needs_a_reason_and_dispatch_to_a_department(browser, site: Site, world) -> None:
    """不予立案 without a reason is stopped on the screen (nothing is sent); with one the case
    is rejected and the reason is in its history. 派遣 to a department shows the department
    as the handler."""
    rejected, to_department = world["hazards"][:2]
    tab = _open(browser, site, f"/map#hazard={rejected}", user=world["staff"])
    page = tab.page
    page.wait_for_selector('[data-move-open="reject"]')
    _open_move(page, "reject")
    _send(page, "reject")
    error = page.locator('form[data-move="reject"] [data-gm=move-error]')
    error.wait_for()
    assert error.inner_text() == "请填写不予立案的理由"
    assert site.one("SELECT status FROM hazards WHERE id = :i", i=rejected)["status"] == "reported"
    page.fill('form[data-move="reject"] [data-gm=note]', "经核实不属于安全隐患")
    _send(page, "reject")
    page.wait_for_selector(f'header[data-hazard-id="{rejected}"][data-status="rejected"]')
    assert "经核实不属于安全隐患" in page.inner_text("[data-gm=history] li[data-action=reject]")
    assert page.locator("[data-move-open]").evaluate_all(
        "els => els.map(e => e.dataset.moveOpen)"
    ) in ([], ["comment"])

    page.evaluate(f"GM.showHazard({to_department})")
    page.wait_for_selector(f'header[data-hazard-id="{to_department}"] ~ section [data-move-open]')
    _open_move(page, "accept")
    _send(page, "accept")
    page.wait_for_selector(f'header[data-hazard-id="{to_department}"][data-status="accepted"]')
    # The picker offers the people of the dispatcher's scope only, with their open workload.
    offered = site.client(world["staff"]).get(f"/api/v1/hazards/{to_department}/candidates")
    people = offered.json()["people"]
    assert people and all(
        site.one(
            "SELECT path @> ARRAY[CAST(:c AS bigint)] AS inside FROM grids WHERE id = :g",
            c=world["community"],
            g=p["grid_id"],
        )["inside"]
        for p in people
    )
    for p in people[:3]:
        assert (
            p["open_tasks"]
            == site.one(
                "SELECT count(*) AS n FROM hazards WHERE assignee_person_id = :p"
                " AND status IN ('accepted', 'dispatched', 'in_progress')",
                p=p["person_id"],
            )["n"]
        )
    _open_move(page, "dispatch")
    page.wait_for_selector("[data-gm=picker] li[data-person]")
    assert page.locator("[data-gm=picker] li[data-person]").count() == len(people)
    _send(page, "dispatch")
    error = page.locator('form[data-move="dispatch"] [data-gm=move-error]')
    error.wait_for()
    assert error.inner_text() == "请选择处置人或职能部门"
    options = page.locator("[data-gm=department] option:not([value=''])")
    options.first.wait_for(state="attached")
    code, name = options.first.get_attribute("value"), options.first.inner_text()
    page.select_option("[data-gm=department]", code)
    _send(page, "dispatch")
    page.wait_for_selector(f'header[data-hazard-id="{to_department}"][data-status="dispatched"]')
    assert page.inner_text("[data-gm=handler-department]") == name
    tab.shot("workbench/panel-department")
    api = site.client(world["staff"]).get(f"/api/v1/hazards/{to_department}").json()
    assert api["properties"]["assignee_department"]["code"] == code
    _clean(tab, site)
    _close(tab)


def test_extension_rework_send_back_and_photos(browser, site: Site, world) -> None:
    """The handler asks for 延期 on a phone and the community approves it on the desk (the
    deadline moves); 核查不通过 sends the case back for 返工 with its reason; 退回 asked on the
    phone and approved on the desk brings it back to 待派遣; a comment with 6 photos uploads 5."""
    hid = world["hazards"][2]
    staff = site.client(world["staff"])
    field = site.client(world["field"])
    _act(staff, hid, action="accept")
    _act(staff, hid, action="dispatch", assignee_person_id=world["person"]["person_id"])

    phone = _open(browser, site, f"/map#hazard={hid}", user=world["field"], phone=True)
    ppage = phone.page
    ppage.wait_for_selector('[data-move-open="request_extension"]')
    _open_move(ppage, "request_extension")
    ppage.fill('form[data-move="request_extension"] [data-gm=days]', "2")
    ppage.fill('form[data-move="request_extension"] [data-gm=note]', "等待配件到货")
    _send(ppage, "request_extension")
    _after(ppage, hid, "request_extension")
    # One request at a time: the phone no longer offers another, and says what waits.
    assert ppage.locator('[data-move-open="request_extension"]').count() == 0
    assert "申请延长 2 工作日" in ppage.inner_text("[data-gm=pending][data-kind=extension]")
    phone.shot("workbench/phone-extension")

    # Anonymous readers learn that a 延期 waits, never who asked or why.
    public = httpx.get(f"{site.base}/api/v1/hazards/{hid}").json()["properties"]
    assert public["pending_request"]["extension"] == "2 工作日"
    assert public["pending_request"]["reason"] is None
    assert public["pending_request"]["requester"] is None
    assert all(h["note"] is None and h["actor"] is None for h in public["history"])
    due = site.one("SELECT due_at FROM hazards WHERE id = :i", i=hid)["due_at"]
    desk = _open(browser, site, f"/map#hazard={hid}", user=world["staff"])
    page = desk.page
    page.wait_for_selector('[data-move-open="approve_extension"]')
    assert page.locator('[data-move-open="refuse_extension"]').count() == 1
    # The approver sees what is asked, by whom and why, before deciding.
    pending = page.inner_text("[data-gm=pending]")
    assert "延期申请" in pending and "2 工作日" in pending
    assert world["person"]["name"] in pending and "等待配件到货" in pending
    assert "申请延长 2 工作日" in page.inner_text(
        "[data-gm=history] li[data-action=request_extension]"
    )
    desk.shot("workbench/panel-approve-extension")
    _open_move(page, "approve_extension")
    _send(page, "approve_extension")
    _after(page, hid, "approve_extension")
    assert page.locator("[data-gm=pending]").count() == 0
    new_due = site.one(
        "SELECT due_at, to_char(due_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS t"
        " FROM hazards WHERE id = :i",
        i=hid,
    )
    assert new_due["due_at"] > due
    shown = page.inner_text("[data-gm=history] li[data-action=approve_extension] [data-gm=new-due]")
    assert shown == f"新期限 {new_due['t']}"

    # 处置 and 反馈 through the API; 核查不通过 on the desk needs its reason.
    _act(field, hid, action="start")
    _act(field, hid, action="resolve", note="已处理")
    page.evaluate(f"GM.showHazard({hid})")
    page.wait_for_selector(f'header[data-hazard-id="{hid}"][data-status="resolved"]')
    _open_move(page, "fail_verification")
    _send(page, "fail_verification")
    page.locator('form[data-move="fail_verification"] [data-gm=move-error]').wait_for()
    page.fill('form[data-move="fail_verification"] [data-gm=note]', "井盖仍松动，请重新固定")
    _send(page, "fail_verification")
    page.wait_for_selector(f'header[data-hazard-id="{hid}"][data-status="dispatched"]')
    assert "井盖仍松动" in page.inner_text("[data-gm=history] li[data-action=fail_verification]")

    # 退回 on the phone, approved on the desk: the case waits for a new 派遣.
    ppage.evaluate(f"GM.showHazard({hid})")
    ppage.wait_for_selector(f'header[data-hazard-id="{hid}"][data-status="dispatched"]')
    _open_move(ppage, "send_back")
    ppage.fill('form[data-move="send_back"] [data-gm=note]', "不属于本网格职责")
    _send(ppage, "send_back")
    _after(ppage, hid, "send_back")
    page.evaluate(f"GM.showHazard({hid})")
    page.wait_for_selector('[data-move-open="approve_send_back"]')
    _open_move(page, "approve_send_back")
    _send(page, "approve_send_back")
    page.wait_for_selector(f'header[data-hazard-id="{hid}"][data-status="accepted"]')

    # A comment with six photos: the form says only five go, and five arrive.
    _open_move(page, "comment")
    page.set_input_files(
        'form[data-move="comment"] [data-gm=photos]', [_photo(i) for i in range(6)]
    )
    assert "只取前 5 张" in page.inner_text('form[data-move="comment"] [data-gm=photos-text]')
    assert page.locator('form[data-move="comment"] [data-gm=photo-previews] img').count() == 5
    page.fill('form[data-move="comment"] [data-gm=note]', "现场照片")
    _send(page, "comment")
    _after(page, hid, "comment")
    assert page.locator("[data-gm=history] li[data-action=comment] img").count() == 5
    desk.shot("workbench/panel-exceptions")

    steps = staff.get(f"/api/v1/hazards/{hid}").json()["properties"]["history"]
    assert [h["action"] for h in steps][-8:] == [
        "request_extension", "approve_extension", "start", "resolve", "fail_verification",
        "send_back", "approve_send_back", "comment",
    ]  # fmt: skip
    for tab in (phone, desk):
        _clean(tab, site)
        _close(tab)
