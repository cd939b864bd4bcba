"""The web map at /map, driven in Debian's headless Chromium through Playwright.

The server, the database and Chromium are shared with the other browser tests (conftest.py,
tests/webkit.py). Screenshots go to test-artifacts/viewer/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from gis_service.viewer import assets
from tests.support.webkit import AMAP_TILES, DESKTOP, PHONE, Site, Tab, _close, _off_machine, _open


def _interior_point(site: Site, grid_id: int) -> tuple[float, float]:
    """A point inside the grid at least ~12 m from any hazard and any facility."""
    row = site.one(
        """
        SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (
          SELECT ST_PointOnSurface(coalesce(nullif(ST_Difference(g.geom, coalesce(
                   (SELECT ST_Union(ST_Buffer(x.geom, 0.00014)) FROM (
                      SELECT geom FROM hazards WHERE geom && g.geom
                      UNION ALL SELECT geom FROM facilities WHERE geom && g.geom) x),
                   'POLYGON EMPTY'::geometry)), 'POLYGON EMPTY'::geometry), g.geom)) AS p
            FROM grids g WHERE g.id = :id) s
        """,
        id=grid_id,
    )
    return float(row["lon"]), float(row["lat"])


def _busiest_micro_grid(site: Site) -> int:
    row = site.one(
        """
        SELECT h.grid_id AS id FROM hazards h JOIN grids g ON g.id = h.grid_id
         WHERE g.level = 'micro_grid' AND h.status NOT IN ('closed', 'rejected', 'voided')
         GROUP BY h.grid_id ORDER BY count(*) DESC, h.grid_id LIMIT 1
        """
    )
    return int(row["id"])


def _center(tab: Tab, selector: str) -> tuple[float, float]:
    box = tab.page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


# ---- without a browser -----------------------------------------------------------------------


def test_page_embeds_no_data_and_no_cdn(site: Site) -> None:
    """The HTML links only our own assets and holds no grid, facility or hazard."""
    r = httpx.get(site.base + "/map")
    assert r.status_code == 200
    html = r.text
    assert len(r.content) < 60_000
    for cdn in ("jsdelivr", "unpkg", "cdnjs", "code.jquery", "bootstrapcdn", "googleapis"):
        assert cdn not in html
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    # Our own assets, and the field app's manifest (served at the root, like its worker).
    own = ("/static/", "data:", "#")
    assert srcs and all(s.startswith(own) or s == "/manifest.webmanifest" for s in srcs), srcs
    code = site.one("SELECT code FROM grids WHERE level = 'micro_grid' ORDER BY id LIMIT 1")
    hazard = site.one("SELECT public_code FROM hazards ORDER BY id LIMIT 1")
    facility = site.one("SELECT code FROM facilities ORDER BY id LIMIT 1")
    for value in (code["code"], hazard["public_code"], facility["code"]):
        assert value not in html
    assert '<html lang="zh-CN">' in html and "网格" in html


def test_assets_are_served_compressed_and_fenced(site: Site) -> None:
    """Vendor files come from web/node_modules, gzip-compressed and cacheable; nothing else
    of node_modules is exposed."""
    js = httpx.get(
        site.base + "/static/vendor/leaflet/dist/leaflet.js", headers={"Accept-Encoding": "gzip"}
    )
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    assert "max-age" in js.headers["cache-control"]
    font = httpx.get(
        site.base + "/static/vendor/@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2"
    )
    assert font.status_code == 200
    for path in ("/static/vendor/leaflet/package.json", "/static/vendor/pbf/index.js",
                 "/static/vendor/leaflet/dist/../package.json"):  # fmt: skip
        assert httpx.get(site.base + path).status_code == 404, path
    outline = httpx.get(site.base + "/map/outline.geojson").json()
    assert outline["type"] in ("Polygon", "MultiPolygon")


def test_missing_assets_say_how_to_install(site: Site, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(assets, "NODE_MODULES", tmp_path)
    r = httpx.get(site.base + "/map")
    assert r.status_code == 503 and "npm ci" in r.text


# ---- in Chromium -----------------------------------------------------------------------------


def test_loads_offline_without_console_errors(browser, site: Site) -> None:
    """Overview and a zoomed-in street view: every request stays on 127.0.0.1, no errors."""
    tab = _open(browser, site, "/map")
    labels = tab.page.locator(".gm-label-street").count()
    assert labels >= 5, "street names are drawn at the overview"
    tab.shot("viewer/desktop-overview")
    grid = _busiest_micro_grid(site)
    lon, lat = _interior_point(site, grid)
    tab.page.goto(f"{site.base}/map#map=18/{lat:.6f}/{lon:.6f}")
    tab.page.reload()
    tab.page.wait_for_selector("html[data-gm-ready]")
    tab.settle()
    tab.page.wait_for_selector("[data-facility-id]", timeout=10000)
    tab.shot("viewer/desktop-street-z18")
    assert any("/tiles/grids_micro_grid/" in u for u in tab.requests)
    assert any("/tiles/facilities/" in u for u in tab.requests)
    assert _off_machine(tab, site) == []
    assert tab.errors == []
    _close(tab)


def test_click_micro_grid_shows_leader_and_open_hazards(browser, site: Site) -> None:
    """A click on a micro-grid opens the panel; leader and open-hazard count equal the API's."""
    grid = _busiest_micro_grid(site)
    lon, lat = _interior_point(site, grid)
    tab = _open(browser, site, f"/map#map=16/{lat:.6f}/{lon:.6f}")
    tab.page.mouse.click(DESKTOP["width"] / 2, DESKTOP["height"] / 2)
    tab.page.wait_for_selector(f'header[data-grid-id="{grid}"] [data-gm=grid-name]')
    tab.settle()
    feature = site.api(f"/api/v1/grids/{grid}")
    summary = site.api(f"/api/v1/grids/{grid}/summary")
    leader = next(p for p in feature["properties"]["people"] if p["is_primary"])
    panel = tab.page.locator("#gm-panel")
    assert panel.locator("[data-gm=grid-name]").inner_text() == feature["properties"]["name"]
    assert panel.locator("[data-gm=leader-name]").inner_text() == leader["name"]
    assert panel.locator("[data-gm=leader-phone]").inner_text().strip() == leader["work_phone"]
    open_count = int(panel.locator("[data-gm=open-count]").inner_text())
    assert open_count == summary["subtree"]["open_hazards"] == feature["properties"]["open_hazards"]
    assert open_count > 0
    assert panel.locator("[data-gm=hazard-list] li").count() == min(open_count, 50)
    chain = panel.locator("[data-gm=chain]").inner_text()
    for level in ("街道", "社区", "网格", "微网格"):
        assert level in chain
    tab.shot("viewer/desktop-grid-panel")
    # A hazard of the list opens with its history.
    panel.locator("[data-gm=hazard-list] a").first.click()
    tab.page.wait_for_selector("header[data-hazard-id]")
    assert "办理经过" in panel.inner_text()
    assert tab.errors == [] and _off_machine(tab, site) == []
    _close(tab)


def test_search_flies_to_the_grid(browser, site: Site) -> None:
    row = site.one(
        "SELECT id, code, name FROM grids WHERE level = 'community' ORDER BY code LIMIT 1"
    )
    tab = _open(browser, site, "/map")
    tab.page.fill("#gm-search", row["code"])
    tab.page.wait_for_selector("#gm-search-results li[data-i]")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_selector(f'header[data-grid-id="{row["id"]}"]')
    tab.page.wait_for_timeout(900)  # the flight
    # The map shows the community in the part the panel leaves free (right of the panel).
    free = tab.js(
        """() => { const m = GM.map, s = m.getSize();
             const a = GM.fromView(m.containerPointToLatLng([420, 0]));
             const b = GM.fromView(m.containerPointToLatLng([s.x, s.y]));
             return [a[0], b[1], b[0], a[1]]; }"""
    )
    inside = site.one(
        "SELECT ST_Covers(ST_MakeEnvelope(:w, :s, :e, :n, 4326), ST_PointOnSurface(geom)) AS ok,"
        " ST_Intersects(ST_MakeEnvelope(:w, :s, :e, :n, 4326), geom) AS seen "
        "FROM grids WHERE id = :id",
        id=row["id"],
        **dict(zip(("w", "s", "e", "n"), free, strict=True)),
    )
    assert inside["ok"] and inside["seen"], "the chosen community is in view beside the panel"
    assert tab.errors == []
    _close(tab)


def test_redraw_during_a_flight_asks_whole_zoom_tiles(browser, site: Site) -> None:
    """A redraw (filter change, write, field refresh) mid-flight asks whole-zoom tiles, not
    /tiles/hazards/17.98/… (Leaflet 1.9.4's redraw() does not round; CI met it once)."""
    grid = _busiest_micro_grid(site)
    lon, lat = _interior_point(site, grid)
    tab = _open(browser, site, f"/map#map=17/{lat:.6f}/{lon:.6f}")
    tab.settle()
    before = len(tab.requests)
    zoom = tab.js(
        """async () => {
             const m = GM.map;
             m.flyTo(m.getCenter(), 14, { duration: 1.2 });
             await new Promise((r) => setTimeout(r, 500));
             const z = m.getZoom();
             for (const l of Object.values(GM.refs.layers)) if (m.hasLayer(l)) l.redraw();
             await new Promise((r) => m.once('moveend', r));
             return z; }"""
    )
    assert 14 < zoom < 17 and zoom != round(zoom), "the redraw happened mid-flight"
    tab.settle()
    asked = [u for u in tab.requests[before:] if "/tiles/" in u]
    assert asked, "the redraw asked for tiles"
    assert [u for u in asked if not re.search(r"/tiles/[^/]+/\d+/\d+/\d+\.pbf", u)] == []
    assert tab.errors == []
    _close(tab)


def test_amap_keeps_features_under_their_gcj02_pixel(browser, site: Site) -> None:
    """Switching to AMap (GCJ-02 tiles) recentres the map so that a facility stays under the
    same pixel, which is its GCJ-02 position; the shifted vector tiles put a hazard at its
    GCJ-02 pixel too (a click there opens it)."""
    fac = site.one(
        """
        SELECT f.id, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat FROM facilities f
         WHERE GeometryType(f.geom) = 'POINT' AND NOT EXISTS (
               SELECT 1 FROM facilities o WHERE o.id <> f.id
                  AND ST_DWithin(o.geom, f.geom, 0.0004))
         ORDER BY f.id LIMIT 1
        """
    )
    tab = _open(browser, site, f"/map#map=19/{fac['lat']:.7f}/{fac['lon']:.7f}", amap=True)
    marker = f'[data-facility-id="{fac["id"]}"]'
    tab.page.wait_for_selector(marker)
    before = _center(tab, marker)
    # Switch with the layer control, as a user does.
    tab.page.hover(".leaflet-control-layers")
    tab.page.get_by_text("高德地图").click()
    tab.page.wait_for_function("() => GM.datum === 'gcj02'")
    tab.settle()
    tab.page.wait_for_selector(marker)
    after = _center(tab, marker)
    gcj = site.api(f"/api/v1/facilities/{fac['id']}", crs="gcj02")["geometry"]["coordinates"]
    expected = tab.js("c => { const p = GM.map.latLngToContainerPoint([c[1], c[0]]); "
                      "return [p.x, p.y]; }", gcj)  # fmt: skip
    # The marker's box centre is its anchor (icon 26 × 26, anchored at 13, 13).
    assert abs(after[0] - expected[0]) <= 1.5 and abs(after[1] - expected[1]) <= 1.5
    assert abs(after[0] - before[0]) <= 2 and abs(after[1] - before[1]) <= 2
    amap = [u for u in tab.requests if AMAP_TILES.match(u)]
    assert amap, "AMap tiles were requested (and answered locally)"
    tab.shot("viewer/desktop-amap-facility")
    assert tab.errors == []
    assert [u for u in _off_machine(tab, site) if not AMAP_TILES.match(u)] == []
    _close(tab)

    # A hazard drawn from the shifted vector tiles sits at its GCJ-02 pixel.
    hz = site.one(
        """
        SELECT h.id, h.public_code, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat FROM hazards h
         WHERE h.status NOT IN ('closed', 'rejected', 'voided') AND NOT EXISTS (
               SELECT 1 FROM hazards o WHERE o.id <> h.id
                  AND o.status NOT IN ('closed', 'rejected', 'voided')
                  AND ST_DWithin(o.geom, h.geom, 0.0005))
         ORDER BY h.id LIMIT 1
        """
    )
    tab = _open(
        browser, site, f"/map?basemap=amap#map=16/{hz['lat']:.7f}/{hz['lon']:.7f}", amap=True
    )
    assert tab.js("GM.datum") == "gcj02"
    gcj = site.api(f"/api/v1/hazards/{hz['id']}", crs="gcj02")["geometry"]["coordinates"]
    x, y = tab.js("c => { const p = GM.map.latLngToContainerPoint([c[1], c[0]]); "
                  "return [p.x, p.y]; }", gcj)  # fmt: skip
    tab.page.mouse.click(x, y)
    tab.page.wait_for_selector(f'header[data-hazard-id="{hz["id"]}"]')
    assert hz["public_code"] in tab.page.locator("#gm-panel").inner_text()
    tab.shot("viewer/desktop-amap-hazard")
    assert tab.errors == []
    _close(tab)


def test_field_report_on_a_phone_lands_in_the_grid_under_the_tap(browser, site: Site) -> None:
    """390 × 844, AMap basemap: report from a tap; the hazard is routed to the grid the user
    tapped (the tap is sent back as GCJ-02 and converted by the server)."""
    grid = site.one(
        """
        SELECT g.id FROM grids g WHERE g.level = 'micro_grid' AND NOT EXISTS (
               SELECT 1 FROM hazards h WHERE h.grid_id = g.id)
         ORDER BY g.id LIMIT 1
        """
    )["id"]
    lon, lat = _interior_point(site, grid)
    tab = _open(
        browser, site, f"/map?basemap=amap#map=16/{lat:.6f}/{lon:.6f}", phone=True, amap=True
    )
    page = tab.page
    # Usable on a phone: the field bar fits, nothing scrolls sideways.
    assert page.is_visible("#gm-fieldbar")
    assert tab.js("document.scrollingElement.scrollWidth") <= PHONE["width"]
    for button in ("#gm-locate", "#gm-report", "#gm-tasks"):
        box = page.locator(button).bounding_box()
        assert box and box["y"] + box["height"] <= PHONE["height"] and box["height"] >= 44
    tab.shot("viewer/phone-start")
    page.tap("#gm-report")
    page.wait_for_selector("#gm-pick .gm-pick-bar")
    # The map is centred on the interior point (in GCJ-02, as drawn): tap the centre.
    page.touchscreen.tap(PHONE["width"] / 2, PHONE["height"] / 2)
    page.wait_for_selector(f'#gm-report-where[data-grid-id="{grid}"]')
    page.select_option("#gm-report-category", "manhole_cover_sunken")
    page.fill("#gm-report-description", "地图测试：井盖下沉约5厘米")
    tab.shot("viewer/phone-report-form")
    page.tap("#gm-report-submit")
    page.wait_for_selector("header[data-hazard-id]")
    hazard_id = int(page.locator("header[data-hazard-id]").get_attribute("data-hazard-id"))
    created = site.api(f"/api/v1/hazards/{hazard_id}")
    assert created["properties"]["grid_id"] == grid
    assert created["properties"]["category"] == "manhole_cover_sunken"
    wlon, wlat = created["geometry"]["coordinates"]
    assert abs(wlon - lon) < 2e-5 and abs(wlat - lat) < 2e-5  # within ~2 m of the tap
    # The toast says what really happened: reported, waiting for the community to accept it
    # (it used to claim "已派往所属网格").
    toast = page.inner_text("#gm-toast")
    assert "已上报" in toast and "待社区受理" in toast and "派往" not in toast
    # The panel is a sheet above the field bar.
    panel = page.locator("#gm-panel").bounding_box()
    assert panel and panel["height"] <= PHONE["height"] * 0.65
    tab.shot("viewer/phone-reported")
    # Locate me puts my position on the map; my tasks ask an anonymous user to log in.
    page.tap("#gm-locate")
    page.wait_for_function("() => GM.state.me !== null")
    page.tap("#gm-tasks")
    page.wait_for_selector("#gm-login-form:not([hidden])")
    tab.shot("viewer/phone-tasks-login")
    assert tab.errors == []
    assert [u for u in _off_machine(tab, site) if not AMAP_TILES.match(u)] == []
    _close(tab)
