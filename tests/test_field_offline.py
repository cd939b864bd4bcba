"""The field app on a phone (390 × 844) in Debian's Chromium, with the network cut.

A grid leader, offline, records a visit with a photo, reports a hazard and sends 反馈 on an
assigned task; the page is closed and opened again online, and each of the three reaches
the server exactly once with the time it was made on the phone. A move whose hazard was
moved meanwhile comes back as a conflict that the user sees. A patrol started, interrupted
by a reload and stopped is uploaded as one track.
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime

import pytest
from PIL import Image
from sqlalchemy import text

from tests.support.authkit import make_user
from tests.support.webkit import PASSWORD, PHONE, Site, Tab, _close, _off_machine

pytestmark = pytest.mark.usefixtures("browser")

# What Chromium prints for a request made while the context is offline: expected there.
OFFLINE_NOISE = ("ERR_INTERNET_DISCONNECTED", "Failed to fetch", "net::ERR_FAILED")

_OUTBOX = """async () => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open('gis-field');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  return await new Promise((ok, ko) => {
    const r = db.transaction('outbox').objectStore('outbox').getAll();
    r.onsuccess = () => ok(r.result.map((i) => ({
      kind: i.kind, state: i.state, created_at: i.created_at, fields: i.fields,
      key: i.headers['Idempotency-Key'], photos: i.photos.length })));
    r.onerror = () => ko(r.error);
  });
}"""


def _phone(browser, site: Site, username: str, lon: float, lat: float):
    """A phone context logged in as username, standing at (lon, lat)."""
    context = browser.new_context(
        viewport=PHONE,
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        permissions=["geolocation"],
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
    )
    r = context.request.post(
        site.base + "/api/v1/auth/login", data={"username": username, "password": PASSWORD}
    )
    assert r.status == 200, r.text()
    return context


def _page(context, site: Site, lon: float, lat: float) -> Tab:
    page = context.new_page()
    tab = Tab(page)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(f"pageerror: {e}"))
    page.goto(f"{site.base}/map?mode=field#map=18/{lat:.6f}/{lon:.6f}")
    page.wait_for_selector("html[data-gm-ready]", timeout=30000)
    return tab


def _real_errors(tab: Tab) -> list[str]:
    return [e for e in tab.errors if not any(n in e for n in OFFLINE_NOISE)]


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def field(site: Site) -> dict:
    """A grid with people under care, its leader (a user), two hazards in progress assigned
    to the leader, and an admin to move one of them while the phone is offline."""
    grid = site.one(
        """
        SELECT r.grid_path[3] AS grid, min(r.id) AS person
          FROM care_roster r JOIN grids g ON g.id = r.grid_path[3] AND g.level = 'grid'
         WHERE r.geom IS NOT NULL
         GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
        """
    )
    leader = site.one(
        "SELECT person_id FROM grid_assignments WHERE grid_id = :g AND is_primary", g=grid["grid"]
    )["person_id"]
    here = site.one(
        "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM care_roster WHERE id = :p",
        p=grid["person"],
    )
    # Overdue, so that 今日 lists them whatever the demo drew.
    with site.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE care_people SET last_visit_at = now() - interval '100 days' WHERE id = :p"
            ),
            {"p": grid["person"]},
        )
    user = make_user(site.engine, "grid_leader", grid=grid["grid"], person_id=leader)
    admin = make_user(site.engine, "admin")
    staff = site.client(admin["username"])
    tasks = []
    for what in ("外勤离线测试：楼道堆物待清理", "外勤离线测试：井盖松动"):
        r = staff.post(
            "/api/v1/hazards",
            json={
                "category": "corridor_clutter",
                "lon": here["lon"] + 0.0001 * (len(tasks) + 1),
                "lat": here["lat"],
                "description": what,
            },
        )
        assert r.status_code == 201, r.text
        hid = r.json()["id"]
        for body in ({"action": "accept"}, {"action": "dispatch", "assignee_person_id": leader}):
            version = staff.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
            moved = staff.post(
                f"/api/v1/hazards/{hid}/actions", json=body, headers={"If-Match": f'"{version}"'}
            )
            assert moved.status_code == 200, moved.text
        tasks.append(hid)
    leader_http = site.client(user["username"])
    for hid in tasks:
        version = leader_http.get(f"/api/v1/hazards/{hid}").json()["properties"]["version"]
        r = leader_http.post(
            f"/api/v1/hazards/{hid}/actions",
            json={"action": "start"},
            headers={"If-Match": f'"{version}"'},
        )
        assert r.status_code == 200, r.text
    return {
        "grid": grid["grid"],
        "person": grid["person"],
        "here": (here["lon"], here["lat"]),
        "user": user,
        "staff": staff,
        "tasks": tasks,
    }


def _wait_outbox(tab: Tab, n: int) -> None:
    tab.page.wait_for_function(
        f"() => document.querySelector('[data-gm=outbox-count]').textContent === '{n}'"
        f" && ({n} === 0) === document.getElementById('gm-outbox').hidden",
        timeout=30000,
    )


def test_offline_visit_report_and_feedback_arrive_once_with_their_times(
    browser, site: Site, field: dict
) -> None:
    lon, lat = field["here"]
    person, (task, contested) = field["person"], field["tasks"]
    context = _phone(browser, site, field["user"]["username"], lon, lat)
    tab = _page(context, site, lon, lat)
    page = tab.page
    # Online once: the app shell is cached and 今日 keeps my area's data on the phone.
    page.wait_for_selector("html[data-gm-offline-ready]", timeout=30000)
    page.tap("#gm-duties")
    page.wait_for_selector(f"[data-visit='{person}']")
    page.wait_for_selector(f"[data-duty-move='{task}']")
    tab.shot("field/phone-duties-online")
    context.set_offline(True)

    # 1. A visit with a photo.
    page.tap(f"[data-visit='{person}']")
    page.wait_for_selector("#gm-sheet-visit:not([hidden])")
    page.fill("#gm-visit-findings", "离线走访：老人身体平稳，已提醒服药")
    page.check("#gm-visit-needs input[value='medical']")
    page.set_input_files(
        "#gm-visit-photos",
        files=[{"name": "visit.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}],
    )
    page.tap("#gm-visit-service >> xpath=ancestor::details/summary")
    page.select_option("#gm-visit-service-type", "elderly_visit")
    page.fill("#gm-visit-service", "离线点单：每周代购一次")
    tab.shot("field/phone-visit-form")
    page.tap("#gm-visit-submit")
    _wait_outbox(tab, 1)
    page.wait_for_function("() => /离线/.test(document.getElementById('gm-toast').textContent)")

    # 2. A hazard report at my GPS position.
    page.tap("#gm-report")
    page.tap("#gm-pick-gps")
    page.wait_for_selector("#gm-sheet-report:not([hidden]) .gm-offline-note")
    page.select_option("#gm-report-category", "corridor_clutter")
    page.fill("#gm-report-description", "离线上报：3单元楼道电动车充电")
    page.tap("#gm-report-submit")
    _wait_outbox(tab, 2)

    # 3. 反馈 on an assigned task, from 今日 as the phone keeps it.
    page.tap("#gm-duties")
    page.wait_for_selector("#gm-duties-body .gm-offline-note")
    page.tap(f"[data-duty-move='{task}']")
    page.wait_for_selector("#gm-sheet-move:not([hidden])")
    page.fill("#gm-move-note", "离线反馈：杂物已清理完毕")
    page.tap("#gm-move-submit")
    _wait_outbox(tab, 3)
    # … and one on a task that someone else moves while the phone is offline.
    page.tap("#gm-duties")
    page.tap(f"[data-duty-move='{contested}']")
    page.fill("#gm-move-note", "离线反馈：井盖已固定")
    page.tap("#gm-move-submit")
    _wait_outbox(tab, 4)
    tab.shot("field/phone-offline-queued")
    queued = tab.js(_OUTBOX)
    assert [q["kind"] for q in queued] == ["visit", "report", "move", "move"]
    assert queued[0]["photos"] == 1 and len({q["key"] for q in queued}) == 4
    staff = field["staff"]
    version = staff.get(f"/api/v1/hazards/{contested}").json()["properties"]["version"]
    moved = staff.post(
        f"/api/v1/hazards/{contested}/actions",
        json={"action": "comment", "note": "社区已电话联系"},
        headers={"If-Match": f'"{version}"'},
    )
    assert moved.status_code == 200

    # Offline, the page comes back from the phone (service worker) with its queue.
    page.reload()
    page.wait_for_selector("html[data-gm-ready]", timeout=30000)
    _wait_outbox(tab, 4)
    page.close()

    # Online again: a new page sends everything, in order, once.
    context.set_offline(False)
    tab2 = _page(context, site, lon, lat)
    page2 = tab2.page
    _wait_outbox(tab2, 1)  # the contested move stays, as a conflict
    page2.wait_for_selector("#gm-outbox.gm-outbox-problem")
    page2.tap("#gm-outbox")
    page2.wait_for_selector("[data-outbox][data-state='conflict']")
    assert "已被他人处理" in page2.inner_text("#gm-outbox-body")
    tab2.shot("field/phone-conflict")

    visit_at = datetime.fromisoformat(queued[0]["fields"]["visited_at"].replace("Z", "+00:00"))
    seen_at = datetime.fromisoformat(queued[1]["fields"]["observed_at"].replace("Z", "+00:00"))
    done_at = datetime.fromisoformat(queued[2]["fields"]["occurred_at"].replace("Z", "+00:00"))
    visits = site.rows(
        "SELECT v.id, v.visited_at, (SELECT count(*) FROM visit_photos p WHERE p.visit_id = v.id)"
        " AS photos FROM visits v WHERE v.findings LIKE '离线走访%'"
    )
    assert len(visits) == 1 and visits[0]["visited_at"] == visit_at and visits[0]["photos"] == 1
    orders = site.rows(
        "SELECT service_type FROM service_orders WHERE description = '离线点单：每周代购一次'"
    )
    assert [o["service_type"] for o in orders] == ["elderly_visit"]
    reports = site.rows(
        "SELECT observed_at, reported_at FROM hazards WHERE description LIKE '离线上报%'"
    )
    assert len(reports) == 1 and reports[0]["observed_at"] == seen_at
    assert reports[0]["reported_at"] > seen_at  # it reached the server later
    moves = site.rows(
        "SELECT occurred_at FROM hazard_events WHERE hazard_id = :h AND action = 'resolve'",
        h=task,
    )
    assert len(moves) == 1 and moves[0]["occurred_at"] == done_at
    assert site.one("SELECT status FROM hazards WHERE id = :h", h=task)["status"] == "resolved"
    assert site.one("SELECT status FROM hazards WHERE id = :h", h=contested)["status"] == (
        "in_progress"
    )
    # Opening the app again sends nothing twice.
    page2.reload()
    page2.wait_for_selector("html[data-gm-ready]")
    _wait_outbox(tab2, 1)
    assert site.one("SELECT count(*) AS n FROM visits WHERE findings LIKE '离线走访%'")["n"] == 1
    assert _real_errors(tab) == [] and _real_errors(tab2) == []
    assert _off_machine(tab2, site) == []
    _close(tab2)


def test_patrol_survives_a_reload_and_uploads_as_one_track(
    browser, site: Site, field: dict
) -> None:
    lon, lat = field["here"]
    context = _phone(browser, site, field["user"]["username"], lon, lat)
    tab = _page(context, site, lon, lat)
    page = tab.page

    def walk(steps: range) -> None:
        for i in steps:
            context.set_geolocation({"longitude": lon + i * 0.0002, "latitude": lat, "accuracy": 6})
            page.wait_for_function(
                f"() => /· {i + 1} 个点/.test(document.getElementById('gm-patrol-text')"
                ".textContent)",
                timeout=15000,
            )

    page.tap("#gm-patrol")
    page.wait_for_selector("#gm-patrol-banner:not([hidden])")
    started = time.time()
    walk(range(0, 4))
    ref = tab.js("() => GM.state.patrolRef")
    tab.shot("field/phone-patrol")
    page.reload()
    page.wait_for_selector("html[data-gm-ready]", timeout=30000)
    page.wait_for_selector("#gm-patrol-banner:not([hidden])")
    assert tab.js("() => GM.state.patrolRef") == ref
    walk(range(4, 7))
    page.tap("#gm-patrol-stop")
    page.wait_for_function(
        "() => /巡查已结束并上传/.test(document.getElementById('gm-toast').textContent)",
        timeout=30000,
    )
    assert tab.js("() => GM.state.patrolRef") is None
    # The outbox badge follows the queue's own change notice, which may come a moment after
    # the toast: wait for it rather than read it at once (a clean-clone run caught it showing).
    page.wait_for_function("() => document.getElementById('gm-outbox').hidden", timeout=10000)
    rows = site.rows("SELECT id, points, started_at, length_m FROM patrols WHERE ref = :r", r=ref)
    assert len(rows) == 1, rows
    assert rows[0]["points"] == 7 and rows[0]["length_m"] > 100
    assert abs(rows[0]["started_at"].timestamp() - started) < 60
    # The track is private: its walker reads it back.
    staff = site.client(field["user"]["username"])
    feature = staff.get(f"/api/v1/patrols/{rows[0]['id']}").json()
    stamps = feature["properties"]["times"]
    assert stamps == sorted(stamps) and len(stamps) == 7
    assert _real_errors(tab) == [] and _off_machine(tab, site) == []
    _close(tab)


def test_the_field_app_installs_and_its_worker_never_caches_the_api(site: Site) -> None:
    """The manifest names the field page and icons that exist; the worker script carries the
    assets' version, is revalidated on every start and leaves /api/ to the network."""
    import httpx

    m = httpx.get(site.base + "/manifest.webmanifest")
    assert m.status_code == 200 and m.headers["content-type"].startswith(
        "application/manifest+json"
    )
    manifest = m.json()
    assert manifest["start_url"] == "/map?mode=field" and manifest["display"] == "standalone"
    assert manifest["short_name"] == "网格外勤"
    for icon in manifest["icons"]:
        r = httpx.get(site.base + icon["src"])
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n", icon
    sw = httpx.get(site.base + "/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["cache-control"] == "no-cache"
    assert re.search(r"const VERSION = '[0-9a-f]{8,}';", sw.text), sw.text[:600]
    assert "/api/" not in sw.text.split("self.addEventListener('fetch'")[1]
