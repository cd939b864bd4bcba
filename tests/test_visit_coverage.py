"""七必访 on the staff screens (issue 14): the dashboard's visit coverage per area for the month,
and the map's 走访逾期 tint of micro-grids by overdue visits, both equal to the care API and
both for staff only (counts, never names)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.webkit import WIDE, Site, _clean, _close, _open

pytestmark = pytest.mark.usefixtures("browser")

LAYER = "走访逾期（七必访）"


@pytest.fixture(scope="module")
def community(site: Site) -> dict:
    """The community with the most people under care, and a staff user of it."""
    row = site.one(
        """
        SELECT c.id, c.code, c.name FROM care_people p
          JOIN households h ON h.id = p.household_id JOIN grids g ON g.id = h.grid_id
          JOIN grids c ON c.id = g.path[2]
         WHERE p.active GROUP BY c.id, c.code, c.name ORDER BY count(*) DESC, c.id LIMIT 1
        """
    )
    user = site.create_user(f"visit.{uuid.uuid4().hex[:6]}", "community_staff", row["code"], "李娜")
    return {**row, "user": user}


def test_dashboard_shows_visit_coverage_per_grid(browser, site: Site, community: dict) -> None:
    """The 七必访 panel lists the community's grids with people under care, visited on time,
    the rate and overdue now, equal to GET /care/coverage for the month; overdue is marked."""
    tab = _open(browser, site, "/dashboard", user=community["user"], viewport=WIDE, ready="body")
    page = tab.page
    page.wait_for_selector("body[data-visits-loaded]", timeout=30000)
    month = page.locator("#dash-visits-month").inner_text()
    api = site.client(community["user"]).get("/api/v1/care/coverage").json()
    assert month == f"{api['month'][:4]}年{int(api['month'][5:])}月"
    assert api["total"]["people"] > 0
    shown = {
        int(r.get_attribute("data-coverage")): r for r in page.locator("tr[data-coverage]").all()
    }
    expected = {g["id"]: g for g in api["grids"] if g["people"]}
    assert set(shown) == set(expected)
    for gid, g in expected.items():
        cells = shown[gid]
        assert cells.locator("td").first.inner_text() == g["name"]
        assert cells.locator("td[data-k=people]").inner_text() == str(g["people"])
        assert cells.locator("td[data-k=on_time]").inner_text() == str(g["on_time"])
        assert cells.locator("td[data-k=overdue]").inner_text() == str(g["overdue"])
        rate = "—" if g["on_time_pct"] is None else f"{g['on_time_pct']:.1f}%"
        assert cells.locator("td[data-k=on_time_pct]").inner_text() == rate
        warned = "dash-warn" in (cells.locator("td[data-k=overdue]").get_attribute("class") or "")
        assert warned == (g["overdue"] > 0)
    total = page.locator("tr[data-coverage-total]")
    assert total.locator("td[data-k=people]").inner_text() == str(api["total"]["people"])
    text = page.locator("#dash-visits").inner_text()
    names = site.rows(
        "SELECT p.name FROM care_people p JOIN households h ON h.id = p.household_id"
        " JOIN grids g ON g.id = h.grid_id WHERE g.path[2] = :c",
        c=community["id"],
    )
    assert not [r["name"] for r in names if r["name"] in text], "counts only, no names"
    tab.shot("workbench/dashboard-visits")
    _clean(tab, site)
    _close(tab)


def test_map_tints_micro_grids_by_overdue_visits(browser, site: Site, community: dict) -> None:
    """Staff get the 走访逾期 layer: one shape per micro-grid with people under care, its counts
    in the popup and a way into the grid's panel; anonymous visitors get no such layer."""
    anon = _open(browser, site, "/map")
    anon.page.hover(".leaflet-control-layers")
    labels = anon.page.locator(".leaflet-control-layers label").all_inner_texts()
    assert not any(LAYER in x for x in labels), labels
    assert httpx.get(site.base + "/api/v1/care/overdue-map").status_code in (401, 403)
    _clean(anon, site)
    _close(anon)

    tab = _open(browser, site, "/map", user=community["user"], viewport=WIDE)
    page = tab.page
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers label", has_text=LAYER).click()
    page.wait_for_selector("body[data-visits-drawn]")
    api = site.client(community["user"]).get("/api/v1/care/overdue-map").json()
    assert api["features"], "the community has micro-grids with people under care"
    assert page.get_attribute("body", "data-visits-drawn") == str(len(api["features"]))
    page.mouse.move(5, 400)  # let the layer control fold away
    # The most overdue micro-grid comes first: click inside it (after flying there).
    first = api["features"][0]
    inside = site.one(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM"
        " (SELECT ST_PointOnSurface(geom) AS p FROM grids WHERE id = :id) s",
        id=first["id"],
    )
    tab.js(f"GM.map.setView(GM.toView({inside['lon']}, {inside['lat']}), 17, {{animate: false}})")
    tab.settle()
    fill = tab.js(
        f"""(() => {{ let c = null; GM.map.eachLayer((l) => {{
              if (l.feature && l.feature.id === {first["id"]} && l.options.pane === 'gm-visits')
                c = l.options.fillColor; }}); return c; }})()"""
    )
    p = first["properties"]
    assert fill == ("#d32f2f" if p["overdue"] >= 3 else "#f9a825" if p["overdue"] else "#43a047")
    # A point of the shape not under a marker (hazard bubbles and icons lie above the tint).
    points = site.rows(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT (ST_Dump(ST_GeneratePoints("
        "ST_Buffer(geom, -0.00005), 30, 1))).geom AS p FROM grids WHERE id = :id) s",
        id=first["id"],
    )
    pt = tab.js(
        """(pts) => { const box = GM.map.getContainer().getBoundingClientRect();
             for (const [lon, lat] of pts) {
               const q = GM.map.latLngToContainerPoint(GM.toView(lon, lat));
               const x = box.left + q.x, y = box.top + q.y;
               const e = document.elementFromPoint(x, y);
               if (e && e.closest('.leaflet-gm-visits-pane')) return [x, y]; }
             return null; }""",
        [[r["lon"], r["lat"]] for r in points],
    )
    assert pt, "some point of the micro-grid shows its tint"
    page.mouse.click(pt[0], pt[1])
    popup = page.wait_for_selector(f".gm-visit-popup[data-visit-grid='{first['id']}']")
    text = popup.inner_text()
    assert p["name"] in text and f"逾期未访 {p['overdue']} 人" in text
    assert f"关爱对象 {p['people']} 人" in text
    tab.shot("workbench/map-visits")
    popup.query_selector("[data-gm=visit-grid-open]").click()
    page.wait_for_selector(f'header[data-grid-id="{first["id"]}"]')
    _clean(tab, site)
    _close(tab)
