"""Redrawn boundaries: new versions end the old rows, locate answers as of a date, hazards
keep their snapshot, the changes feed lists what changed, and reassignment is reviewable."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from tests.support.authkit import app_settings, bearer_for, make_user
from tests.support.databases import Databases
from tests.support.importkit import X0, Y0, D, box, fresh, imp, scalar, tree, write


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory):
    url, eng = fresh(databases, "redraw")
    folder = tmp_path_factory.mktemp("redraw")
    v1 = tree("R")
    assert imp(eng, write(v1, folder / "v1", "gpkg"), valid_from=_t("2025-01-01")).ok
    # A hazard near the shared edge of RC0G0M0 and RC0G0M1, reported under version 1.
    x, y = X0 + D / 2 - D / 20, Y0 + D / 4
    with eng.begin() as conn:
        cat = conn.execute(text("SELECT code FROM hazard_categories LIMIT 1")).scalar()
        conn.execute(
            text(
                "INSERT INTO hazards (public_code, category_code, description, source, geom,"
                " reported_at) VALUES ('RH-1', :cat, '井盖下沉', 'patrol',"
                " ST_SetSRID(ST_MakePoint(:x, :y), 4326), '2025-06-01');"
                "UPDATE hazards SET grid_id = gis_finest_grid(geom, reported_at)"
                " WHERE public_code = 'RH-1';"
                "UPDATE hazards h SET grid_path = g.path, grid_chain = gis_grid_chain(g.id)"
                " FROM grids g WHERE g.id = h.grid_id AND h.public_code = 'RH-1'"
            ),
            {"cat": cat, "x": x, "y": y},
        )
    # Version 2: the edge between the two micro-grids moves west past the hazard.
    v2 = v1.copy()
    mid = D / 2 - D / 10
    i0 = v2.index[v2.code == "RC0G0M0"][0]
    i1 = v2.index[v2.code == "RC0G0M1"][0]
    v2.loc[i0, "geometry"] = box(0, 0, mid, D / 2)
    v2.loc[i1, "geometry"] = box(mid, 0, D, D / 2)
    report = imp(eng, write(v2, folder / "v2", "gpkg"), update=True, valid_from=_t("2026-01-01"))
    assert report.ok, report.text()
    settings = app_settings(url, folder / "data")
    admin = make_user(eng, "admin")
    with TestClient(create_app(settings)) as client:
        yield {
            "eng": eng,
            "client": client,
            "auth": bearer_for(eng, settings, admin["id"]),
            "report": report,
            "x": x,
            "y": y,
        }
    eng.dispose()


def _t(day: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_redraw_ends_old_versions(world) -> None:
    eng, report = world["eng"], world["report"]
    assert report.counts["redrawn"] == 2 and report.counts["changed_geometry"] == 2
    assert report.counts["unchanged"] == 13
    rows = scalar(eng, "SELECT count(*) FROM grids WHERE code = 'RC0G0M0'")
    ended = scalar(
        eng,
        "SELECT valid_to::date::text FROM grids WHERE code = 'RC0G0M0' AND valid_to IS NOT NULL",
    )
    assert rows == 2 and ended == "2026-01-01"
    # People carried over to the new version; the old assignment ended with the old row.
    assert (
        scalar(
            eng,
            "SELECT count(*) FROM grid_assignments a JOIN grids g ON g.id = a.grid_id "
            "WHERE g.code = 'RC0G0M0' AND g.valid_to IS NULL AND a.is_primary"
            " AND a.valid_to IS NULL",
        )
        == 1
    )


def test_locate_answers_as_of_a_date(world) -> None:
    c, x, y = world["client"], world["x"], world["y"]
    old = c.get(f"/api/v1/locate?lon={x}&lat={y}&at=2025-06-01").json()
    new = c.get(f"/api/v1/locate?lon={x}&lat={y}").json()
    assert old["chain"][-1]["code"] == "RC0G0M0"
    assert new["chain"][-1]["code"] == "RC0G0M1"


def test_hazard_keeps_its_snapshot_and_reassign_is_reviewable(world) -> None:
    eng, c, auth = world["eng"], world["client"], world["auth"]
    chain = scalar(eng, "SELECT grid_chain->-1->>'code' FROM hazards WHERE public_code = 'RH-1'")
    assert chain == "RC0G0M0"  # the import did not rewrite history
    assert c.get("/api/v1/grids/reassign").status_code == 401
    plan = c.get("/api/v1/grids/reassign?root=RS", headers=auth).json()
    assert plan["dry_run"] and plan["counts"]["move"] == 1
    (h,) = [h for h in plan["hazards"] if h["kind"] == "move"]
    assert (h["public_code"], h["old_code"], h["new_code"]) == ("RH-1", "RC0G0M0", "RC0G0M1")
    assert scalar(eng, "SELECT grid_chain->-1->>'code' FROM hazards WHERE public_code='RH-1'") == (
        "RC0G0M0"
    )  # the dry run moved nothing
    done = c.post("/api/v1/grids/reassign?root=RS", headers=auth).json()
    assert done["applied"] >= 1
    assert scalar(eng, "SELECT grid_chain->-1->>'code' FROM hazards WHERE public_code='RH-1'") == (
        "RC0G0M1"
    )
    event = scalar(
        eng,
        "SELECT e.data->'reassign'->'from'->-1->>'code' FROM hazard_events e "
        "JOIN hazards h ON h.id = e.hazard_id WHERE h.public_code = 'RH-1' AND e.action = 'update'",
    )
    assert event == "RC0G0M0"  # the old chain is kept in the event
    again = c.get("/api/v1/grids/reassign?root=RS", headers=auth).json()
    assert again["counts"].get("move", 0) == 0


def test_changes_feed(world) -> None:
    c = world["client"]
    body = c.get("/api/v1/grids/changes?since=2025-12-01&geometry=true").json()
    assert body["counts"] == {"changed": 2}
    item = body["changes"][0]
    assert item["fields"] == ["geometry"] and item["old"] and item["new"]
    assert item["geometry"]["type"] == "MultiPolygon"
    full = c.get("/api/v1/grids/changes?since=2024-01-01&root=RC0").json()
    assert full["counts"]["added"] == 7 and full["counts"]["changed"] == 2
    bad = c.get("/api/v1/grids/changes?since=yesterday")
    assert bad.status_code == 422


def test_retire_missing(world, tmp_path: Path) -> None:
    eng = world["eng"]
    v3 = tree("R")
    v3 = v3[v3.code != "RC1G1M1"].copy()
    i = v3.index[v3.code == "RC1G1M0"][0]
    v3.loc[i, "geometry"] = box(D, D / 2, 2 * D, D)  # takes over its sibling's area
    report = imp(eng, write(v3, tmp_path, "gpkg"), update=True, retire_missing=True)
    assert report.ok, report.text()
    assert report.counts["retired"] == 1
    assert (
        scalar(eng, "SELECT count(*) FROM grids WHERE code = 'RC1G1M1' AND valid_to IS NULL") == 0
    )
