"""The workbench (issue 12) beyond its queues: its map opens on the user's own area rather
than the whole territory, and its badges refresh by themselves every 30 s (driven by
Playwright's clock, not by waiting)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.webkit import WIDE, Site, _clean, _close, _open

pytestmark = pytest.mark.usefixtures("browser")


@pytest.fixture(scope="module")
def community(site: Site) -> dict:
    """A community with hazards, a point inside it, and a staff user of it."""
    row = site.one(
        """
        SELECT g.id, g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon,
               ST_Y(ST_PointOnSurface(g.geom)) AS lat
          FROM grids g JOIN hazards h ON h.grid_path[2] = g.id
         WHERE g.level = 'community' GROUP BY g.id ORDER BY count(*) DESC, g.id LIMIT 1
        """
    )
    user = site.create_user(f"area.{uuid.uuid4().hex[:6]}", "community_staff", row["code"], "赵磊")
    return {**row, "user": user}


def _desk_map(tab):
    frame = tab.page.frame(url=re.compile(r"/map\?embed=1"))
    assert frame is not None
    return frame


def test_desk_map_opens_on_my_area(browser, site: Site, community: dict) -> None:
    """A community user's workbench map shows their community, not the whole district; an
    admin (no scope grid) still sees the whole territory."""
    tab = _open(browser, site, "/desk", user=community["user"], viewport=WIDE, ready="body")
    tab.page.wait_for_selector("body[data-desk-ready]")
    frame = _desk_map(tab)
    frame.wait_for_selector(f"body[data-my-area='{community['id']}']", timeout=20000)
    w, s, e, n = frame.evaluate(
        """() => { const b = GM.map.getBounds();
             const sw = GM.fromView(b.getSouthWest()), ne = GM.fromView(b.getNorthEast());
             return [sw[0], sw[1], ne[0], ne[1]]; }"""
    )
    seen = site.one(
        "SELECT ST_Intersects(ST_MakeEnvelope(:w, :s, :e, :n, 4326), g.geom) AS shown,"
        " ST_Area(ST_MakeEnvelope(:w, :s, :e, :n, 4326))"
        "   < ST_Area((SELECT ST_Envelope(ST_Union(geom)) FROM grids WHERE level = 'street'"
        "              AND valid_to IS NULL)) / 4 AS closer"
        " FROM grids g WHERE g.id = :id",
        w=w,
        s=s,
        e=e,
        n=n,
        id=community["id"],
    )
    assert seen["shown"] and seen["closer"], "the map shows the community, zoomed to it"
    assert not frame.locator("#gm-panel header[data-grid-id]").count(), "no panel opened"
    _clean(tab, site)
    _close(tab)

    admin = site.create_user(f"area.{uuid.uuid4().hex[:6]}", "admin", None, "区管理员")
    tab = _open(browser, site, "/desk", user=admin, viewport=WIDE, ready="body")
    tab.page.wait_for_selector("body[data-desk-ready]")
    frame = _desk_map(tab)
    frame.wait_for_selector("html[data-gm-ready]")
    tab.page.wait_for_timeout(500)
    assert frame.evaluate("document.body.getAttribute('data-my-area')") is None
    _close(tab)


def test_badges_refresh_every_30_seconds(browser, site: Site, community: dict) -> None:
    """A report made elsewhere shows in the 待受理 badge within 30 s, without a reload."""
    tab = _open(browser, site, "/desk", user=community["user"], viewport=WIDE, ready="body")
    page = tab.page
    page.clock.install()
    page.reload()
    page.wait_for_selector("body[data-desk-ready]")
    page.wait_for_function(
        "() => document.querySelector('[data-count=to_accept]').textContent !== '…'"
    )
    before = int(page.locator("[data-count=to_accept]").inner_text())
    r = site.client(community["user"]).post(
        "/api/v1/hazards",
        json={
            "category": "clutter",
            "lon": community["lon"],
            "lat": community["lat"],
            "description": "楼道堆放杂物，影响通行",
        },
    )
    assert r.status_code == 201, r.text
    page.clock.run_for(20000)
    page.wait_for_timeout(300)
    assert int(page.locator("[data-count=to_accept]").inner_text()) == before, "not yet"
    page.clock.run_for(11000)
    page.wait_for_function(
        f"() => +document.querySelector('[data-count=to_accept]').textContent === {before + 1}",
        timeout=10000,
    )
    _clean(tab, site)
    _close(tab)
