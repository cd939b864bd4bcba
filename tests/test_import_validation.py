"""Validation before anything is written, dry runs, --fix, --update and all-or-nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shapely

from tests.support.databases import Databases
from tests.support.importkit import box, fresh, imp, kinds, scalar, tree, write


@pytest.fixture(scope="module")
def db(databases: Databases):
    url, eng = fresh(databases, "val")
    yield url, eng
    eng.dispose()


def _counts(engine) -> tuple:
    return (
        scalar(engine, "SELECT count(*) FROM grids"),
        scalar(engine, "SELECT count(*) FROM grid_parts"),
        scalar(engine, "SELECT count(*) FROM people"),
        scalar(engine, "SELECT count(*) FROM grid_assignments"),
        scalar(engine, "SELECT count(*) FROM import_runs"),
    )


def test_report_names_row_field_and_fix_and_writes_nothing(db, tmp_path: Path) -> None:
    _, eng = db
    gdf = tree("V")
    bowtie = shapely.Polygon([(113.6, 34.7), (113.61, 34.71), (113.61, 34.7), (113.6, 34.71)])
    gdf.loc[3, "geometry"] = bowtie  # row 4: self-intersection
    gdf.loc[4, "geometry"] = shapely.LineString([(113.6, 34.7), (113.61, 34.71)])  # row 5
    gdf.loc[5, "geometry"] = shapely.Polygon()  # row 6: empty
    gdf.loc[6, "code"] = gdf.loc[7, "code"]  # rows 7 and 8: duplicate code
    gdf.loc[9, "parent"] = "NOWHERE"  # row 10: unknown parent
    gdf.loc[10, "level"] = "province"  # row 11
    before = _counts(eng)
    report = imp(eng, write(gdf, tmp_path, "gpkg"))
    assert report.status == "refused"
    found = kinds(report)
    for kind in (
        "invalid_geometry",
        "wrong_geometry_type",
        "empty_geometry",
        "duplicate_code",
        "unknown_parent",
        "unknown_level",
    ):
        assert kind in found, (kind, report.text())
    by_kind = {f.kind: f for f in report.findings}
    bad = by_kind["invalid_geometry"]
    assert bad.row == 4 and bad.field == "geometry" and bad.code == gdf.loc[3, "code"]
    assert "Self-intersection" in bad.message and "--fix" in bad.fix
    assert by_kind["unknown_parent"].row == 10 and by_kind["unknown_parent"].field == "parent"
    assert by_kind["unknown_parent"].value == "NOWHERE"
    assert sorted(f.row for f in report.findings if f.kind == "duplicate_code") == [7, 8]
    assert (
        by_kind["unknown_level"].field == "level" and "micro_grid" in by_kind["unknown_level"].fix
    )
    assert _counts(eng) == before


def test_check_is_a_dry_run_and_fix_repairs(db, tmp_path: Path) -> None:
    _, eng = db
    gdf = tree("K", dx=0.05)
    gdf.loc[14, "geometry"] = shapely.Polygon(
        [(113.655, 34.705), (113.66, 34.71), (113.66, 34.705), (113.655, 34.71)]
    )
    path = write(gdf, tmp_path, "geojson")
    before = _counts(eng)
    checked = imp(eng, path, check=True, fix=True)
    assert checked.status == "checked" and checked.dry_run, checked.text()
    assert checked.counts["new"] == 15 and "repaired_geometry" in kinds(checked)
    assert _counts(eng) == before  # nothing written, not even the run record
    refused = imp(eng, path)
    assert refused.status == "refused" and "invalid_geometry" in kinds(refused)
    fixed = imp(eng, path, fix=True)
    assert fixed.status == "imported", fixed.text()
    assert scalar(eng, "SELECT ST_IsValid(geom) FROM grids WHERE code = 'KC1G1M1'") is True


def test_update_changes_only_what_differs(db, tmp_path: Path) -> None:
    _, eng = db
    gdf = tree("U", dx=0.1)
    path = write(gdf, tmp_path / "v1", "gpkg")
    assert imp(eng, path).status == "imported"
    again = imp(eng, path)
    assert again.status == "refused" and "code_exists" in kinds(again)
    stamp = scalar(eng, "SELECT max(updated_at) FROM grids WHERE code LIKE 'U%'")
    same = imp(eng, path, update=True)
    assert same.status == "imported", same.text()
    assert same.counts["redrawn"] == 0 and same.counts["unchanged"] == 15
    assert same.counts["leaders_set"] == 0
    assert scalar(eng, "SELECT max(updated_at) FROM grids WHERE code LIKE 'U%'") == stamp
    gdf.loc[14, "name"] = "改名的微网格"
    gdf.loc[13, "leader_name"] = "新的微网格员"
    path2 = write(gdf, tmp_path / "v2", "gpkg")
    changed = imp(eng, path2, update=True)
    assert changed.status == "imported", changed.text()
    assert changed.counts["redrawn"] == 1 and changed.counts["unchanged"] == 14
    assert changed.counts["changed_name"] == 1 and changed.counts["leaders_set"] == 1
    assert scalar(eng, "SELECT count(*) FROM grids WHERE code LIKE 'U%'") == 16  # one history row
    leader = scalar(
        eng,
        "SELECT p.name FROM grid_assignments a JOIN people p ON p.id = a.person_id "
        "JOIN grids g ON g.id = a.grid_id WHERE g.code = :c AND g.valid_to IS NULL "
        "AND a.is_primary AND a.valid_to IS NULL",
        c=gdf.loc[13, "code"],
    )
    assert leader == "新的微网格员"


def test_people_import(db, tmp_path: Path) -> None:
    _, eng = db
    assert imp(eng, write(tree("P", dx=0.2), tmp_path, "geojson")).status == "imported"
    path = tmp_path / "leaders.csv"
    path.write_text(
        "姓名,电话,网格编码,角色\n王网格,0371-55500009,PC0G0,网格员\n李楼长,0371-555000,PC0G0M0,楼栋长\n",
        encoding="utf-8",
    )
    report = imp(eng, path, layer="people")
    assert report.status == "imported", report.text()
    assert report.counts["new_people"] == 2
    path.write_text("姓名,网格编码\n赵,NOPE\n", encoding="utf-8")
    refused = imp(eng, path, layer="people")
    assert refused.status == "refused" and refused.findings[0].kind == "unknown_grid"
    assert refused.findings[0].row == 2  # the CSV line (the header is line 1)


def test_killed_import_leaves_nothing(db, tmp_path: Path) -> None:
    url, eng = db
    n = 400
    import geopandas as gpd

    squares = [
        box(
            1 + (i % 20) * 0.001,
            (i // 20) * 0.001,
            1.001 + (i % 20) * 0.001,
            0.001 + (i // 20) * 0.001,
        )
        for i in range(n)
    ]
    gdf = gpd.GeoDataFrame(
        {"code": [f"KILL{i}" for i in range(n)], "name": "待杀", "level": "street"},
        geometry=squares,
        crs="EPSG:4326",
    )
    path = write(gdf, tmp_path, "gpkg")
    before = _counts(eng)
    env = {**os.environ, "DATABASE_URL": url, "GIS_IMPORT_PAUSE_BEFORE_COMMIT": "60"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gis_service", "import", "grids", str(path), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait until the import has written everything and sits before its commit.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = scalar(
                eng,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND query LIKE '%import_runs%'",
            )
            if waiting:
                break
            assert proc.poll() is None, "the import ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("the import never reached its commit")
        assert scalar(eng, "SELECT count(*) FROM grids WHERE code LIKE 'KILL%'") == 0
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 30
        while scalar(
            eng,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE query LIKE '%import_runs%' AND pid <> pg_backend_pid()",
        ):
            assert time.monotonic() < deadline, "the killed import's backend lingers"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _counts(eng) == before
    assert scalar(eng, "SELECT count(*) FROM grids WHERE code LIKE 'KILL%'") == 0


def test_component_codes_follow_the_standard_layout(db, tmp_path: Path) -> None:
    """区划(6) + 大类(2) + 小类(2) + serial(6): a 16-digit facility code or component_id must
    carry its type's class (sewage_cover is 0102) after a real division code."""
    _, eng = db
    csv = tmp_path / "covers.csv"
    csv.write_text(
        "code,type,lon,lat,component_id\n"
        "4101030102000001,sewage_cover,113.601,34.701,4101030102000001\n"  # good
        "4101030103000002,sewage_cover,113.602,34.701,\n"  # class of rain_cover
        "MH-3,sewage_cover,113.603,34.701,41010301020000\n"  # component_id too short
        "0001030102000004,sewage_cover,113.604,34.701,\n"  # no such province
        "4101030102000000,sewage_cover,113.605,34.701,\n"  # serial 000000
        "MH-6,sewage_cover,113.606,34.701,4101030102000006\n",  # good component_id
        encoding="utf-8",
    )
    report = imp(eng, csv, layer="facilities", check=True)
    bad = sorted((f.row, f.field) for f in report.findings if f.kind == "bad_component_code")
    # rows as a spreadsheet shows them: the header is row 1
    assert bad == [(3, "code"), (4, "component_id"), (5, "code"), (6, "code")], report.text()
    by_row = {f.row: f for f in report.findings if f.kind == "bad_component_code"}
    assert "class 0103" in by_row[3].message and "0102" in by_row[3].fix
    assert "16 digits" in by_row[4].message
    assert "GB/T 2260" in by_row[5].message
    assert "000000" in by_row[6].message
