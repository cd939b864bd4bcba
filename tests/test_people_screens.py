"""The 人员 and 账号 screens, driven as their users drive them, in Debian's Chromium (issue 17).

A street-staff user replaces a grid's 网格长 on the 人员 screen; locate names the new leader at
once and, for yesterday, the old one; a map page opened before the change shows the new leader
when the grid is clicked, with no reload of the page or the server. An admin creates an
account on the 账号 screen, links it to a person picked by name within the grid, and that
person logs in and sees their tasks. No page asks anything of another machine, and none prints
a console error.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.webkit import PASSWORD, WIDE, Site, _close, _off_machine, _open

pytestmark = pytest.mark.usefixtures("browser")


def _clean(tab, site: Site, refused: int | None = None) -> None:
    """Nothing asked of another machine; no console error but the refusal a test provoked."""
    assert _off_machine(tab, site) == [], _off_machine(tab, site)
    expected = (f"{refused} ", f"status of {refused} ") if refused else ()
    errors = [e for e in tab.errors if not (expected and any(x in e for x in expected))]
    assert errors == [], tab.errors


def _leader(site: Site, grid_id: int) -> str | None:
    rows = site.rows(
        "SELECT p.name FROM grid_assignments a JOIN people p ON p.id = a.person_id"
        " WHERE a.grid_id = :g AND a.is_primary AND a.valid_from <= now()"
        " AND (a.valid_to IS NULL OR a.valid_to > now())",
        g=grid_id,
    )
    return rows[0]["name"] if rows else None


def _street_tab(browser, site: Site, handover: dict, path: str, ready: str):
    """The street-staff user of the handover on one of their screens, wide."""
    return _open(browser, site, path, user=handover["user"], viewport=WIDE, ready=ready)


def _located_leaders(site: Site, lon: float, lat: float, grid_id: int, **params) -> list[str]:
    body = site.api("/api/v1/locate", lon=lon, lat=lat, **params)
    entry = next(g for g in body["chain"] if g["id"] == grid_id)
    return [p["name"] for p in entry["people"] if p["is_primary"]]


@pytest.fixture(scope="module")
def handover(site: Site) -> dict:
    """A grid of the last street (no other test works there), a point inside it, its leader,
    and a street-staff account of that street made with the CLI."""
    grid = site.one(
        """
        SELECT g.id, g.code, g.name, g.path[1] AS street, g.path[2] AS community,
               s.code AS street_code, ST_X(p) AS lon, ST_Y(p) AS lat
          FROM grids g JOIN grids s ON s.id = g.path[1],
               LATERAL ST_PointOnSurface(g.geom) AS p
         WHERE g.level = 'grid' AND g.valid_to IS NULL
           AND EXISTS (SELECT 1 FROM grid_assignments a WHERE a.grid_id = g.id AND a.is_primary
                          AND a.valid_to IS NULL)
         ORDER BY g.code DESC LIMIT 1
        """
    )
    user = site.create_user(
        f"jd.{uuid.uuid4().hex[:6]}", "street_staff", grid["street_code"], "街道周"
    )
    return {**grid, "user": user, "old": _leader(site, grid["id"])}


def test_street_staff_replaces_the_grid_leader_on_screen(
    browser, site: Site, handover: dict
) -> None:
    grid_id, lon, lat = handover["id"], handover["lon"], handover["lat"]
    new_name = f"赵新{uuid.uuid4().hex[:3]}"
    # A map opened before the change: it must show the new leader without any reload.
    map_tab = _open(browser, site, "/map", viewport=WIDE)
    people = _street_tab(browser, site, handover, "/people", "body[data-people-ready]")
    page = people.page
    # The tree opens at the street; open the community, then choose the grid.
    community = page.locator(f'li[data-grid="{handover["community"]}"]')
    community.locator("> .pp-node > button.pp-toggle").click()
    node = page.locator(f'.pp-node[data-node="{grid_id}"]')
    node.wait_for()
    node.click()
    page.wait_for_selector(f'.pp-head[data-grid-id="{grid_id}"]')
    assert page.locator("[data-gm=leader-name]").inner_text() == handover["old"]
    assert page.locator("#pp-grid h2").inner_text() == handover["name"]
    # The map beside the list follows the chosen grid.
    frame = page.frame_locator("#pp-map")
    frame.locator(f'header[data-grid-id="{grid_id}"]').wait_for()
    people.shot("people/grid-before")

    page.click("[data-gm=replace-leader]")
    form = page.locator("#gm-form")
    form.wait_for()
    form.locator("[data-gm=who-new]").check()
    form.locator("[data-gm=new-name]").fill(new_name)
    form.locator("[data-gm=new-mobile]").fill("138 0371 0001")
    # A reason is required: without it the form says so in Chinese and sends nothing.
    form.locator("[data-gm=submit]").click()
    assert "原因" in form.locator("[data-gm=form-error]").inner_text()
    form.locator("[data-gm=reason]").fill("换届选举")
    people.shot("people/replace-form")
    form.locator("[data-gm=submit]").click()
    page.wait_for_function(
        "name => document.querySelector('[data-gm=leader-name]')?.textContent === name",
        arg=new_name,
    )
    assert page.locator("#gm-form-dialog").is_hidden()
    history = page.locator("#pp-grid section", has_text="历史").inner_text()
    assert handover["old"] in history and "换届选举" in history
    frame.locator("[data-gm=leader-name]", has_text=new_name).wait_for()
    people.shot("people/grid-after")

    # locate names the new leader at once, and the old one as of yesterday.
    assert _located_leaders(site, lon, lat, grid_id) == [new_name]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert _located_leaders(site, lon, lat, grid_id, at=yesterday) == [handover["old"]]
    audit = site.rows(
        "SELECT action, reason, principal_name FROM audit_log"
        " WHERE object_type = 'grid_assignment' AND reason = '换届选举'"
        " AND after ->> 'grid_id' = :g",
        g=str(grid_id),
    )
    assert {a["action"] for a in audit} == {"end", "create"}

    # The map opened before the change: a click in the grid shows the new leader.
    m = map_tab.page
    zoom = map_tab.js(
        """() => { const lv = Object.fromEntries(GM.cfg.levels.map(l => [l.level, l]));
                   return Math.max(lv.grid.minzoom - 1, lv.micro_grid.minzoom - 2); }"""
    )
    map_tab.js(f"() => GM.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    box = m.locator(".folium-map").first.bounding_box()
    point = map_tab.js(f"() => GM.map.latLngToContainerPoint([{lat}, {lon}])")
    m.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    m.wait_for_selector(f'header[data-grid-id="{grid_id}"]')
    m.locator("[data-gm=leader-name]", has_text=new_name).wait_for()
    map_tab.shot("people/map-panel-after")
    _clean(map_tab, site)
    _clean(people, site)
    _close(map_tab)
    _close(people)


def test_gap_in_red_and_history_per_person(browser, site: Site, handover: dict) -> None:
    """Ending a micro-grid's leader on screen leaves a red gap in the tree, with the coverage
    check linked; the person's record lists the ended role with who ended it and why."""
    micro = site.one(
        """
        SELECT g.id, g.parent_id, a.id AS assignment, p.name, p.id AS person
          FROM grids g JOIN grid_assignments a ON a.grid_id = g.id AND a.is_primary
               AND a.valid_to IS NULL
          JOIN people p ON p.id = a.person_id
         WHERE g.parent_id = :g AND g.level = 'micro_grid' AND g.valid_to IS NULL
         ORDER BY g.code LIMIT 1
        """,
        g=handover["id"],
    )
    tab = _street_tab(
        browser, site, handover, f"/people#grid={micro['id']}", "body[data-people-ready]"
    )
    page = tab.page
    page.wait_for_selector(f'.pp-head[data-grid-id="{micro["id"]}"]')
    page.click(f'[data-act=end][data-id="{micro["assignment"]}"]')
    form = page.locator("#gm-form")
    form.locator("[data-gm=reason]").fill("退休")
    form.locator("[data-gm=submit]").click()
    page.wait_for_selector("[data-gm=gap]")
    assert "缺少微网格员" in page.locator("[data-gm=gap]").inner_text()
    href = page.locator("[data-gm=coverage-link]").get_attribute("href")
    check = site.client(handover["user"]).get(href, timeout=60).json()
    assert any(f["properties"]["kind"] == "no_leader" for f in check["features"])
    # The tree shows the gap in red on the grid's row once the parent is open.
    node = page.locator(f'.pp-node[data-node="{micro["id"]}"]')
    node.wait_for()
    assert "pp-gap" in (node.get_attribute("class") or "")
    assert node.locator("[data-gm=gap-tag]").inner_text() == "缺负责人"
    tab.shot("people/gap")
    page.click(f'#pp-grid [data-person="{micro["person"]}"]')
    record = page.locator(".pp-person")
    record.wait_for()
    assert micro["name"] in record.inner_text() and "退休" in record.inner_text()
    _clean(tab, site)
    _close(tab)
    # Community staff see the gap too, but no link to a check they may not run (403).
    code = site.one("SELECT code FROM grids WHERE id = :c", c=handover["community"])["code"]
    local = site.create_user(f"sq.{uuid.uuid4().hex[:6]}", "community_staff", code, "社区吴")
    assert site.client(local).get(href, timeout=60).status_code == 403
    tab = _open(browser, site, f"/people#grid={micro['id']}", user=local, viewport=WIDE)
    tab.page.wait_for_selector("[data-gm=gap]")
    assert tab.page.locator("[data-gm=coverage-link]").count() == 0
    _clean(tab, site)
    _close(tab)


@pytest.fixture(scope="module")
def assignee(site: Site) -> dict:
    """A person with open hazards assigned to them and no account, and the grid they serve."""
    return site.one(
        """
        SELECT p.id, p.name, g.code AS grid_code, g.name AS grid_name, count(h.id) AS tasks
          FROM hazards h
          JOIN people p ON p.id = h.assignee_person_id
          JOIN grid_assignments a ON a.person_id = p.id AND a.valid_to IS NULL
          JOIN grids g ON g.id = a.grid_id AND g.level = 'grid'
         WHERE h.status IN ('dispatched', 'in_progress')
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.person_id = p.id)
           AND (SELECT count(*) FROM people q WHERE q.name = p.name) = 1
         GROUP BY p.id, p.name, g.code, g.name
         ORDER BY count(h.id) DESC, p.id DESC LIMIT 1
        """
    )


def test_admin_links_an_account_to_a_person_who_then_sees_their_tasks(
    browser, site: Site, assignee: dict
) -> None:
    admin = site.create_user(f"ad.{uuid.uuid4().hex[:6]}", "admin", None, "管理员")
    tab = _open(
        browser, site, "/accounts", user=admin, viewport=WIDE, ready="body[data-accounts-ready]"
    )
    page = tab.page
    username = f"p.{uuid.uuid4().hex[:6]}"
    page.click("[data-gm=new-account]")
    form = page.locator("#gm-form")
    form.locator("[data-gm=username]").fill(username)
    form.locator("[data-gm=display-name]").fill(assignee["name"])
    form.locator("[data-gm=role]").select_option("field_staff")
    form.locator("[data-gm=grid-picker] input").fill(assignee["grid_code"])
    form.locator("[data-gm=grid-picker] li[data-i]", has_text=assignee["grid_name"]).first.click()
    form.locator("[data-gm=picked-grid]").wait_for()
    # The person is picked by name among the people of that grid, never by an id.
    form.locator("[data-gm=person-picker] input").fill(assignee["name"])
    form.locator("[data-gm=person-picker] li[data-i]", has_text=assignee["name"]).click()
    assert form.locator("[data-gm=picked-person]").inner_text() == assignee["name"]
    form.locator("[data-gm=password]").fill(PASSWORD)
    tab.shot("accounts/new-account")
    form.locator("[data-gm=submit]").click()
    page.wait_for_selector(f"#ac-rows tr:has-text('{username}')")
    page.wait_for_selector("[data-gm=linked-person]")
    assert page.locator("[data-gm=linked-person]").inner_text() == assignee["name"]
    row = site.one("SELECT person_id, role FROM users WHERE username = :u", u=username)
    assert row["person_id"] == assignee["id"] and row["role"] == "field_staff"
    # Linking the same person again is refused, in Chinese.
    page.click("[data-gm=new-account]")
    form.locator("[data-gm=username]").fill(username + "x")
    form.locator("[data-gm=display-name]").fill("重复")
    form.locator("[data-gm=grid-picker] input").fill(assignee["grid_code"])
    form.locator("[data-gm=grid-picker] li[data-i]", has_text=assignee["grid_name"]).first.click()
    form.locator("[data-gm=person-picker] input").fill(assignee["name"])
    form.locator("[data-gm=person-picker] li[data-i]", has_text=assignee["name"]).click()
    form.locator("[data-gm=password]").fill(PASSWORD)
    form.locator("[data-gm=submit]").click()
    error = form.locator("[data-gm=form-error]")
    error.wait_for()
    assert "已关联" in error.inner_text()
    tab.shot("accounts/linked-twice")
    page.locator("#gm-form [data-cancel]").first.click()
    _clean(tab, site, refused=409)
    _close(tab)

    # The person logs in and finds their tasks in 我的任务.
    me = _open(browser, site, "/desk", user=username, viewport=WIDE, ready="body[data-desk-ready]")
    tasks = site.client(username).get("/api/v1/me/tasks").json()
    codes = [f["properties"]["public_code"] for f in tasks["features"]]
    assert codes, "the person has tasks"
    mine = me.page.locator('[data-count="mine"]').inner_text()
    assert int(mine) == len(codes)
    for code in codes[:3]:
        me.page.wait_for_selector(f"#desk-rows tr:has-text('{code}')")
    me.shot("accounts/person-tasks")
    _clean(me, site)
    _close(me)


def test_accounts_screen_is_for_account_managers(browser, site: Site) -> None:
    grid = site.one("SELECT code FROM grids WHERE level = 'community' ORDER BY code LIMIT 1")
    user = site.create_user(f"cs.{uuid.uuid4().hex[:6]}", "community_staff", grid["code"], "社区钱")
    tab = _open(browser, site, "/accounts", user=user)
    assert tab.page.locator("#accounts").is_hidden()
    assert "无权" in tab.page.locator("#gm-gate").inner_text()
    links = tab.page.locator(".gm-user-links a").all_inner_texts()
    assert any("人员" in t for t in links) and not any("账号" in t for t in links)
    _clean(tab, site)
    _close(tab)


def test_street_staff_keys_show_scopes_and_last_use(browser, site: Site, handover: dict) -> None:
    """On the 账号 screen's API 密钥 tab a street-staff user is offered only the scopes they
    hold, binds a key to a grid of their street, sees the secret once, then the key's last use
    after another system used it, and revokes it; create and revoke are audited."""
    tab = _street_tab(browser, site, handover, "/accounts", "body[data-accounts-ready]")
    page = tab.page
    page.click("[data-tab=keys]")
    page.click("[data-gm=new-key]")
    form = page.locator("#gm-form")
    offered = form.locator("input[name=scope]").evaluate_all("els => els.map(e => e.value)")
    # A street's staff hold neither admin nor open311: neither is offered.
    assert set(offered) == {
        "read", "read_private", "report", "write", "dispatch", "export", "import"
    }  # fmt: skip
    name = f"巡查系统{uuid.uuid4().hex[:4]}"
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=scope][value=read]").check()
    form.locator("input[name=scope][value=read_private]").check()
    # Without a grid a street's key is refused on the form, in Chinese.
    form.locator("[data-gm=submit]").click()
    assert "网格" in form.locator("[data-gm=form-error]").inner_text()
    form.locator("#ac-key-grid input").fill(handover["code"])
    form.locator("#ac-key-grid li[data-i]", has_text=handover["name"]).first.click()
    form.locator("[data-gm=picked-grid]").wait_for()
    form.locator("[data-gm=submit]").click()
    secret = page.locator("[data-gm=key-secret]")
    secret.wait_for()
    key = secret.inner_text().strip()
    tab.shot("accounts/key-created")
    page.locator("#gm-form [data-cancel]").first.click()
    row = page.locator("#ac-key-rows tr", has_text=name)
    row.wait_for()
    assert "从未使用" in row.inner_text()
    assert "读取公开数据" in row.inner_text() and handover["name"] in row.inner_text()
    stored = site.one(
        "SELECT id, scopes, grid_id FROM api_keys WHERE name = :n", n=name
    )  # fmt: skip
    assert sorted(stored["scopes"]) == ["read", "read_private"]
    assert stored["grid_id"] == handover["id"]

    # Another system uses the key; the tab shows when, the next time it loads.
    private = {"grid": handover["id"]}  # people of the grid: read_private, not anonymous
    used = httpx.get(
        site.base + "/api/v1/people", params=private, headers={"X-API-Key": key}, timeout=30
    )
    assert used.status_code == 200 and used.json()["people"], used.text
    page.check("#ac-revoked")  # reloads the list (revoked keys included)
    page.wait_for_function(
        "n => [...document.querySelectorAll('#ac-key-rows tr')].some("
        "tr => tr.textContent.includes(n) && !tr.textContent.includes('从未使用'))",
        arg=name,
    )
    tab.shot("accounts/key-used")
    kid = stored["id"]
    page.click(f'[data-revoke="{kid}"]')
    page.wait_for_selector(f'#ac-key-rows tr[data-key="{kid}"] .gm-tag-red')
    assert "已吊销" in page.locator(f'#ac-key-rows tr[data-key="{kid}"]').inner_text()
    gone = httpx.get(
        site.base + "/api/v1/people", params=private, headers={"X-API-Key": key}, timeout=30
    )
    assert gone.status_code == 401
    audit = site.rows(
        "SELECT action, principal_name FROM audit_log WHERE object_type = 'api_key'"
        " AND object_id = :k ORDER BY id",
        k=str(kid),
    )
    assert [a["action"] for a in audit] == ["create", "revoke"], audit
    _clean(tab, site)
    _close(tab)
