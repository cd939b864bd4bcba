"""Exports in every format and coordinate system import back into the same rows; the upload
and download routes need a staff login."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.interchange.export import ExportCrs, ExportFormat, ExportLayer, export_layer
from tests.support.authkit import app_settings, bearer_for, make_user
from tests.support.databases import Databases
from tests.support.importkit import fresh, imp, tree, write

GRID_ROWS = """
    SELECT g.code, g.name, g.level, p.code, g.attributes,
           ST_AsText(ST_Normalize(ST_SnapToGrid(g.geom, 1e-7)))
      FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
     WHERE g.valid_to IS NULL ORDER BY g.code
"""
FACILITY_ROWS = """
    SELECT code, type_code, name, status, ST_AsText(ST_Normalize(ST_SnapToGrid(geom, 1e-7)))
      FROM facilities ORDER BY code
"""


@pytest.fixture(scope="module")
def source(databases: Databases, tmp_path_factory: pytest.TempPathFactory):
    url, eng = fresh(databases, "exp")
    folder = tmp_path_factory.mktemp("exp")
    assert imp(eng, write(tree("E"), folder, "gpkg")).ok
    facilities = folder / "f.csv"
    facilities.write_text(
        "code,type,name,wkt\n"
        "EF-1,sewage_cover,井1,POINT(113.601 34.701)\n"
        'EF-2,sewer_pipe,管1,"LINESTRING(113.602 34.702, 113.603 34.703)"\n',
        encoding="utf-8",
    )
    assert imp(eng, facilities, layer="facilities").ok
    yield url, eng, folder
    eng.dispose()


def _rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_round_trip(source, databases: Databases, tmp_path: Path, fmt: ExportFormat) -> None:
    _, eng, _ = source
    crs = ExportCrs.gcj02 if fmt is ExportFormat.geojson else ExportCrs.cgcs2000
    with eng.connect() as conn:
        grids = export_layer(conn, ExportLayer.grids, fmt, crs=crs, folder=tmp_path / "g")
        facs = export_layer(conn, ExportLayer.facilities, fmt, folder=tmp_path / "f")
        hz = export_layer(conn, ExportLayer.hazards, fmt, root="ES", folder=tmp_path / "h")
    assert grids.count == 15 and facs.count == 2 and hz.count == 0
    if fmt is ExportFormat.shp:
        import zipfile

        names = zipfile.ZipFile(grids.path).namelist()
        assert "grids.cpg" in names
        assert {"facilities_points.shp", "facilities_lines.shp"} <= set(
            zipfile.ZipFile(facs.path).namelist()
        )
    _url, target = fresh(databases, "rt")
    try:
        back = imp(target, grids.path, crs="gcj02" if crs is ExportCrs.gcj02 else None)
        assert back.status == "imported", back.text()
        assert imp(target, facs.path, layer="facilities").ok
        assert _rows(target, GRID_ROWS) == _rows(eng, GRID_ROWS)
        assert _rows(target, FACILITY_ROWS) == _rows(eng, FACILITY_ROWS)
        # and importing the same export again with --update changes nothing
        again = imp(
            target, grids.path, update=True, crs="gcj02" if crs is ExportCrs.gcj02 else None
        )
        assert again.counts["redrawn"] == 0 and again.counts["leaders_set"] == 0
    finally:
        target.dispose()


def test_subtree_export(source, tmp_path: Path) -> None:
    _, eng, _ = source
    with eng.connect() as conn:
        sub = export_layer(conn, ExportLayer.grids, ExportFormat.csv, root="EC1", folder=tmp_path)
        assert sub.count == 7
        with pytest.raises(LookupError):
            export_layer(conn, ExportLayer.grids, ExportFormat.csv, root="NOPE", folder=tmp_path)


def test_upload_and_download_need_staff(source, tmp_path: Path) -> None:
    url, eng, _folder = source
    settings = app_settings(url, tmp_path / "data")
    admin = make_user(eng, "admin")
    with eng.connect() as conn:
        grid = conn.execute(text("SELECT id FROM grids WHERE code = 'EC0'")).scalar()
    viewer = make_user(eng, "viewer", grid=grid)
    auth = bearer_for(eng, settings, admin["id"])
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/v1/exports/grids?format=gpkg").status_code == 401
        assert (
            c.get(
                "/api/v1/exports/grids", headers=bearer_for(eng, settings, viewer["id"])
            ).status_code
            == 403
        )
        r = c.get("/api/v1/exports/grids?format=shp&root=EC0&crs=wgs84", headers=auth)
        assert r.status_code == 200 and r.headers["x-feature-count"] == "7"
        assert r.content[:2] == b"PK"
        geojson = write(tree("API", dx=0.5), tmp_path, "geojson")
        files = {"file": ("grids.geojson", geojson.read_bytes(), "application/geo+json")}
        assert c.post("/api/v1/imports", files=files, data={"layer": "grids"}).status_code == 401
        dry = c.post(
            "/api/v1/imports", files=files, data={"layer": "grids", "check": "true"}, headers=auth
        )
        assert dry.status_code == 200 and dry.json()["status"] == "checked", dry.text
        done = c.post("/api/v1/imports", files=files, data={"layer": "grids"}, headers=auth)
        assert done.status_code == 200 and done.json()["counts"]["new"] == 15
        again = c.post("/api/v1/imports", files=files, data={"layer": "grids"}, headers=auth)
        assert again.status_code == 422
        body = again.json()
        assert body["code"] == "import_refused"
        assert body["details"]["findings"][0]["kind"] == "code_exists"


def test_exports_carry_standard_codes(source, tmp_path: Path) -> None:
    """Facilities carry their type's GB/T 30428.2 class; the class columns do not come back
    as attributes when the file is imported again."""
    import csv

    _, eng, _ = source
    with eng.connect() as conn:
        out = export_layer(conn, ExportLayer.facilities, ExportFormat.csv, folder=tmp_path)
    with open(out.path, encoding="utf-8-sig") as fh:
        rows = {r["code"]: r for r in csv.DictReader(fh)}
    assert rows["EF-1"]["class_code"] == "0102" and rows["EF-1"]["class_major"] == "公用设施"
    assert rows["EF-1"]["class_source"] == "inferred"
    assert rows["EF-2"]["class_code"] == "9302" and rows["EF-2"]["class_source"] == "local"
    assert _rows(eng, "SELECT count(*) FROM facilities WHERE attributes ? 'class_code'") == [(0,)]
