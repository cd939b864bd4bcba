"""The tile cache: a tile is built once and then served from PostgreSQL with its ETag; a
changed hazard invalidates only the tiles it touches, a redrawn grid its layer, and a
deadline passing the tiles whose hazard turns overdue."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.db.engine import make_engine
from gis_service.db.reads import ReadDb, Reads
from gis_service.tiles import service
from gis_service.tiles.tilesets import LAYERS
from tests.support.aio import run_async
from tests.support.apps import app_client
from tests.support.databases import CATALOG, Databases
from tests.test_tiles import decode, tile_of

WEST = (113.603, 34.703)  # in the west micro-grid
EAST = (113.617, 34.703)  # in the east one, several z16 tiles away
Z = 16
GRIDS = [
    ("T9", "缓存街道", "street", None, (113.60, 34.70, 113.62, 34.71)),
    ("T9G", "缓存网格", "grid", "T9", (113.60, 34.70, 113.62, 34.71)),
    ("T9W", "西楼", "micro_grid", "T9G", (113.60, 34.70, 113.61, 34.71)),
    ("T9E", "东楼", "micro_grid", "T9G", (113.61, 34.70, 113.62, 34.71)),
]
REPORT = """
    INSERT INTO hazards (public_code, category_code, description, status, source, geom,
                         grid_id, grid_path, reported_at, due_at)
    SELECT :code, 'clutter', '楼道堆物', :status, 'resident',
           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), g.id, g.path, now(),
           now() + make_interval(secs => :due)
      FROM grids g WHERE g.id = gis_finest_grid(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
"""


@pytest.fixture(scope="module")
def engine(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = databases.new("tilecache", CATALOG)
    eng = make_engine(url, pool_size=2)
    with eng.begin() as conn:
        for code, name, level, parent, (x0, y0, x1, y1) in GRIDS:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
                    " (:code, :name, :level, (SELECT id FROM grids WHERE code = :parent),"
                    " ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), '2020-01-01')"
                ),
                dict(code=code, name=name, level=level, parent=parent, x0=x0, y0=y0, x1=x1, y1=y1),
            )
        conn.execute(
            text(REPORT), dict(code="C-W", status="reported", lon=WEST[0], lat=WEST[1], due=86400)
        )
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(engine, tmp_path_factory.mktemp("d")) as c:
        yield c


def fetch(client: TestClient, layer: str, where: tuple[float, float], **headers: str):
    x, y = tile_of(where[0], where[1], Z)
    return client.get(f"/tiles/{layer}/{Z}/{x}/{y}.pbf", headers=headers)


def features(response) -> list[dict]:
    return (
        decode(response.content)
        .get(response.request.url.path.split("/")[2], {})
        .get("features", [])
    )


def report(engine: Engine, code: str, where: tuple[float, float], status: str, due: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(REPORT), dict(code=code, status=status, lon=where[0], lat=where[1], due=due)
        )


def test_built_once_then_served_with_its_etag(client: TestClient) -> None:
    assert tile_of(*WEST, Z) != tile_of(*EAST, Z)
    first = fetch(client, "hazards", WEST)
    again = fetch(client, "hazards", WEST)
    assert first.status_code == again.status_code == 200
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.content == again.content and first.headers["ETag"] == again.headers["ETag"]
    # Kept compressed: a hit is sent as stored, with no compression per request.
    assert again.headers["Content-Encoding"] == "gzip"
    cond = fetch(client, "hazards", WEST, **{"If-None-Match": first.headers["ETag"]})
    assert cond.status_code == 304 and not cond.content


def test_a_hit_for_a_gzip_client_reads_only_the_stored_gz(
    client: TestClient, engine: Engine
) -> None:
    # Plain bytes are ~2.5x the gzip ones and stored compressed by PostgreSQL (TOAST):
    # reading them for a client that takes gzip was most of a hit's database time.
    x, y = tile_of(*WEST, Z)
    fetch(client, "hazards", WEST, **{"Accept-Encoding": "identity"})  # cached, gz stored
    plain = fetch(client, "hazards", WEST, **{"Accept-Encoding": "identity"})
    packed = fetch(client, "hazards", WEST)
    assert plain.headers["X-Cache"] == packed.headers["X-Cache"] == "HIT"
    assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip"
    assert plain.content == packed.content and plain.headers["ETag"] == packed.headers["ETag"]

    async def read(plain: bool) -> service.Tile | None:
        reads = Reads(engine.url.render_as_string(hide_password=False))
        try:
            return await service.tile(ReadDb(reads), LAYERS["hazards"], Z, x, y, plain)
        finally:
            await reads.close()

    gz_only, both = run_async(read(False)), run_async(read(True))
    assert gz_only is not None and both is not None and gz_only.hit and both.hit
    assert gz_only.data is None and gzip.decompress(gz_only.gz) == both.data == plain.content


def test_a_new_hazard_invalidates_only_the_tiles_it_touches(
    client: TestClient, engine: Engine
) -> None:
    for layer in ("hazards", "grids_micro_grid", "grids_grid"):
        for where in (WEST, EAST):
            fetch(client, layer, where)
            assert fetch(client, layer, where).headers["X-Cache"] == "HIT"
    report(engine, "C-E", EAST, "reported", 86400)
    east = fetch(client, "hazards", EAST)
    assert east.headers["X-Cache"] == "MISS"
    assert [f["properties"]["public_code"] for f in features(east)] == ["C-E"]
    assert fetch(client, "hazards", WEST).headers["X-Cache"] == "HIT"
    # The east micro-grid's count changed; the west one's did not. The grid over both did.
    counts = fetch(client, "grids_micro_grid", EAST)
    assert counts.headers["X-Cache"] == "MISS"
    assert {f["properties"]["code"]: f["properties"]["open_hazards"] for f in features(counts)}[
        "T9E"
    ] == 1
    assert fetch(client, "grids_micro_grid", WEST).headers["X-Cache"] == "HIT"
    assert fetch(client, "grids_grid", WEST).headers["X-Cache"] == "MISS"


def test_closing_a_hazard_takes_it_off_its_tile(client: TestClient, engine: Engine) -> None:
    before = fetch(client, "hazards", EAST)
    assert features(before)
    with engine.begin() as conn:
        conn.execute(text("UPDATE hazards SET status = 'closed' WHERE public_code = 'C-E'"))
    after = fetch(client, "hazards", EAST)
    assert after.headers["X-Cache"] == "MISS" and after.status_code == 204
    assert fetch(client, "hazards", WEST).headers["X-Cache"] == "HIT"


def test_voiding_a_hazard_takes_it_off_its_tile_and_its_grid_count(
    client: TestClient, engine: Engine
) -> None:
    """作废 (an approved void, issue 15) closes a case: its tile and its grids' counts move."""
    report(engine, "C-V", EAST, "dispatched", 86400)
    assert "C-V" in {
        f["properties"]["public_code"] for f in features(fetch(client, "hazards", EAST))
    }
    counts = fetch(client, "grids_micro_grid", EAST)
    before = {f["properties"]["code"]: f["properties"]["open_hazards"] for f in features(counts)}
    with engine.begin() as conn:
        conn.execute(text("UPDATE hazards SET status = 'voided' WHERE public_code = 'C-V'"))
    after = fetch(client, "hazards", EAST)
    assert after.headers["X-Cache"] == "MISS"
    assert "C-V" not in {f["properties"]["public_code"] for f in features(after)}
    counts = fetch(client, "grids_micro_grid", EAST)
    assert counts.headers["X-Cache"] == "MISS"
    now = {f["properties"]["code"]: f["properties"]["open_hazards"] for f in features(counts)}
    assert now["T9E"] == before["T9E"] - 1


def test_a_redrawn_grid_invalidates_its_layer(client: TestClient, engine: Engine) -> None:
    fetch(client, "grids_micro_grid", WEST)
    assert fetch(client, "grids_micro_grid", WEST).headers["X-Cache"] == "HIT"
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(113.60, 34.70, 113.609, 34.71,"
                " 4326)) WHERE code = 'T9W'"
            )
        )
    assert fetch(client, "grids_micro_grid", WEST).headers["X-Cache"] == "MISS"
    assert fetch(client, "grids_micro_grid", EAST).headers["X-Cache"] == "MISS"
    assert fetch(client, "hazards", WEST).headers["X-Cache"] == "HIT"


def test_a_passing_deadline_expires_the_tile(client: TestClient, engine: Engine) -> None:
    report(engine, "C-DUE", EAST, "dispatched", 1.5)
    soon = fetch(client, "hazards", EAST)
    assert [f["properties"]["overdue"] for f in features(soon)] == [False]
    assert fetch(client, "hazards", EAST).headers["X-Cache"] == "HIT"
    time.sleep(1.6)
    late = fetch(client, "hazards", EAST)
    assert late.headers["X-Cache"] == "MISS"
    assert [f["properties"]["overdue"] for f in features(late)] == [True]
