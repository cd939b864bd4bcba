"""Facility cells (migration 0019): the thinned facility tiles read ready cells, which the
triggers keep equal to a rebuild from the table through inserts, moves and deletes, and a
changed cell invalidates the cached tiles that show it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.db import migrate
from gis_service.tiles.sql import FACILITY_CELL_ZOOMS
from gis_service.tiles.tilesets import LAYERS
from tests.support.apps import app_client
from tests.support.databases import CATALOG, Databases
from tests.test_tiles import decode, tile_of

Z = 14
HERE = (113.6051, 34.7111)
INSERT = text(
    "INSERT INTO facilities (code, type_code, geom) VALUES"
    " (:code, :type, ST_GeomFromText(:wkt, 4326))"
)
CELLS = text(
    "SELECT zoom, cx, cy, id, n, code, ST_AsText(geom) FROM facility_cells ORDER BY 1, 2, 3"
)


@pytest.fixture(scope="module")
def engine(databases: Databases) -> Iterator[Engine]:
    eng = databases.engine("faccells", CATALOG)
    with eng.begin() as conn:
        for code, kind, wkt in [
            ("P-1", "rain_cover", "POINT(113.605100 34.711100)"),
            ("P-2", "rain_cover", "POINT(113.605102 34.711101)"),
            ("P-3", "rain_cover", "POINT(113.605104 34.711102)"),
            ("P-4", "sewage_cover", "POINT(113.6021 34.7081)"),
            ("L-1", "sewer_pipe", "LINESTRING(113.6030 34.7050, 113.6090 34.7090)"),
        ]:
            conn.execute(INSERT, {"code": code, "type": kind, "wkt": wkt})
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(engine, tmp_path_factory.mktemp("d")) as c:
        yield c


def _rebuilt(engine: Engine) -> list:
    """The cells as a rebuild from the whole table makes them (migration 0019's fill)."""
    fill = migrate.revision_module("0019_facility_cells")._FILL_ALL
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(text("DELETE FROM facility_cells"))
        conn.execute(text(fill))
        rebuilt = conn.execute(CELLS).all()
        trans.rollback()
    return rebuilt


def _cells(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(CELLS).all()


def _tile(client: TestClient) -> tuple[dict, str, str]:
    x, y = tile_of(*HERE, Z)
    r = client.get(f"/tiles/facilities/{Z}/{x}/{y}.pbf")
    assert r.status_code == 200, r.text
    features = {
        f["properties"]["code"]: f["properties"]
        for f in decode(r.content)["facilities"]["features"]
    }
    return features, r.headers["ETag"], r.headers["X-Cache"]


def test_the_cell_zooms_are_the_layers_thinned_zooms() -> None:
    layer = LAYERS["facilities"]
    module = migrate.revision_module("0019_facility_cells")
    assert tuple(FACILITY_CELL_ZOOMS) == tuple(module.ZOOMS)
    assert tuple(FACILITY_CELL_ZOOMS) == tuple(range(layer.minzoom, layer.detail_zoom))


def test_a_thinned_tile_shows_one_facility_per_cell_with_its_count(
    client: TestClient, engine: Engine
) -> None:
    features, _, _ = _tile(client)
    assert features["P-1"]["count"] == 3  # the lowest id stands for its stacked neighbours
    assert "P-2" not in features and "P-3" not in features
    assert features["L-1"]["count"] == 1 and features["P-4"]["count"] == 1
    assert sum(f["count"] for f in features.values()) == 5
    assert _cells(engine) == _rebuilt(engine)


def test_writes_keep_the_cells_and_move_the_tiles_that_show_them(
    client: TestClient, engine: Engine
) -> None:
    _, etag, _ = _tile(client)
    assert _tile(client)[2] == "HIT"
    with engine.begin() as conn:
        # The standing facility of the stack goes: the next lowest id stands, count 2.
        conn.execute(text("DELETE FROM facilities WHERE code = 'P-1'"))
    features, etag2, cache = _tile(client)
    assert cache == "MISS" and etag2 != etag
    assert features["P-2"]["count"] == 2 and "P-1" not in features
    assert _cells(engine) == _rebuilt(engine)
    with engine.begin() as conn:
        # A move out of the stack's cell, and a new facility into it.
        conn.execute(
            text(
                "UPDATE facilities SET geom = ST_GeomFromText('POINT(113.6080 34.7100)', 4326)"
                " WHERE code = 'P-3'"
            )
        )
        conn.execute(
            INSERT, {"code": "P-5", "type": "rain_cover", "wkt": "POINT(113.605101 34.711100)"}
        )
    features, _, cache = _tile(client)
    assert cache == "MISS"
    assert features["P-2"]["count"] == 2 and features["P-3"]["count"] == 1
    assert sum(f["count"] for f in features.values()) == 5
    assert _cells(engine) == _rebuilt(engine)


def test_a_statement_of_many_rows_rebuilds_the_cells(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO facilities (code, type_code, geom)"
                " SELECT 'M-' || i, 'rain_cover', ST_SetSRID(ST_MakePoint("
                " 113.60 + (i % 120) * 0.0004, 34.70 + (i / 120) * 0.0004), 4326)"
                " FROM generate_series(1, 12000) AS i"
            )
        )
    assert _cells(engine) == _rebuilt(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM facilities WHERE code LIKE 'M-%'"))
    assert _cells(engine) == _rebuilt(engine)
