"""Coverage check: the demo district is clean; each seeded defect is caught, one each; the
API is for grid maintainers, in their own area."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import make_engine
from gis_service.grids.coverage import check_coverage
from tests.support.authkit import app_settings, bearer_for, make_user
from tests.support.databases import Databases
from tests.support.importkit import D, box, fresh, imp, tree, write

# prefix → (dx, how to break the tree, the one kind expected)
DEFECTS = {
    "CG": (3.0, "gap"),
    "CO": (3.1, "overlap"),
    "CX": (3.2, "outside_parent"),
    "CS": (3.3, "sliver"),
    "CL": (3.4, "no_leader"),
    "CC": (3.5, None),
}


def _broken(prefix: str, dx: float):
    gdf = tree(prefix, dx=dx)
    i = gdf.index[gdf.code == f"{prefix}C0G0M0"][0]
    if prefix == "CG":  # a hole in the micro-grid cover of CGC0G0
        gdf.loc[i, "geometry"] = box(dx, 0, dx + D / 4, D / 2)
    elif prefix == "CO":  # M0 reaches 100 m into its sibling M1
        gdf.loc[i, "geometry"] = box(dx, 0, dx + D / 2 + D / 10, D / 2)
    elif prefix == "CX":  # M0 hangs 100 m below its grid
        gdf.loc[i, "geometry"] = box(dx, -D / 10, dx + D / 2, D / 2)
    elif prefix == "CS":  # a 20 cm wide crack between M0 and M1
        gdf.loc[i, "geometry"] = box(dx, 0, dx + D / 2 - 2e-6, D / 2)
    elif prefix == "CL":
        gdf.loc[i, ["leader_name", "leader_phone"]] = None
    return gdf


@pytest.fixture(scope="module")
def seeded_url(databases: Databases, tmp_path_factory: pytest.TempPathFactory):
    url, eng = fresh(databases, "cov")
    folder: Path = tmp_path_factory.mktemp("cov")
    for prefix, (dx, _) in DEFECTS.items():
        report = imp(eng, write(_broken(prefix, dx), folder / prefix, "gpkg"))
        assert report.ok, report.text()
    eng.dispose()
    return url


@pytest.fixture(scope="module")
def seeded(seeded_url: str):
    eng = make_engine(seeded_url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("prefix", list(DEFECTS))
def test_each_seeded_defect_is_caught_alone(seeded, prefix: str) -> None:
    _, kind = DEFECTS[prefix]
    with seeded.connect() as conn:
        body = check_coverage(conn, f"{prefix}S")
    assert body["grids_checked"] == 15
    expected = {k: 0 for k in body["counts"]}
    if kind:
        expected[kind] = 1
    assert body["counts"] == expected, body["features"]
    if kind:
        (f,) = body["features"]
        p = f["properties"]
        assert p["code"] == f"{prefix}C0G0M0" or p["code"] == f"{prefix}C0G0"
        assert p["area_m2"] > 0 and p["fix"] and f["geometry"]["type"].endswith("Polygon")
        if kind == "overlap":
            assert p["other"] == f"{prefix}C0G0M1"
            assert p["area_m2"] == pytest.approx(0.1 * 0.5 * 913 * 1109, rel=0.05)
        if kind == "sliver":
            assert p["of"] == "gap"


def test_demo_district_is_clean(demo_engine) -> None:
    with demo_engine.connect() as conn:
        body = check_coverage(conn)
    assert body["grids_checked"] > 3000
    assert body["clean"], body["counts"]


def test_check_api_is_for_grid_maintainers_in_their_area(
    seeded_url: str, seeded, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = app_settings(seeded_url, tmp_path_factory.mktemp("cov-app"))
    with seeded.connect() as conn:
        street = conn.execute(text("SELECT id FROM grids WHERE code = 'CGS'")).scalar_one()
    admin = bearer_for(seeded, settings, make_user(seeded, "admin")["id"])
    staff = bearer_for(seeded, settings, make_user(seeded, "street_staff", grid=street)["id"])
    viewer = bearer_for(seeded, settings, make_user(seeded, "viewer", grid=street)["id"])
    url = "/api/v1/grids/check"
    with TestClient(create_app(settings)) as client:
        r = client.get(url, params={"root": "CCS"}, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["type"] == "FeatureCollection" and body["clean"], body["counts"]
        assert body["grids_checked"] == 15
        # Street staff check their own street when they name none, and nothing outside it.
        own = client.get(url, headers=staff).json()
        assert own["root"] == "CGS" and own["counts"]["gap"] == 1, own["counts"]
        assert client.get(url, params={"root": "CGC0"}, headers=staff).status_code == 200
        outside = client.get(url, params={"root": "CCS"}, headers=staff)
        assert outside.status_code == 403 and outside.json()["code"] == "forbidden"
        # Not public: the check costs geometry work on every grid of the subtree.
        assert client.get(url, params={"root": "CCS"}).status_code == 401
        assert client.get(url, params={"root": "CCS"}, headers=viewer).status_code == 403
        assert client.get(url, params={"root": "NOPE"}, headers=admin).status_code == 404
        assert client.get(url, params={"root": "NOPE"}, headers=staff).status_code == 404
        assert client.get(url, params={"rooot": "1"}, headers=admin).status_code == 400
