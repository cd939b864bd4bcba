"""The defects of issue 12, found by trying the product as a new user would; each test failed
before its fix. (The closed-hazard panel, the report toast, the overdue CSV and the task
that opened under the tasks sheet are checked in test_workbench.py, test_viewer.py and
test_hazard_workflow.py.)"""

from __future__ import annotations

import colorsys
import json
import re
from pathlib import Path

import httpx

from gis_service.config import PROJECT_ROOT
from tests.support.webkit import PHONE, Site, _close, _off_machine, _open


def _hue(color: str) -> tuple[float, float, float]:
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    return h * 360, s, v


def test_hazards_draw_above_facility_icons_and_stay_clickable(browser, site: Site) -> None:
    """At zoom 18 a hazard snapped to a manhole lies under the manhole's icon; a click on the
    hazard opens the hazard (it used to open the facility's popup). Severity colours are
    their own scale: 紧急 is red, and no open hazard is green or purple."""
    hz = site.one(
        """
        SELECT h.id, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, h.facility_id FROM hazards h
          JOIN facilities f ON f.id = h.facility_id
         WHERE h.status NOT IN ('closed', 'rejected', 'voided')
           AND ST_DWithin(h.geom::geography, f.geom::geography, 3)
           AND NOT EXISTS (SELECT 1 FROM hazards o WHERE o.id <> h.id
                  AND o.status NOT IN ('closed', 'rejected', 'voided')
                  AND ST_DWithin(o.geom, h.geom, 0.0003))
         ORDER BY h.id LIMIT 1
        """
    )
    tab = _open(browser, site, f"/map#map=18/{hz['lat']:.7f}/{hz['lon']:.7f}")
    page = tab.page
    page.wait_for_selector(f'[data-facility-id="{hz["facility_id"]}"]')
    x, y = tab.js(
        "c => { const p = GM.map.latLngToContainerPoint([c[1], c[0]]); return [p.x, p.y]; }",
        [hz["lon"], hz["lat"]],
    )
    # The icon really is there, under the hazard's pixel.
    under = tab.js(
        "([x, y]) => document.elementsFromPoint(x, y).some(e => e.closest('[data-facility-id]'))",
        [x, y],
    )
    assert under
    page.mouse.click(x, y)
    page.wait_for_selector(f'header[data-hazard-id="{hz["id"]}"]')
    assert page.locator(".leaflet-popup").count() == 0
    tab.shot("defects/hazard-above-facility")
    sev = tab.js("GM.cfg.severities")
    h, s, _ = _hue(sev["critical"]["color"])
    assert (h < 12 or h > 348) and s > 0.8, sev["critical"]
    for k, item in sev.items():
        h, s, _ = _hue(item["color"])
        assert not (75 <= h <= 170 and s > 0.3), f"{k} is green"
        assert not (250 <= h <= 330 and s > 0.3), f"{k} is purple"
    assert tab.errors == [] and _off_machine(tab, site) == []
    _close(tab)


def test_hash_links_without_a_view_zoom_and_follow_changes(browser, site: Site) -> None:
    """#hazard=ID and #grid=ID without map= open the panel and zoom to it; a new hash in the
    same tab is followed (it did nothing)."""
    hz = site.one(
        "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM hazards "
        "WHERE status <> 'closed' ORDER BY id LIMIT 1"
    )
    tab = _open(browser, site, f"/map#hazard={hz['id']}")
    page = tab.page
    page.wait_for_selector(f'header[data-hazard-id="{hz["id"]}"]')
    page.wait_for_function("() => GM.map.getZoom() >= 17")
    inside = tab.js("c => GM.map.getBounds().contains([c[1], c[0]])", [hz["lon"], hz["lat"]])
    assert inside
    grid = site.one(
        "SELECT id, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat "
        "FROM grids WHERE level = 'community' ORDER BY code DESC LIMIT 1"
    )
    tab.js(f"location.hash = '#grid={grid['id']}'")
    page.wait_for_selector(f'header[data-grid-id="{grid["id"]}"]')
    page.wait_for_timeout(900)  # the flight
    assert tab.js("c => GM.map.getBounds().contains([c[1], c[0]])", [grid["lon"], grid["lat"]])
    assert tab.errors == [] and _off_machine(tab, site) == []
    _close(tab)


def test_docs_work_offline_and_the_front_door_opens_the_map(browser, site: Site) -> None:
    """/docs renders with no request off the machine (it loaded Swagger UI from a CDN, and
    so did /redoc, which now leads there); / opens the map; HEAD on / and /map answers (was
    405)."""
    r = httpx.get(site.base + "/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/map"
    for path in ("/", "/map", "/desk", "/dashboard", "/ledger"):
        assert httpx.head(site.base + path).status_code in (200, 307), path
    # ReDoc's bundle fetches its logo from a CDN: /redoc leads to the local Swagger UI.
    r = httpx.get(site.base + "/redoc", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/docs"
    for path, ready in (("/docs", ".swagger-ui .opblock"),):
        html = httpx.get(site.base + path).text
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
        tab = _open(browser, site, path, ready=ready)
        assert _off_machine(tab, site) == [], _off_machine(tab, site)
        assert [e for e in tab.errors if "favicon" not in e] == []
        tab.shot(f"defects/{path.strip('/')}")
        _close(tab)


def test_the_ui_speaks_chinese(browser, site: Site) -> None:
    """No English inside the Chinese UI: the layer switcher and the panel's headings carried
    English subtitles ("负责人 Responsible"); TileJSON titles said "网格网格"; every error
    code the API can answer with has its Chinese text in lib/i18n.js."""
    tab = _open(browser, site, "/map")
    page = tab.page
    page.hover(".leaflet-control-layers")
    page.wait_for_selector(".leaflet-control-layers-expanded")
    names = page.locator(".leaflet-control-layers label").all_inner_texts()
    english = [n for n in names if re.search(r"[A-Za-z]{3,}", n) and "OpenStreetMap" not in n]
    assert english == [], english
    grid = site.one("SELECT id FROM grids WHERE level = 'grid' ORDER BY id LIMIT 1")["id"]
    tab.js(f"GM.showGrid({grid})")
    page.wait_for_selector(f'header[data-grid-id="{grid}"] [data-gm=grid-name]')
    headings = " ".join(page.locator("#gm-panel h3").all_inner_texts())
    assert not re.search(r"[A-Za-z]{3,}", headings), headings
    _close(tab)
    for layer in ("grids_street", "grids_community", "grids_grid", "grids_micro_grid"):
        tj = httpx.get(f"{site.base}/tiles/{layer}.json").json()
        assert "网格网格" not in json.dumps(tj, ensure_ascii=False), tj.get("name")
    # Every error code of the service has a Chinese text.
    i18n = (PROJECT_ROOT / "web/src/lib/i18n.js").read_text(encoding="utf-8")
    table = set(
        re.findall(r"^\s+([a-z_]+):", i18n.split("export const ERROR_TEXT")[1].split("};")[0], re.M)
    )
    codes: set[str] = set()
    for path in Path(PROJECT_ROOT / "gis_service").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'\bcode\s*=\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'error_body\(\s*"([a-z_]+)"', text))
    codes -= {"error"}  # the base class's placeholder
    assert codes, "found the codes"
    assert codes <= table, f"codes without Chinese text: {sorted(codes - table)}"


def test_phone_layout(browser, site: Site) -> None:
    """390 × 844: every checkbox sits on its label's line (filters and layer switcher); the
    layer switcher folds away when the user types a search (it covered the results)."""
    tab = _open(browser, site, "/map", phone=True)
    page = tab.page
    page.tap("#gm-filter-btn")
    page.wait_for_selector("#gm-filters:not([hidden])")
    off = tab.js(
        """() => [...document.querySelectorAll('#gm-filters label')].map(l => {
             const i = l.querySelector('input').getBoundingClientRect();
             const t = l.querySelector('span').getBoundingClientRect();
             return Math.abs((i.top + i.bottom) / 2 - (t.top + t.bottom) / 2) > 6
                    || t.left < i.right - 1 || t.left - i.right > 16 ? l.textContent : null;
           }).filter(Boolean)"""
    )
    assert off == [], off
    tab.shot("defects/phone-filters")
    page.tap("#gm-filter-btn")
    page.tap(".leaflet-control-layers-toggle")
    page.wait_for_selector(".leaflet-control-layers-expanded")
    off = tab.js(
        """() => [...document.querySelectorAll('.leaflet-control-layers label')].map(l => {
             const i = l.querySelector('input').getBoundingClientRect();
             const r = document.createRange();
             r.selectNodeContents(l.querySelector('span span, span'));
             const t = [...r.getClientRects()].pop();
             const dy = Math.abs((i.top + i.bottom) / 2 - (t.top + t.bottom) / 2);
             return dy > 6 ? l.textContent : null;
           }).filter(Boolean)"""
    )
    assert off == [], off
    tab.shot("defects/phone-layers")
    page.tap("#gm-search")
    page.fill("#gm-search", "第1网格")
    page.wait_for_selector("#gm-search-results li[data-i]")
    assert page.locator(".leaflet-control-layers-expanded").count() == 0
    assert tab.js("document.scrollingElement.scrollWidth") <= PHONE["width"]
    tab.shot("defects/phone-search")
    assert tab.errors == [] and _off_machine(tab, site) == []
    _close(tab)


def test_locate_before_any_grid_says_so(site: Site) -> None:
    """locate?at= a date before any grid said "outside the governed territory … nearest
    0.0 m away"; it says that no grid existed there then."""
    g = site.one(
        "SELECT ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat,"
        " min(valid_from) OVER () AS first FROM grids WHERE level = 'micro_grid' LIMIT 1"
    )
    r = httpx.get(
        f"{site.base}/api/v1/locate", params={"lon": g["lon"], "lat": g["lat"], "at": "2000-01-01"}
    )
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "no_grid_at_date"
    assert "No grid covered this point on 2000-01-01" in body["message"]
    assert "0.0 m" not in body["message"] and "outside" not in body["message"]
    ok = httpx.get(f"{site.base}/api/v1/locate", params={"lon": g["lon"], "lat": g["lat"]})
    assert ok.status_code == 200
