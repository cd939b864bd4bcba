"""Every input format and coordinate system lands the same grids, at the right place."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis_service.geo.datums import geometry_from_wgs84
from tests.support.databases import Databases
from tests.support.importkit import fresh, imp, kinds, scalar, tree, write


@pytest.fixture(scope="module")
def db(databases: Databases):
    _url, eng = fresh(databases, "fmt")
    yield eng
    eng.dispose()


def _bounds(engine, code: str) -> tuple[float, ...]:
    return tuple(
        scalar(
            engine, f"SELECT ST_{f}(geom) FROM grids WHERE code = :c AND valid_to IS NULL", c=code
        )
        for f in ("XMin", "YMin", "XMax", "YMax")
    )


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "kml", "csv", "xlsx"])
def test_each_format_imports_the_tree(db, tmp_path: Path, fmt: str) -> None:
    prefix = f"F{fmt[:3].upper()}"
    gdf = tree(prefix, dx=0.1 * ["geojson", "gpkg", "shp", "kml", "csv", "xlsx"].index(fmt))
    report = imp(db, write(gdf, tmp_path, fmt))
    assert report.status == "imported", report.text()
    assert report.counts["new"] == 15 and report.counts["leaders_set"] == 15
    rows = scalar(db, "SELECT count(*) FROM grids WHERE code LIKE :p || '%'", p=prefix)
    assert rows == 15
    # The tree is wired up (paths) and point lookups work (grid_parts written set-based).
    chain = scalar(
        db,
        "SELECT array_length(path, 1) FROM grids WHERE code = :c AND valid_to IS NULL",
        c=f"{prefix}C1G1M0",
    )
    assert chain == 4
    hit = scalar(
        db,
        "SELECT g.code FROM grids g WHERE g.id = gis_finest_grid("
        "ST_SetSRID(ST_MakePoint(:x, :y), 4326))",
        x=gdf.geometry.iloc[-1].centroid.x,
        y=gdf.geometry.iloc[-1].centroid.y,
    )
    assert hit == gdf["code"].iloc[-1]
    assert _bounds(db, f"{prefix}S") == pytest.approx(gdf.geometry.iloc[0].bounds, abs=1e-9)
    if fmt in ("csv", "xlsx"):
        assert "crs_assumed" in kinds(report)
    # attributes: the extra column came along (typed: numbers stay numbers)
    hh = scalar(db, "SELECT attributes->'households' FROM grids WHERE code = :c", c=f"{prefix}C0")
    assert hh == 10


def test_cgcs2000_gauss_krueger_4547(db, tmp_path: Path) -> None:
    gdf = tree("GK", dx=1.0)
    path = write(gdf.to_crs("EPSG:4547"), tmp_path, "gpkg")
    report = imp(db, path)
    assert report.status == "imported", report.text()
    assert "4547" in report.crs
    assert _bounds(db, "GKS") == pytest.approx(gdf.geometry.iloc[0].bounds, abs=1e-7)


def test_web_mercator_3857_and_crs_option_without_prj(db, tmp_path: Path) -> None:
    gdf = tree("WM", dx=1.1).to_crs("EPSG:3857")
    table = pd.DataFrame(gdf.drop(columns="geometry"))
    table["wkt"] = shapely.to_wkt(gdf.geometry.values)
    path = tmp_path / "metres.csv"
    table.to_csv(path, index=False)
    refused = imp(db, path)
    assert refused.status == "refused"
    (finding,) = [f for f in refused.findings if f.kind == "file_refused"]
    assert "no coordinate system" in finding.message and "--crs" in finding.fix
    report = imp(db, path, crs="EPSG:3857")
    assert report.status == "imported", report.text()
    assert _bounds(db, "WMS") == pytest.approx(tree("WM", dx=1.1).geometry.iloc[0].bounds, abs=1e-7)


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_amap_gcj02_and_baidu_bd09(db, tmp_path: Path, datum: str) -> None:
    prefix = datum.upper()[:3]
    wgs = tree(prefix, dx=1.2 if datum == "gcj02" else 1.3)
    shifted = gpd.GeoDataFrame(
        wgs.drop(columns="geometry"),
        geometry=geometry_from_wgs84(wgs.geometry.values, datum),
        crs="EPSG:4326",  # what an AMap-drawn GeoJSON claims
    )
    path = write(shifted, tmp_path, "geojson")
    report = imp(db, path, crs=datum)
    assert report.status == "imported", report.text()
    # back in WGS84 to well under a centimetre
    assert _bounds(db, f"{prefix}S") == pytest.approx(wgs.geometry.iloc[0].bounds, abs=1e-7)


def test_facilities_csv_lon_lat_and_unknown_type(db, tmp_path: Path) -> None:
    path = tmp_path / "covers.csv"
    path.write_text(
        "编码,部件类型,名称,经度,纬度\n"
        "FAC-1,sewage_cover,污水井1,113.601,34.701\n"
        "FAC-2,污水井盖,污水井2,113.602,34.702\n"
        "FAC-3,flying_saucer,?,113.603,34.703\n",
        encoding="utf-8",
    )
    refused = imp(db, path, layer="facilities")
    assert refused.status == "refused"
    (bad,) = [f for f in refused.findings if f.kind == "unknown_facility_type"]
    assert bad.row == 4 and bad.field == "部件类型" and "sewage_cover" in bad.fix
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n", encoding="utf-8")
    report = imp(db, path, layer="facilities")
    assert report.status == "imported", report.text()
    assert scalar(db, "SELECT count(*) FROM facilities WHERE code LIKE 'FAC-%'") == 2


def test_file_wkb_is_staged_with_its_srid_set_in_place() -> None:
    """The file's own WKB (either byte order) becomes EWKB with SRID 4326 and the same shape;
    WKB the header rewrite does not cover (Z) is written out again by shapely."""
    from gis_service.interchange.checks import ewkb_hex

    geoms = np.array(
        [
            shapely.box(113.6, 34.7, 113.61, 34.71),
            shapely.MultiPolygon([shapely.box(113.6, 34.7, 113.61, 34.71)]),
            shapely.Point(113.6, 34.7),
            shapely.Point(113.6, 34.7, 12.0),
        ],
        dtype=object,
    )
    for order in (0, 1):
        wkb = np.array([shapely.to_wkb(g, byte_order=order) for g in geoms], dtype=object)
        staged = shapely.from_wkb(ewkb_hex(geoms, wkb))
        assert list(shapely.get_srid(staged)) == [4326] * 4
        assert shapely.equals_exact(staged, geoms, tolerance=0).all()
        assert shapely.has_z(staged).tolist() == [False, False, False, True]


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01-02T03:04:05", "2024-05-06T07:08:09.250", None],
        ["2024-01-02T03:04:05+08:00", "2024-05-06T07:08:09+00:00"],
        ["2024-01-02T03:04:05+08:00", "2024-01-02T05:04:05+08:00"],
        ["soon", "2024-01-01"],
    ],
)
def test_datetime_columns_read_alike_without_pyogrios_private_rule(monkeypatch, values) -> None:
    """A layer's datetime column is parsed by read_dataframe's rule, private to pyogrio; with
    a pyogrio that lacks it, pandas' ISO 8601 reader must give the same values."""
    import pandas as pd

    from gis_service.interchange import reader

    column = pd.Series(values, dtype=object)
    expected = reader._parse_datetimes(column.copy()).astype(str).tolist()
    monkeypatch.setattr(reader, "_try_parse_datetime", None)
    assert reader._parse_datetimes(column.copy()).astype(str).tolist() == expected
