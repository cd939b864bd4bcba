"""The staff screens, driven as their users drive them, in Debian's Chromium (issue 12).

Accounts are made with the CLI (`gis-service users create …`). A community staff user
立案s and 派遣s a hazard from the map's panel; the assignee, on a 390 × 844 phone, 处置s
and 反馈s with a photo; a move made meanwhile through the API makes the community user's
核查 say so and reload without losing what they typed; the API then shows the hazard closed
with every event's actor. The workbench's queue counts equal the API's for three scopes, the
dashboard's figures equal the stats API's, and the ledger prints to PDF with Chinese text and
downloads as XLSX with Chinese headers. No page asks anything of another machine, and none
prints a console error.
"""

from __future__ import annotations

import contextlib
import io
import re
import unicodedata
import uuid

import httpx
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as Timeout

from tests.support.webkit import ARTIFACTS, PHONE, WIDE, Site, _clean, _close, _open

pytestmark = pytest.mark.usefixtures("browser")


def _photo() -> dict:
    """A small JPEG as a phone would upload it."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 90, 40)).save(buf, "JPEG")
    return {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": buf.getvalue()}


@pytest.fixture(scope="module")
def loop(site: Site) -> dict:
    """A reported hazard in a community, its community user and an assignee with a login."""
    row = site.one(
        """
        SELECT h.id, h.public_code, h.grid_path[2] AS community, g.code AS community_code,
               g.name AS community_name
          FROM hazards h JOIN grids g ON g.id = h.grid_path[2]
         WHERE h.status = 'reported' AND g.level = 'community'
         ORDER BY h.id LIMIT 1
        """
    )
    person = site.one(
        """
        SELECT a.person_id, p.name, g.code AS grid_code FROM grid_assignments a
          JOIN grids g ON g.id = a.grid_id JOIN people p ON p.id = a.person_id
         WHERE g.path @> ARRAY[CAST(:c AS bigint)] AND g.level = 'grid' AND a.valid_to IS NULL
           AND p.active
         ORDER BY a.is_primary DESC, a.person_id LIMIT 1
        """,
        c=row["community"],
    )
    tag = uuid.uuid4().hex[:6]
    staff = site.create_user(f"wang.fang.{tag}", "community_staff", row["community_code"], "王芳")
    field = site.create_user(
        f"li.qiang.{tag}", "field_staff", person["grid_code"], person["name"], person["person_id"]
    )
    return {**row, "staff": staff, "field": field, "person": person}


def _panel_moves(tab) -> list[str]:
    return tab.page.locator("[data-move-open]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-move-open'))"
    )


def _move(tab, action: str, note: str | None = None) -> None:
    page = tab.page
    page.click(f'[data-move-open="{action}"]')
    page.wait_for_selector(f'form[data-move="{action}"]')
    if note is not None:
        page.fill(f'form[data-move="{action}"] [data-gm=note]', note)


def _submit(tab, action: str, status: str) -> None:
    page = tab.page
    page.click(f'form[data-move="{action}"] [data-gm=move-submit]')
    page.wait_for_selector(f'header[data-hazard-id][data-status="{status}"]', timeout=15000)


def test_closed_loop_through_the_screens(browser, site: Site, loop: dict) -> None:
    """立案 and 派遣 on a desk, 处置 and 反馈 with a photo on a phone, 核查 and 结案 on the desk
    after a concurrent move through the API; every event has its actor."""
    hid = loop["id"]
    # ---- the community user logs in on the map and sees who they are
    desk = _open(browser, site, f"/map#hazard={hid}")
    page = desk.page
    page.wait_for_selector(f'header[data-hazard-id="{hid}"]')
    page.click("[data-gm=moves-login]")
    page.fill("#gm-login-dialog-form input[name=username]", loop["staff"])
    page.fill("#gm-login-dialog-form input[name=password]", "wrong password here")
    page.click("#gm-login-dialog-form button[type=submit]")
    error = page.locator("#gm-login-dialog-error")
    error.wait_for()
    # The API's English ("Wrong username or password.") never reaches the screen.
    assert "账号或密码错误" in error.inner_text()
    assert not re.search(r"[A-Za-z]{4,}", error.inner_text())
    desk.errors.clear()  # the browser logs the refused login's 401 itself: that one we asked for
    page.fill("#gm-login-dialog-form input[name=password]", "correct horse battery staple")
    page.click("#gm-login-dialog-form button[type=submit]")
    page.wait_for_selector("[data-gm=whoami]")
    whoami = page.inner_text("[data-gm=whoami]")
    assert whoami == f"王芳 · 社区工作人员 · {loop['community_name']}"
    assert page.is_visible("[data-gm=logout]")
    page.wait_for_selector('[data-move-open="accept"]')
    assert set(_panel_moves(desk)) >= {"accept", "reject", "comment"}
    assert "start" not in _panel_moves(desk)  # only the moves the API allows this user
    # ---- 立案, then 派遣 with the picker
    _move(desk, "accept", "属实，立案")
    _submit(desk, "accept", "accepted")
    _move(desk, "dispatch", "请尽快处理")
    person = loop["person"]["person_id"]
    row = page.locator(f'[data-gm=picker] li[data-person="{person}"]')
    row.wait_for()
    text = row.inner_text()
    assert loop["person"]["name"] in text and "在办" in text and "距离" in text
    row.locator("input").check()
    desk.shot("workbench/panel-dispatch")
    _submit(desk, "dispatch", "dispatched")
    assert loop["person"]["name"] in page.inner_text("[data-gm=handler]")
    _clean(desk, site)

    # ---- the assignee on a phone: my tasks → 处置 → 反馈 with a photo
    phone = _open(browser, site, "/map", phone=True)
    ppage = phone.page
    ppage.tap("#gm-tasks")
    ppage.wait_for_selector("#gm-login-form:not([hidden])")
    ppage.fill("#gm-login-form input[name=username]", loop["field"])
    ppage.fill("#gm-login-form input[name=password]", "correct horse battery staple")
    ppage.tap("#gm-login-form button[type=submit]")
    ppage.wait_for_selector(f'[data-gm=task-list] a[data-hazard="{hid}"]')
    phone.shot("workbench/phone-tasks")
    ppage.tap(f'[data-gm=task-list] a[data-hazard="{hid}"]')
    ppage.wait_for_selector(f'header[data-hazard-id="{hid}"]')
    # The task opens in the panel, not under the still-open tasks sheet.
    assert ppage.is_hidden("#gm-sheet-tasks")
    assert ppage.is_visible("#gm-panel")
    _move(phone, "start")
    _submit(phone, "start", "in_progress")
    _move(phone, "resolve", "井盖已更换，现场已清理")
    ppage.set_input_files('form[data-move="resolve"] [data-gm=photos]', [_photo()])
    ppage.wait_for_selector('form[data-move="resolve"] [data-gm=photo-previews] img')
    phone.shot("workbench/phone-resolve")
    _submit(phone, "resolve", "resolved")
    shown = ppage.locator("[data-gm=history] li[data-action=resolve] img")
    assert shown.count() == 1
    # The list shows the thumbnail (the panel read thumb_url while the API sends
    # thumbnail_url, so it loaded the full-size photo); a tap opens the full one.
    assert "variant=thumb" in shown.get_attribute("src")
    assert "variant=thumb" not in shown.locator("xpath=..").get_attribute("href")
    assert tab_width_ok(phone)
    _clean(phone, site)
    _close(phone)

    # ---- the desk reloads; meanwhile someone moves the case through the API
    page.evaluate(f"GM.showHazard({hid})")
    page.wait_for_selector('[data-move-open="verify"]')
    other = site.client(loop["staff"])
    version = other.get(f"/api/v1/hazards/{hid}").headers["ETag"]
    r = other.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "comment", "note": "电话回访：居民确认已修好"},
        headers={"If-Match": version},
    )
    assert r.status_code == 200, r.text
    _move(desk, "verify", "现场核查合格")
    page.click('form[data-move="verify"] [data-gm=move-submit]')
    notice = page.locator("[data-gm=notice]")
    notice.wait_for(timeout=15000)
    assert "他人" in notice.inner_text() and "保留" in notice.inner_text()
    # The refused move (412), and the browser's own line about it: asked for.
    assert desk.errors and all("412" in e for e in desk.errors), desk.errors
    desk.errors.clear()
    # Nothing was lost: the form is open again with the user's words, on the fresh version.
    kept = page.locator('form[data-move="verify"] [data-gm=note]')
    kept.wait_for()
    assert kept.input_value() == "现场核查合格"
    assert "电话回访" in page.inner_text("[data-gm=history]")
    desk.shot("workbench/panel-concurrent")
    _submit(desk, "verify", "closed")  # 核查通过 and 结案 (the default)
    assert page.is_visible("[data-gm=closed-at]")
    assert "剩余" not in page.inner_text("#gm-panel")
    desk.shot("workbench/panel-closed")
    _clean(desk, site)
    _close(desk)

    # ---- the API: closed, every step with its actor, nothing overwritten
    admin = site.client(site.create_user(f"admin.{uuid.uuid4().hex[:6]}", "admin", None, "管理员"))
    props = admin.get(f"/api/v1/hazards/{hid}").json()["properties"]
    assert props["status"] == "closed"
    steps = [(h["action"], h["actor"]) for h in props["history"]]
    actions = [a for a, _ in steps]
    assert actions[-7:] == ["accept", "dispatch", "start", "resolve", "comment", "verify", "close"]
    actors = dict(steps[-7:])
    assert actors["accept"] == actors["dispatch"] == actors["verify"] == actors["close"] == "王芳"
    assert actors["start"] == actors["resolve"] == loop["person"]["name"]
    assert all(a for _, a in steps[1:]), steps


def tab_width_ok(tab) -> bool:
    """Nothing scrolls sideways on the phone."""
    return tab.js("document.scrollingElement.scrollWidth") <= PHONE["width"]


# ---- the workbench ----------------------------------------------------------------------------
_COUNT_SQL = {
    "to_accept": "h.status = 'reported'",
    "to_dispatch": "h.status = 'accepted'",
    "in_progress": "h.status IN ('dispatched', 'in_progress')",
    "to_verify": "h.status IN ('resolved', 'verified')",
    "to_approve": "h.id IN (SELECT hazard_id FROM case_exceptions WHERE status = 'pending')",
    "suspended": "h.status = 'suspended'",
    "overdue": "h.due_at < now() AND h.status IN ('accepted', 'dispatched', 'in_progress')",
}


@pytest.fixture(scope="module")
def scoped_users(site: Site) -> list[dict]:
    """A street, a community and a grid leader (with the cases assigned to their person)."""
    street = site.one(
        """
        SELECT g.id, g.code FROM grids g JOIN hazards h ON h.grid_path[1] = g.id
         WHERE g.level = 'street' GROUP BY g.id ORDER BY count(*) DESC, g.id LIMIT 1
        """
    )
    community = site.one(
        """
        SELECT g.id, g.code FROM grids g JOIN hazards h ON h.grid_path[2] = g.id
         WHERE g.level = 'community' AND g.path[1] <> :s
         GROUP BY g.id ORDER BY count(*) DESC, g.id LIMIT 1
        """,
        s=street["id"],
    )
    leader = site.one(
        """
        SELECT a.person_id, g.id, g.code FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
         WHERE g.level = 'grid' AND a.is_primary AND a.valid_to IS NULL
         ORDER BY a.person_id LIMIT 1
        """
    )
    tag = uuid.uuid4().hex[:6]
    return [
        {"user": site.create_user(f"st.{tag}", "street_staff", street["code"], "张街道"),
         "grid": street["id"], "person": None},
        {"user": site.create_user(f"cm.{tag}", "community_staff", community["code"], "赵社区"),
         "grid": community["id"], "person": None},
        {"user": site.create_user(f"gl.{tag}", "grid_leader", leader["code"], "钱网格",
                                  leader["person_id"]),
         "grid": leader["id"], "person": leader["person_id"]},
    ]  # fmt: skip


def _badges(tab) -> dict[str, int]:
    return tab.page.locator("[data-count]").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.count, +e.textContent]))"
    )


def test_queue_counts_equal_the_api_for_three_scopes(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """Each user's badges equal GET /api/v1/queues, which equals the hazards counted in the
    database for their subtree; counts refresh without a reload after a move."""
    for who in scoped_users:
        tab = _open(browser, site, "/desk", user=who["user"], viewport=WIDE)
        page = tab.page
        page.wait_for_selector("body[data-desk-ready]")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-count]')].every(e => e.textContent !== '…')"
        )
        shown = _badges(tab)
        api = page.request.get(site.base + "/api/v1/queues").json()["counts"]
        assert shown == api, (who["user"], shown, api)
        for queue, cond in _COUNT_SQL.items():
            expected = site.one(
                f"SELECT count(*) AS n FROM hazards h WHERE {cond}"
                " AND h.grid_path @> ARRAY[CAST(:g AS bigint)]",
                g=who["grid"],
            )["n"]
            assert api[queue] == expected, (who["user"], queue)
        if who["person"]:
            mine = site.one(
                "SELECT count(*) AS n FROM hazards WHERE assignee_person_id = :p"
                " AND status IN ('accepted', 'dispatched', 'in_progress')",
                p=who["person"],
            )["n"]
            assert api["mine"] == mine
        tab.shot(f"workbench/desk-{who['user'].split('.')[0]}")
        _clean(tab, site)
        _close(tab)


def test_workbench_row_opens_the_map_and_the_queue_stays(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """Filters, sorting, a row opening the hazard in the map beside the table (which stays
    where it was), and counts refreshed after a move made in that map."""
    who = scoped_users[0]
    tab = _open(browser, site, "/desk", user=who["user"], viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")
    page.click('[data-queue="to_accept"]')
    page.wait_for_selector('body[data-rows-for="to_accept"]')
    before = _badges(tab)["to_accept"]
    assert before >= 2
    # Sorting by code, ascending then descending.
    page.click('th[data-sort="code"]')
    page.wait_for_function("() => document.querySelector('th[data-sort=code]').dataset.arrow")
    codes = page.locator("#desk-rows td.gm-code").all_inner_texts()
    assert codes == sorted(codes)
    # A filter narrows the table and the badge alike (severity: whatever the first row has).
    sev = site.one(
        "SELECT severity FROM hazards WHERE status = 'reported'"
        " AND grid_path @> ARRAY[CAST(:g AS bigint)] GROUP BY severity ORDER BY count(*) LIMIT 1",
        g=who["grid"],
    )["severity"]
    page.select_option("[data-gm=f-severity]", sev)
    page.wait_for_function(
        "n => +document.querySelector('[data-count=to_accept]').textContent < n", arg=before
    )
    narrowed = _badges(tab)["to_accept"]
    # The badge and the table come from two requests: wait for the table as well.
    with contextlib.suppress(Timeout):
        page.wait_for_function(
            "n => document.querySelectorAll('#desk-rows tr[data-hazard-id]').length === n",
            arg=min(narrowed, 50),
            timeout=10000,
        )
    assert page.locator("#desk-rows tr[data-hazard-id]").count() == min(narrowed, 50)
    page.select_option("[data-gm=f-severity]", "")
    page.wait_for_function(
        "n => +document.querySelector('[data-count=to_accept]').textContent === n", arg=before
    )
    # A row opens the hazard in the map beside the table; the table stays.
    first = page.locator("#desk-rows tr[data-hazard-id]").nth(1)
    hid = int(first.get_attribute("data-hazard-id"))
    first.click()
    frame = page.frame_locator("#desk-map")
    frame.locator(f'header[data-hazard-id="{hid}"]').wait_for(timeout=15000)
    inner = page.frame(url=re.compile(r"/map\?embed"))
    inner.wait_for_function("() => GM.map.getZoom() >= 17 && !GM.map._animatingZoom")
    lon, lat = inner.evaluate("() => GM.fromView(GM.map.getCenter())")
    spot = site.one("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazards WHERE id = :i", i=hid)
    assert abs(lon - spot["lon"]) < 0.01 and abs(lat - spot["lat"]) < 0.01  # flown to it
    assert page.locator(f'#desk-rows tr.desk-selected[data-hazard-id="{hid}"]').count() == 1
    assert page.locator("#desk-rows tr[data-hazard-id]").count() >= 2
    # 立案 in the map beside: the counts follow without a reload.
    frame.locator('[data-move-open="accept"]').click()
    frame.locator('form[data-move="accept"] [data-gm=move-submit]').click()
    frame.locator(f'header[data-hazard-id="{hid}"][data-status="accepted"]').wait_for()
    page.wait_for_function(
        "n => +document.querySelector('[data-count=to_accept]').textContent === n - 1",
        arg=before,
    )
    assert page.locator(f'#desk-rows tr[data-hazard-id="{hid}"]').count() == 0
    tab.shot("workbench/desk-with-map")
    _clean(tab, site)
    _close(tab)


def test_workbench_filters_narrow_every_badge(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """Community, grid, category, source and report dates narrow every queue's badge to the
    hazards the database holds under the same conditions; 清除筛选 brings back the whole scope."""
    who = scoped_users[0]
    tab = _open(browser, site, "/desk", user=who["user"], viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")

    def expect(where: str = "TRUE", **params: object) -> None:
        want = {
            queue: site.one(
                f"SELECT count(*) AS n FROM hazards h WHERE {cond} AND {where}"
                " AND h.grid_path @> ARRAY[CAST(:root AS bigint)]",
                root=who["grid"],
                **params,
            )["n"]
            for queue, cond in _COUNT_SQL.items()
        }
        # Wait for the badges to settle; if they never do, the assertion below says how.
        with contextlib.suppress(Timeout):
            page.wait_for_function(
                """w => Object.entries(w).every(([k, v]) =>
                     +document.querySelector(`[data-count=${k}]`).textContent === v)""",
                arg=want,
                timeout=10000,
            )
        shown = _badges(tab)
        assert {k: shown[k] for k in want} == want, where

    expect()
    busiest = site.one(
        "SELECT grid_path[2] AS community, grid_path[3] AS grid FROM hazards"
        " WHERE grid_path[1] = :s AND status IN ('reported', 'accepted', 'dispatched')"
        " GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1",
        s=who["grid"],
    )
    page.select_option("[data-gm=f-community]", str(busiest["community"]))
    expect("h.grid_path @> ARRAY[CAST(:g AS bigint)]", g=busiest["community"])
    page.wait_for_selector(f'[data-gm=f-grid] option[value="{busiest["grid"]}"]', state="attached")
    page.select_option("[data-gm=f-grid]", str(busiest["grid"]))
    expect("h.grid_path @> ARRAY[CAST(:g AS bigint)]", g=busiest["grid"])
    tab.shot("workbench/desk-filtered")
    page.click("#desk-filter-reset")
    expect()
    category = site.one(
        "SELECT category_code AS c FROM hazards WHERE grid_path[1] = :s"
        " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        s=who["grid"],
    )["c"]
    page.select_option("[data-gm=f-category]", category)
    expect("h.category_code = :c", c=category)
    # Two quick changes whose answers cross: the first (category cleared) is held back until
    # after the second's. The older answer used to overwrite the newer one's counts.
    tab.js(
        """() => { const f = window.fetch; window.__fetch = f;
             window.fetch = (u, o) => /\\/api\\/v1\\/queues/.test(u) && !/source=/.test(u)
               ? new Promise(r => setTimeout(r, 1500)).then(() => f(u, o)) : f(u, o); }"""
    )
    page.select_option("[data-gm=f-category]", "")
    page.select_option("[data-gm=f-source]", "resident")
    expect("h.source = 'resident'")
    page.wait_for_timeout(2500)  # the held-back answers have arrived
    expect("h.source = 'resident'")
    tab.js("() => { window.fetch = window.__fetch; }")
    page.select_option("[data-gm=f-source]", "")
    day = site.one(
        "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS d"
        " FROM hazards WHERE grid_path[1] = :s AND status = 'reported'"
        " ORDER BY reported_at LIMIT 1 OFFSET 1",
        s=who["grid"],
    )["d"]
    page.fill("[data-gm=f-since]", day)
    page.dispatch_event("[data-gm=f-since]", "change")
    page.fill("[data-gm=f-until]", day)
    page.dispatch_event("[data-gm=f-until]", "change")
    # Both ends inclusive, in Beijing time.
    expect("(h.reported_at AT TIME ZONE 'Asia/Shanghai')::date = CAST(:d AS date)", d=day)
    _clean(tab, site)
    _close(tab)


def test_requests_wait_in_the_approval_queue(browser, site: Site, loop: dict) -> None:
    """A 延期 asked by the handler puts the case in 待审批 with a tag saying what waits; the
    row opens it beside the table with the request to decide; after the decision the badge
    drops without a reload. An approved 缓办 waits in 缓办中 (its clock stopped)."""
    staff = site.client(loop["staff"])
    field = site.client(loop["field"])
    person = loop["person"]["person_id"]
    row = site.one(
        "SELECT id, status FROM hazards WHERE grid_path[2] = :c AND id <> :loop"
        " AND status IN ('reported', 'accepted', 'dispatched')"
        " AND id NOT IN (SELECT hazard_id FROM case_exceptions WHERE status = 'pending')"
        " ORDER BY id LIMIT 1",
        c=loop["community"],
        loop=loop["id"],
    )
    hid = row["id"]

    def act(client: httpx.Client, **fields: object) -> None:
        etag = client.get(f"/api/v1/hazards/{hid}").headers["ETag"]
        r = client.post(f"/api/v1/hazards/{hid}/actions", json=fields, headers={"If-Match": etag})
        assert r.status_code == 200, r.text

    if row["status"] == "reported":
        act(staff, action="accept")
    act(staff, action="dispatch", assignee_person_id=person)
    act(field, action="request_extension", note="等待配件", extension_days=3)

    tab = _open(browser, site, "/desk", user=loop["staff"], viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")
    page.wait_for_function(
        "() => document.querySelector('[data-count=to_approve]').textContent !== '…'"
    )
    api = page.request.get(site.base + "/api/v1/queues").json()["counts"]
    pending = page.request.get(site.base + "/api/v1/exceptions").json()
    assert _badges(tab)["to_approve"] == api["to_approve"] == pending["number_matched"] >= 1
    before = api["to_approve"]
    page.click('[data-queue="to_approve"]')
    page.wait_for_selector('body[data-rows-for="to_approve"]')
    tr = page.locator(f'#desk-rows tr[data-hazard-id="{hid}"]')
    assert tr.locator("[data-pending=extension]").inner_text() == "延期待审批"
    tr.click()
    frame = page.frame_locator("#desk-map")
    frame.locator("[data-gm=pending][data-kind=extension]").wait_for(timeout=15000)
    assert "3 工作日" in frame.locator("[data-gm=pending]").inner_text()
    tab.shot("workbench/desk-approval")
    frame.locator('[data-move-open="refuse_extension"]').click()
    frame.locator('form[data-move="refuse_extension"] [data-gm=note]').fill("配件可就近采购")
    frame.locator('form[data-move="refuse_extension"] [data-gm=move-submit]').click()
    frame.locator("li[data-action=refuse_extension]").wait_for()
    page.wait_for_function(
        "n => +document.querySelector('[data-count=to_approve]').textContent === n - 1",
        arg=before,
    )
    # 缓办 approved: the case leaves 处置中 for 缓办中.
    act(field, action="request_suspension", note="需等待业主回国")
    act(staff, action="approve_suspension")
    page.click('[data-queue="suspended"]')
    page.wait_for_selector(f'#desk-rows tr[data-hazard-id="{hid}"]')
    n = page.request.get(site.base + "/api/v1/queues").json()["counts"]["suspended"]
    page.wait_for_function(
        "n => +document.querySelector('[data-count=suspended]').textContent === n", arg=n
    )
    assert page.locator("#desk-rows tr[data-hazard-id]").count() == min(n, 50)
    act(staff, action="resume")
    _clean(tab, site)
    _close(tab)


def test_workbench_on_a_phone_opens_the_map_and_comes_back(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """390 × 844: the queues fit the width; a row opens the hazard on the map screen (zoomed
    to it), and coming back restores the queue, the row and the scroll."""
    who = scoped_users[0]
    tab = _open(browser, site, "/desk", user=who["user"], phone=True)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")
    page.tap('[data-queue="in_progress"]')
    page.wait_for_selector('body[data-rows-for="in_progress"]')
    rows = page.locator("#desk-rows tr[data-hazard-id]")
    assert rows.count() >= 6
    # The table's headers are hidden on a phone (rows are cards): a picker sorts instead.
    assert page.is_hidden('th[data-sort="due_at"]')
    page.select_option("[data-gm=f-sort]", "due_at:asc")
    page.wait_for_selector('body[data-rows-sort="due_at:asc"]')
    ids = [int(i) for i in rows.evaluate_all("e => e.map(r => r.dataset.hazardId)")]
    dues = site.rows("SELECT id, due_at FROM hazards WHERE id = ANY(:ids)", ids=ids)
    due = {r["id"]: r["due_at"] for r in dues}
    shown = [due[i] for i in ids if due[i] is not None]
    assert shown == sorted(shown) and len(shown) >= 6
    tab.shot("workbench/phone-desk")
    # The bar with who am I, the screens and 退出 scrolled the page sideways (608 px).
    assert tab.js("document.scrollingElement.scrollWidth") <= PHONE["width"]
    target = rows.nth(5)
    target.scroll_into_view_if_needed()
    scrolled = tab.js(
        "() => document.getElementById('desk-tablewrap').scrollTop"
        " || document.scrollingElement.scrollTop"
    )
    hid = int(target.get_attribute("data-hazard-id"))
    target.tap()
    page.wait_for_url(re.compile(rf"/map#hazard={hid}$"))
    page.wait_for_selector(f'header[data-hazard-id="{hid}"]', timeout=15000)
    page.wait_for_function("() => GM.map.getZoom() >= 17")
    page.go_back()
    page.wait_for_selector("body[data-desk-ready]")
    assert page.get_attribute('[data-queue="in_progress"]', "aria-selected") == "true"
    page.wait_for_selector(f'#desk-rows tr.desk-selected[data-hazard-id="{hid}"]')
    back = tab.js(
        "() => document.getElementById('desk-tablewrap').scrollTop"
        " || document.scrollingElement.scrollTop"
    )
    assert abs(back - scrolled) < 40, (back, scrolled)
    _clean(tab, site)
    _close(tab)
    for path, ready in (("/dashboard", "dash-loaded"), ("/ledger", "ledger-loaded")):
        other = _open(browser, site, path, user=who["user"], phone=True)
        other.page.wait_for_selector(f"body[data-{ready}]")
        other.shot(f"workbench/phone-{path.strip('/')}")
        assert other.js("document.scrollingElement.scrollWidth") <= PHONE["width"], path
        _clean(other, site)
        _close(other)


# ---- the dashboard ----------------------------------------------------------------------------
def test_dashboard_numbers_equal_the_stats_api(browser, site: Site) -> None:
    """Every chart's numbers are the stats API's, and the totals agree with /api/v1/stats."""
    admin = site.create_user(f"dash.{uuid.uuid4().hex[:6]}", "admin", None, "孙主任")
    tab = _open(browser, site, "/dashboard", user=admin, viewport=WIDE)
    page = tab.page
    page.select_option("[data-gm=d-period]", "90")
    page.wait_for_selector("body[data-dash-loaded]")
    params = tab.js("GMDash.params")
    api = page.request.get(site.base + "/api/v1/stats/dashboard", params=params).json()
    opt = tab.js(
        """() => Object.fromEntries(Object.entries(GMDash.charts).map(
             ([k, c]) => [k, c.getOption()]))"""
    )
    series = opt["chart-series"]
    assert series["xAxis"][0]["data"] == [s["period"] for s in api["series"]]
    assert series["series"][0]["data"] == [s["reported"] for s in api["series"]]
    assert series["series"][1]["data"] == [s["closed"] for s in api["series"]]
    cats = opt["chart-category"]
    assert cats["yAxis"][0]["data"] == [c["name"] for c in reversed(api["by_category"])]
    assert cats["series"][0]["data"] == [c["total"] for c in reversed(api["by_category"])]
    comm = opt["chart-ontime"]
    assert comm["series"][0]["data"] == [c["on_time_rate"] for c in api["by_community"]]
    assert comm["series"][1]["data"] == [c["median_hours_to_close"] for c in api["by_community"]]
    kpis = {k: int(page.inner_text(f'[data-kpi="{k}"]')) for k in ("total", "open", "closed")}
    assert kpis == {k: api[k] for k in kpis}
    # The older /api/v1/stats over the same period says the same.
    stats = page.request.get(
        site.base + "/api/v1/stats", params={"since": params["since"], "until": params["until"]}
    ).json()
    assert (stats["total"], stats["open"], stats["closed"]) == (
        api["total"],
        api["open"],
        api["closed"],
    )
    assert {c["category"]: c["total"] for c in stats["by_category"]} == {
        c["category"]: c["total"] for c in api["by_category"]
    }
    assert sum(s["reported"] for s in api["series"]) == api["total"]
    ages = [
        float(x) for x in page.locator("[data-age]").evaluate_all("e => e.map(x => x.dataset.age)")
    ]
    assert ages == sorted(ages, reverse=True)
    tab.shot("workbench/dashboard", full=True)
    _clean(tab, site)
    _close(tab)


def test_dashboard_of_a_street_user_by_week_and_community(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """A street user's dashboard offers only their street and its communities; by week, by
    community, by grid and the heat layer show the stats API's numbers; narrowed to one
    community the totals are that community's hazards; another street's grid is refused."""
    who = scoped_users[0]
    tab = _open(browser, site, "/dashboard", user=who["user"], viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-dash-loaded]")
    units = page.locator("[data-gm=d-grid] option").evaluate_all("e => e.map(o => +o.value)")
    communities = {
        r["id"]
        for r in site.rows(
            "SELECT id FROM grids WHERE level = 'community' AND valid_to IS NULL AND path[1] = :s",
            s=who["grid"],
        )
    }
    assert units[0] == who["grid"] and set(units[1:]) == communities
    page.select_option("[data-gm=d-period]", "365")
    page.wait_for_selector("body[data-dash-loaded]")
    page.select_option("[data-gm=d-interval]", "week")
    page.wait_for_selector("body[data-dash-loaded]")
    assert page.inner_text("[data-gm=d-interval-name]") == "按周"

    def check() -> dict:
        params = tab.js("GMDash.params")
        api = page.request.get(site.base + "/api/v1/stats/dashboard", params=params).json()
        opt = tab.js(
            """() => Object.fromEntries(Object.entries(GMDash.charts).map(
                 ([k, c]) => [k, c.getOption()]))"""
        )
        assert opt["chart-series"]["xAxis"][0]["data"] == [s["period"] for s in api["series"]]
        assert opt["chart-series"]["series"][0]["data"] == [s["reported"] for s in api["series"]]
        comm = opt["chart-community"]
        assert comm["xAxis"][0]["data"] == [c["name"] for c in api["by_community"]]
        for i, key in enumerate(("total", "open", "closed")):
            assert comm["series"][i]["data"] == [c[key] for c in api["by_community"]], key
        grids = opt["chart-grid"]
        assert grids["series"][0]["data"] == [g["total"] for g in reversed(api["by_grid"])]
        assert grids["series"][1]["data"] == [g["open"] for g in reversed(api["by_grid"])]
        heat = tab.js("GMDash.heatCells()")
        assert heat == [[c[0], c[1], c[2]] for c in api["heat"]]
        kpis = {k: int(page.inner_text(f'[data-kpi="{k}"]')) for k in ("total", "open")}
        assert kpis == {k: api[k] for k in kpis}
        return {"params": params, "api": api}

    street = check()
    assert len(street["api"]["series"]) in (53, 54)  # a year, by week
    assert sum(c["total"] for c in street["api"]["by_community"]) == street["api"]["total"]
    tab.shot("workbench/dashboard-street-week", full=True)
    one = next(c for c in street["api"]["by_community"] if c["total"])
    page.select_option("[data-gm=d-grid]", str(one["grid_id"]))
    page.wait_for_function(
        "id => document.body.dataset.dashLoaded && GMDash.params.grid === String(id)",
        arg=one["grid_id"],
    )
    narrowed = check()
    assert narrowed["api"]["total"] == one["total"]
    counted = site.one(
        "SELECT count(*) AS n FROM hazards WHERE grid_path @> ARRAY[CAST(:g AS bigint)]"
        " AND reported_at >= CAST(:s AS timestamptz) AND reported_at < CAST(:u AS timestamptz)",
        g=one["grid_id"],
        s=narrowed["params"]["since"],
        u=narrowed["params"]["until"],
    )["n"]
    assert narrowed["api"]["total"] == counted
    elsewhere = site.one(
        "SELECT id FROM grids WHERE level = 'community' AND path[1] <> :s LIMIT 1", s=who["grid"]
    )["id"]
    refused = page.request.get(
        site.base + "/api/v1/stats/dashboard", params={**narrowed["params"], "grid": elsewhere}
    )
    assert refused.status in (403, 404), refused.status
    _clean(tab, site)
    _close(tab)


# ---- the ledger -------------------------------------------------------------------------------
def test_ledger_prints_chinese_and_downloads_xlsx(browser, site: Site, loop: dict) -> None:
    """The ledger prints to an A4 PDF whose text is Chinese in a CJK font (not boxes), with
    page numbers; the XLSX has Chinese headers, Beijing times, handlers and lon/lat."""
    from openpyxl import load_workbook
    from pypdf import PdfReader

    tab = _open(browser, site, "/ledger", user=loop["staff"])
    page = tab.page
    page.wait_for_selector("body[data-ledger-loaded]")
    page.fill("[data-gm=l-since]", "2025-01-01")
    page.fill("[data-gm=l-until]", "2027-06-30")
    page.dispatch_event("[data-gm=l-until]", "change")
    page.wait_for_selector("body[data-ledger-loaded]")
    rows = page.locator("#ledger-rows tr[data-code]").count()
    assert rows >= 1
    tab.shot("workbench/ledger", full=True)
    page.emulate_media(media="print")
    pdf = page.pdf(prefer_css_page_size=True)
    (ARTIFACTS / "workbench").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "workbench" / "ledger.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (
        round(float(box.width) / 72 * 25.4) == 297 and round(float(box.height) / 72 * 25.4) == 210
    )
    text = unicodedata.normalize("NFKC", "\n".join(p.extract_text() for p in reader.pages))
    assert f"{loop['community_name']}隐患台账" in text.replace(" ", "")
    for word in ("单位", "时段", "隐患编号", "处置期限", "结案时间", "制表人"):
        assert word in text.replace(" ", ""), word
    # The page numbers of the CSS margin box (the font maps 页 to a radical form: any char).
    assert re.search(rf"第\s*1\s*\S\s*[，,]\s*共\s*{len(reader.pages)}\s*\S", text), text[:80]
    # The glyphs come from a CJK font (Chromium embeds it as Type3 with a FontDescriptor).
    fonts = set()
    for p in reader.pages:
        for f in (p["/Resources"].get("/Font") or {}).values():
            font = f.get_object()
            desc = font.get("/FontDescriptor")
            fonts.add(str(desc.get_object().get("/FontName") if desc else font.get("/BaseFont")))
    assert any("CJK" in f or "Han" in f for f in fonts), fonts
    # The same rows as XLSX.
    href = page.get_attribute("#ledger-xlsx", "href")
    r = page.request.get(site.base + href)
    assert r.status == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.body())).active
    header = [c.value for c in ws[1]]
    assert header[:3] == ["序号", "隐患编号", "类别"]
    assert {"经度", "纬度", "上报时间", "处置人", "结案时间"} <= set(header)
    assert not any("wkt" in str(h).lower() or "geom" in str(h).lower() for h in header)
    data = [dict(zip(header, [c.value for c in row], strict=True)) for row in ws.iter_rows(2)]
    assert len(data) == rows
    mine = next(d for d in data if d["隐患编号"] == loop["public_code"])
    api = site.api(f"/api/v1/hazards/{loop['id']}")
    lon, lat = api["geometry"]["coordinates"]
    assert abs(mine["经度"] - lon) < 1e-5 and abs(mine["纬度"] - lat) < 1e-5
    reported = site.one(
        "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS t"
        " FROM hazards WHERE id = :id",
        id=loop["id"],
    )["t"]
    assert mine["上报时间"] == reported  # Beijing time, not UTC
    handled = [d for d in data if d["处置人"]]
    assert handled, "the handler's name is in the ledger"
    _clean(tab, site)
    _close(tab)


def test_ledger_of_a_street_and_of_one_of_its_grids(
    browser, site: Site, scoped_users: list[dict]
) -> None:
    """A street user's ledger: the street's cases of the period, then one grid's, each with
    its unit in the title; the rows are the database's and the XLSX has the same ones."""
    from openpyxl import load_workbook

    who = scoped_users[0]
    tab = _open(browser, site, "/ledger", user=who["user"], viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-ledger-loaded]")
    page.fill("[data-gm=l-since]", "2025-01-01")
    page.fill("[data-gm=l-until]", "2027-06-30")
    page.dispatch_event("[data-gm=l-until]", "change")
    page.wait_for_selector("body[data-ledger-loaded]")

    def check(grid: int) -> None:
        name = site.one("SELECT name FROM grids WHERE id = :g", g=grid)["name"]
        # The unit with the names above it (街道 › 社区 › 网格), so a 第8网格 is told apart.
        assert page.inner_text("[data-gm=l-unit]").split(" › ")[-1] == name
        assert name in page.inner_text("[data-gm=l-title]")
        codes = page.locator("#ledger-rows tr[data-code]").evaluate_all(
            "e => e.map(r => r.dataset.code)"
        )
        expected = [
            r["public_code"]
            for r in site.rows(
                "SELECT public_code FROM hazards WHERE grid_path @> ARRAY[CAST(:g AS bigint)]"
                " AND reported_at >= '2025-01-01 00:00+08' AND reported_at < '2027-07-01 00:00+08'",
                g=grid,
            )
        ]
        assert sorted(codes) == sorted(expected) and codes
        r = page.request.get(site.base + page.get_attribute("#ledger-xlsx", "href"))
        ws = load_workbook(io.BytesIO(r.body())).active
        header = [c.value for c in ws[1]]
        col = header.index("隐患编号")
        assert sorted(row[col].value for row in ws.iter_rows(2)) == sorted(expected)

    check(who["grid"])
    grid = site.one(
        "SELECT grid_path[3] AS g FROM hazards h JOIN grids g ON g.id = h.grid_path[3]"
        " WHERE h.grid_path[1] = :s AND g.level = 'grid' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        s=who["grid"],
    )["g"]
    page.select_option("[data-gm=l-grid]", str(grid))
    page.wait_for_function(
        "g => document.body.dataset.ledgerLoaded && document.querySelector('[data-gm=l-grid]')"
        ".value === String(g)",
        arg=grid,
    )
    page.wait_for_selector("body[data-ledger-loaded]")
    check(grid)
    tab.shot("workbench/ledger-grid", full=True)
    _clean(tab, site)
    _close(tab)


# ---- lookup and search ------------------------------------------------------------------------
def test_lookup_by_public_code_and_search_context(browser, site: Site) -> None:
    """GET /hazards/{code} answers like /hazards/{id}; the search box finds a hazard by its
    code and tells identical grid names apart by 街道 › 社区 (it used to list 8 identical
    "第1网格" rows)."""
    hz = site.one("SELECT id, public_code FROM hazards ORDER BY id DESC LIMIT 1")
    by_code = httpx.get(f"{site.base}/api/v1/hazards/{hz['public_code']}")
    assert by_code.status_code == 200 and by_code.json()["id"] == hz["id"]
    assert httpx.get(f"{site.base}/api/v1/hazards/NOPE-1").status_code == 404
    tab = _open(browser, site, "/map")
    page = tab.page
    page.fill("#gm-search", "第1网格")
    page.wait_for_selector("#gm-search-results li[data-i]")
    rows = page.locator("#gm-search-results li[data-i]").all_inner_texts()
    assert len(rows) >= 2 and len(set(rows)) == len(rows), rows
    assert all("›" in r for r in rows)
    tab.shot("workbench/search-context")
    page.fill("#gm-search", hz["public_code"])
    page.wait_for_selector('#gm-search-results li[data-kind="hazard"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'header[data-hazard-id="{hz["id"]}"]')
    _clean(tab, site)
    _close(tab)


def test_search_finds_people_only_for_staff_in_scope(browser, site: Site) -> None:
    """People are found by name only by staff whose scope covers them (never anonymously,
    never from another street); the workbench's search box opens what it finds in the map
    beside the table: a person's grid, a hazard by its code."""
    who = site.one(
        """
        SELECT p.id, p.name, g.id AS grid, g.path[1] AS street, c.code AS community,
               c.name AS community_name
          FROM people p JOIN grid_assignments a ON a.person_id = p.id AND a.valid_to IS NULL
          JOIN grids g ON g.id = a.grid_id AND g.level = 'grid'
          JOIN grids c ON c.id = g.path[2]
         WHERE p.active AND (SELECT count(*) FROM people o WHERE o.name = p.name) = 1
           AND (SELECT count(*) FROM grid_assignments b WHERE b.person_id = p.id
                   AND b.valid_to IS NULL) = 1
         ORDER BY p.id LIMIT 1
        """
    )
    other = site.one(
        "SELECT code FROM grids WHERE level = 'community' AND path[1] <> :s ORDER BY id LIMIT 1",
        s=who["street"],
    )
    tag = uuid.uuid4().hex[:6]
    inside = site.create_user(f"in.{tag}", "community_staff", who["community"], "郑社区")
    outside = site.create_user(f"out.{tag}", "community_staff", other["code"], "冯社区")

    def people(client: httpx.Client) -> list[dict]:
        r = client.get("/api/v1/search", params={"q": who["name"]})
        assert r.status_code == 200, r.text
        return [i for i in r.json()["items"] if i["kind"] == "person"]

    with httpx.Client(base_url=site.base, timeout=30) as anonymous:
        assert people(anonymous) == []
    assert people(site.client(outside)) == []
    found = people(site.client(inside))
    assert [(p["id"], p["grid_id"]) for p in found] == [(who["id"], who["grid"])]
    assert who["community_name"] in found[0]["context"] and "›" in found[0]["context"]

    tab = _open(browser, site, "/desk", user=inside, viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")
    page.fill("#gm-search", who["name"])
    person = page.locator('#gm-search-results li[data-kind="person"]')
    person.wait_for()
    assert who["community_name"] in person.inner_text()
    person.click()
    frame = page.frame_locator("#desk-map")
    frame.locator(f'header[data-grid-id="{who["grid"]}"]').wait_for(timeout=15000)
    code = site.one(
        "SELECT id, public_code FROM hazards WHERE grid_path[2] = (SELECT path[2] FROM grids"
        " WHERE id = :g) ORDER BY id LIMIT 1",
        g=who["grid"],
    )
    page.fill("#gm-search", code["public_code"])
    page.wait_for_selector('#gm-search-results li[data-kind="hazard"]')
    page.keyboard.press("Enter")
    frame.locator(f'header[data-hazard-id="{code["id"]}"]').wait_for(timeout=15000)
    tab.shot("workbench/desk-search")


def test_dashboard_assessment_panel_opens_the_cases(browser, site: Site) -> None:
    """The 考核评价 panel shows the assessment API's figures, and a figure opens its cases."""
    admin = site.create_user(f"kh.{uuid.uuid4().hex[:6]}", "admin", None, "考核员")
    tab = _open(browser, site, "/dashboard", user=admin, viewport=WIDE)
    page = tab.page
    page.select_option("[data-gm=d-period]", "30")
    page.wait_for_selector("body[data-assessment-loaded]")
    params = tab.js("GMDash.params")
    api = page.request.get(
        site.base + "/api/v1/assessment/areas",
        params={"from": params["since"], "to": params["until"], "level": "street"},
    ).json()
    # the whole territory compares its streets; choosing a street compares its communities
    assert api["areas"], "the demo's month has cases in every street"
    shown = page.locator("[data-composite]").all_inner_texts()
    assert [None if x == "—" else float(x) for x in shown] == [a["composite"] for a in api["areas"]]
    assert "综合指标值" in page.inner_text("[data-gm=d-assessment]")
    first = api["areas"][0]
    button = page.locator(f'tr[data-area="{first["area_id"]}"] .dash-fig[data-flag="reported"]')
    assert button.inner_text() == str(first["reported"])
    button.click()
    page.wait_for_selector("[data-gm=d-drill] tr[data-hazard-id]")
    assert f"涉及 {first['reported']} 件" in page.inner_text("[data-gm=d-drill]")
    rows = page.locator("[data-gm=d-drill] tr[data-hazard-id]").count()
    assert rows == min(50, first["reported"])
    assert page.locator("#dash-points tr").count() > 1  # the points ranking has people
    # 志愿服务 per area: the same hours as the API, and the table is in Chinese
    served = page.request.get(
        site.base + "/api/v1/assessment/volunteers",
        params={"from": params["since"], "to": params["until"], "level": "street"},
    ).json()["areas"]
    assert served, "the demo's month has service orders"
    shown_hours = page.locator("[data-gm=d-volunteers] [data-hours]").all_inner_texts()
    assert [float(h) for h in shown_hours] == [a["hours"] for a in served]
    assert "服务时长（小时）" in page.inner_text("[data-gm=d-volunteers]")
    tab.shot("workbench/dashboard-assessment", full=True)
    _clean(tab, site)
    _close(tab)


def test_desk_service_order_from_order_to_rating(browser, site: Site) -> None:
    """三单制 on the workbench: a resident's order (placed through the API, anonymously) waits
    in 待派单 of its community; the community user 派单s it to a volunteer of the community,
    records 接单 and 完成 with the hours, then the resident's 评价; the API agrees at each
    step and the badges move with it."""
    row = site.one(
        """
        SELECT ST_X(ST_PointOnSurface(m.geom)) AS lon, ST_Y(ST_PointOnSurface(m.geom)) AS lat,
               c.id AS community, c.code AS community_code
          FROM grids m JOIN grids c ON c.id = m.path[2]
         WHERE m.level = 'micro_grid' AND m.valid_to IS NULL AND c.level = 'community'
           AND EXISTS (SELECT 1 FROM volunteers v WHERE v.grid_path @> ARRAY[c.id])
         ORDER BY m.id LIMIT 1
        """
    )
    placed = httpx.post(
        site.base + "/api/v1/orders",
        json={"service_type": "wheelchair_delivery", "lon": row["lon"], "lat": row["lat"],
              "description": "老人出院，需借用轮椅一周", "resident_phone": "100-5555-0101"},
    )  # fmt: skip
    assert placed.status_code == 201, placed.text
    oid, code = placed.json()["id"], placed.json()["public_code"]
    user = site.create_user(f"sq.{uuid.uuid4().hex[:6]}", "community_staff",
                            row["community_code"], "赵社区")  # fmt: skip
    tab = _open(browser, site, "/desk", user=user, viewport=WIDE)
    page = tab.page
    page.wait_for_selector("body[data-desk-ready]")
    api = site.client(user)

    def count(status: str) -> int:
        return api.get("/api/v1/orders", params={"status": status, "limit": 1}).json()[
            "numberMatched"
        ]

    page.click('[data-kind="orders"]')
    page.wait_for_selector("body[data-orders-for=ordered]")
    page.wait_for_function(
        f"document.querySelector('[data-order-count=ordered]').textContent === '{count('ordered')}'"
    )
    assert page.inner_text('[data-kind-count="orders"]') == str(count("ordered"))
    page.click(f'tr[data-order-id="{oid}"]')
    page.wait_for_selector(f'header[data-order-id="{oid}"][data-order-status="ordered"]')
    assert "100-5555-0101" in page.inner_text("[data-gm=o-detail]")  # staff in scope see it
    # 派单: the choices are the community's own volunteers and partner units
    vols = api.get("/api/v1/volunteers", params={"grid": row["community"]}).json()["items"]
    options = page.locator("[data-gm=o-assignee] option").evaluate_all(
        "els => els.map(e => e.value)"
    )
    assert [o for o in options if o.startswith("v:")] == [f"v:{v['id']}" for v in vols]
    page.select_option("[data-gm=o-assignee]", f"v:{vols[0]['id']}")
    page.click('form[data-order-move="dispatch"] button')
    page.wait_for_selector(f'header[data-order-id="{oid}"][data-order-status="dispatched"]')
    page.click('form[data-order-move="take"] button')
    page.wait_for_selector(f'header[data-order-id="{oid}"][data-order-status="taken"]')
    page.fill("[data-gm=o-hours]", "1.5")
    page.click('form[data-order-move="finish"] button')
    page.wait_for_selector(f'header[data-order-id="{oid}"][data-order-status="done"]')
    page.select_option("[data-gm=o-rating]", "satisfied")
    page.click('form[data-order-move="rate"] button')
    page.wait_for_selector(f'header[data-order-id="{oid}"][data-order-status="rated"]')
    detail = page.inner_text("[data-gm=o-detail]")
    assert "已评价" in detail and "派单" in detail and "服务时长 1.5 小时" in detail
    assert page.locator("[data-gm=o-detail] form").count() == 0  # nothing left to do
    got = api.get(f"/api/v1/orders/{oid}").json()["features"][0]["properties"]
    assert (got["status"], got["hours"], got["rating"]) == ("rated", 1.5, "satisfied")
    assert got["volunteer"]["id"] == vols[0]["id"] and got["public_code"] == code
    assert [h["action"] for h in got["history"]] == ["order", "dispatch", "take", "finish", "rate"]
    tab.shot("workbench/desk-orders", full=True)
    _clean(tab, site)
    _close(tab)


def test_map_shows_service_orders_to_staff_only(browser, site: Site) -> None:
    """三单制 on the map: staff get a “三单制服务” layer with their scope's orders as dots, a dot
    opens the order's service and state; an anonymous visitor gets no such layer."""
    anon = _open(browser, site, "/map")
    anon.page.hover(".leaflet-control-layers")
    labels = anon.page.locator(".leaflet-control-layers label").all_inner_texts()
    assert not any("三单制服务" in x for x in labels), labels
    _clean(anon, site)
    _close(anon)
    admin = site.create_user(f"fw.{uuid.uuid4().hex[:6]}", "admin", None, "服务管理员")
    tab = _open(browser, site, "/map", user=admin, viewport=WIDE)
    page = tab.page
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers label", has_text="三单制服务").click()
    page.wait_for_selector("body[data-orders-drawn]")
    api = site.client(admin).get("/api/v1/orders", params={"limit": 1000}).json()
    assert api["numberMatched"] > 0
    assert page.get_attribute("body", "data-orders-drawn") == str(len(api["features"]))
    page.mouse.move(5, 400)  # let the layer control fold away
    # the dots are drawn on canvas: click where the first order lies
    lon, lat = api["features"][0]["geometry"]["coordinates"]
    box = page.locator("#" + tab.js("GM.map.getContainer().id")).bounding_box()
    pt = tab.js(f"(() => {{ const p = GM.map.latLngToContainerPoint(GM.toView({lon}, {lat}));"
                " return [p.x, p.y]; })()")  # fmt: skip
    page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])
    popup = page.wait_for_selector(".gm-order-popup")
    code = popup.get_attribute("data-order-code")
    props = {f["properties"]["public_code"]: f["properties"] for f in api["features"]}[code]
    assert props["status_name"] in popup.inner_text()
    tab.shot("workbench/map-orders")
    _clean(tab, site)
    _close(tab)


def test_a_hazard_set_while_the_map_moves_still_opens(browser, site: Site) -> None:
    """The workbench opens a hazard by setting the map's #hazard=; if the map writes its own
    view into the hash (a fly's moveend) before that hashchange is handled, the change looked
    like the map's own and the hazard never opened (seen under load in the search test
    above). A foreign hash waits for its hashchange: the hazard opens."""
    hazard = site.one("SELECT id FROM hazards WHERE status <> 'closed' ORDER BY id LIMIT 1")
    tag = uuid.uuid4().hex[:6]
    user = site.create_user(f"hash.{tag}", "admin", None, "韩管理")
    tab = _open(browser, site, "/desk", user=user, viewport=WIDE)
    try:
        page = tab.page
        page.wait_for_selector("body[data-desk-ready]")
        frame = page.query_selector("#desk-map").content_frame()
        frame.wait_for_selector("html[data-gm-ready]")
        # The hash set from outside and, in the same task, a moveend of the map's own.
        frame.evaluate(
            "id => { location.hash = '#hazard=' + id; window.GM.map.fire('moveend'); }",
            hazard["id"],
        )
        page.frame_locator("#desk-map").locator(
            f'header[data-hazard-id="{hazard["id"]}"]'
        ).wait_for(timeout=15000)
    finally:
        _close(tab)
