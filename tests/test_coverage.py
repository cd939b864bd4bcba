"""Coverage check: the demo district is clean; each seeded defect is caught, one each."""

from __future__ import annotations

from pathlib import Path

import pytest

from gis_service.grids.coverage import check_coverage
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
def seeded(databases: Databases, tmp_path_factory: pytest.TempPathFactory):
    _url, eng = fresh(databases, "cov")
    folder: Path = tmp_path_factory.mktemp("cov")
    for prefix, (dx, _) in DEFECTS.items():
        report = imp(eng, write(_broken(prefix, dx), folder / prefix, "gpkg"))
        assert report.ok, report.text()
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


def test_check_api(demo_client) -> None:
    r = demo_client.get("/api/v1/grids/check?root=410103001")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["clean"]
    assert demo_client.get("/api/v1/grids/check?root=NOPE").status_code == 404
    assert demo_client.get("/api/v1/grids/check?rooot=1").status_code == 400
