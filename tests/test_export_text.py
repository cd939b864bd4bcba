"""CSV, GeoJSON and XLSX exports are built by PostgreSQL (interchange/export_rows.py): every
character, type and formula guard of a cell comes out as the Python writers wrote it, and a
failure while streaming leaves no file behind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import text

from gis_service.interchange import export as export_module
from gis_service.interchange.cells import neutralise, neutralise_sql
from gis_service.interchange.export import ExportFormat, ExportLayer, export_layer
from tests.support.databases import Databases
from tests.support.importkit import fresh

# Names a resident or an importer may have typed: control characters, markup, line breaks,
# spaces at the ends, quotes and commas, formulas and numbers.
NAMES = {
    "TX-1": "tab\there",
    "TX-2": "two\r\nlines and a lone\rreturn",
    "TX-3": "<b>&amp; 'quoted' \"double\", comma</b>",
    "TX-4": " leading and trailing ",
    "TX-5": '=HYPERLINK("http://x.example")',
    "TX-6": "-3.5",
    "TX-7": "bell\x07 and unit\x1f separators",
    "TX-8": "中文名称",
}
ATTRIBUTES = {
    "TX-1": {"depth": 1.0, "count": 3, "ok": True, "mixed": 5, "nested": {"a": [1, 2]}},
    "TX-2": {"depth": 2.5, "count": 4, "ok": False, "mixed": "five"},
    "TX-3": {"note": "@SUM(A1:A9)"},
}


@pytest.fixture(scope="module")
def engine(databases: Databases):
    _url, eng = fresh(databases, "ext")
    with eng.begin() as conn:
        for i, (code, name) in enumerate(NAMES.items()):
            conn.execute(
                text(
                    "INSERT INTO facilities (code, type_code, name, geom, attributes) VALUES "
                    "(:code, 'sewage_cover', :name, ST_SetSRID(ST_MakePoint(:x, 34.7), 4326),"
                    " CAST(:attrs AS jsonb))"
                ),
                {
                    "code": code,
                    "name": name,
                    "x": 113.6 + i / 1000,
                    "attrs": json.dumps(ATTRIBUTES.get(code, {})),
                },
            )
    yield eng
    eng.dispose()


@pytest.mark.parametrize(
    "value",
    ["=1+2", "+2", "-3.5", "-1+cmd", "@SUM(A1)", "\tx", "\rx", "plain", "1e5", "-", "+.5", "'=x"],
)
def test_the_sql_formula_guard_is_the_python_one(engine, value: str) -> None:
    with engine.connect() as conn:
        got = conn.execute(text("SELECT " + neutralise_sql("CAST(:v AS text)")), {"v": value})
        assert got.scalar() == neutralise(value)


def _export(engine, fmt: ExportFormat, folder: Path) -> Path:
    with engine.connect() as conn:
        result = export_layer(conn, ExportLayer.facilities, fmt, folder=folder)
    assert result.count == len(NAMES)
    return result.path


def test_csv_keeps_text_types_and_guards(engine, tmp_path: Path) -> None:
    path = _export(engine, ExportFormat.csv, tmp_path)
    assert path.read_bytes().startswith("\ufeff".encode())
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = {r["code"]: r for r in csv.DictReader(fh)}
    for code, name in NAMES.items():
        assert rows[code]["name"] == neutralise(name)
    assert rows["TX-5"]["name"].startswith("'=")
    # a float stays a float (1.0, as Python writes it), an int an int, booleans as pandas
    assert (rows["TX-1"]["depth"], rows["TX-2"]["depth"]) == ("1.0", "2.5")
    assert rows["TX-1"]["count"] == "3" and rows["TX-1"]["ok"] == "True"
    assert rows["TX-2"]["ok"] == "False" and rows["TX-4"]["ok"] == ""
    # a key with numbers and text is a text column; objects are JSON text
    assert (rows["TX-1"]["mixed"], rows["TX-2"]["mixed"]) == ("5", "five")
    assert json.loads(rows["TX-1"]["nested"]) == {"a": [1, 2]}
    assert rows["TX-3"]["note"] == "'@SUM(A1:A9)"
    assert rows["TX-1"]["wkt"] == "POINT(113.6 34.7)"


def test_xlsx_keeps_every_character_it_may_hold(engine, tmp_path: Path) -> None:
    path = _export(engine, ExportFormat.xlsx, tmp_path)
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    by_code = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    for code, name in NAMES.items():
        # XML 1.0 cannot hold \x07 or \x1f: they go; returns and tabs stay exactly
        want = neutralise(name).replace("\x07", "").replace("\x1f", "")
        assert by_code[code]["name"] == want, code
    assert by_code["TX-1"]["depth"] == 1.0 and by_code["TX-1"]["count"] == 3
    assert by_code["TX-1"]["ok"] is True and by_code["TX-2"]["ok"] is False
    assert by_code["TX-4"]["ok"] is None and by_code["TX-4"]["depth"] is None
    assert by_code["TX-3"]["note"] == "'@SUM(A1:A9)"
    assert by_code["TX-8"]["wkt"].startswith("POINT(113.607 34.7")


def test_geojson_keeps_text_and_types(engine, tmp_path: Path) -> None:
    path = _export(engine, ExportFormat.geojson, tmp_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and doc["name"] == "facilities"
    props = {f["properties"]["code"]: f["properties"] for f in doc["features"]}
    for code, name in NAMES.items():
        assert props[code]["name"] == name  # GeoJSON is read by programs, not spreadsheets
    assert props["TX-1"]["count"] == 3 and props["TX-1"]["ok"] is True
    assert props["TX-1"]["mixed"] == "5" and props["TX-4"]["depth"] is None
    first = doc["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [113.6, 34.7]}
    assert list(first["properties"])[:2] == ["code", "type_code"]


@pytest.mark.parametrize("fmt", [ExportFormat.csv, ExportFormat.xlsx, ExportFormat.geojson])
def test_a_failure_while_streaming_leaves_no_file(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: ExportFormat
) -> None:
    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_module.text_rows, "copy_rows", broken)
    with engine.connect() as conn, pytest.raises(OSError):
        export_layer(conn, ExportLayer.facilities, fmt, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
