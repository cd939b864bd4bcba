"""Grid cards: the locate entries kept as ready JSON stay equal to their live definition
through every kind of write, and locate never answers from a stale one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.db.engine import make_engine
from tests.support.apps import app_client
from tests.support.databases import SCHEMA, Databases

POINT = {"lon": 113.6025, "lat": 34.7025}
GRIDS = [
    ("C901", "卡片街道", "street", None),
    ("C901001", "卡片社区", "community", "C901"),
    ("C901001001", "卡片网格", "grid", "C901001"),
    ("C901001001001", "卡片微网格", "micro_grid", "C901001001"),
]

# Cards whose text differs from what gis_grid_cards builds now, plus current grids with none.
STALE = text(
    """
    SELECT (SELECT count(*) FROM grid_cards k
              JOIN gis_grid_cards(ARRAY(SELECT grid_id FROM grid_cards), now()) c USING (grid_id)
             WHERE k.public <> c.public OR k.private <> c.private
                OR k.fresh_until IS DISTINCT FROM c.fresh_until) AS differing,
           (SELECT count(*) FROM grids g WHERE g.valid_to IS NULL
               AND NOT EXISTS (SELECT 1 FROM grid_cards k WHERE k.grid_id = g.id)) AS missing
    """
)


@pytest.fixture(scope="module")
def engine(databases: Databases) -> Iterator[Engine]:
    url = databases.new("cards", SCHEMA)
    eng = make_engine(url, pool_size=2)
    with eng.begin() as conn:
        for code, name, level, parent in GRIDS:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
                    " (:code, :name, :level, (SELECT id FROM grids WHERE code = :parent),"
                    " ST_Multi(ST_MakeEnvelope(113.60, 34.70, 113.61, 34.71, 4326)),"
                    " '2020-01-01')"
                ),
                {"code": code, "name": name, "level": level, "parent": parent},
            )
            conn.execute(
                text(
                    "WITH p AS (INSERT INTO people (name, work_phone, mobile_phone)"
                    " VALUES (:name, '0371-1', '13800000000') RETURNING id)"
                    " INSERT INTO grid_assignments (grid_id, person_id, role, is_primary,"
                    " valid_from) SELECT g.id, p.id, 'grid_leader', true, '2020-01-01'"
                    " FROM p, grids g WHERE g.code = :code"
                ),
                {"name": f"{name}负责人", "code": code},
            )
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(engine, tmp_path_factory.mktemp("d")) as c:
        yield c


def _people(client: TestClient) -> list[list[str]]:
    r = client.get("/api/v1/locate", params=POINT)
    assert r.status_code == 200, r.text
    return [[p["name"] for p in g["people"]] for g in r.json()["chain"]]


def _stale(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(STALE).one()
    return row.differing, row.missing


def test_every_grid_has_a_card_equal_to_its_definition(engine: Engine, client) -> None:
    assert _stale(engine) == (0, 0)
    assert _people(client)[-1] == ["卡片微网格负责人"]


def test_a_renamed_person_shows_at_once(engine: Engine, client: TestClient) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE people SET name = '新名字' WHERE name = '卡片网格负责人'"))
    assert _people(client)[2] == ["新名字"]
    assert _stale(engine) == (0, 0)


def test_new_and_ended_assignments_and_grid_edits(engine: Engine, client: TestClient) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO grid_assignments (grid_id, person_id, role, valid_from)"
                " SELECT g.id, p.id, 'volunteer', now() FROM grids g, people p"
                " WHERE g.code = 'C901001001001' AND p.name = '卡片街道负责人'"
            )
        )
    assert _people(client)[-1] == ["卡片微网格负责人", "卡片街道负责人"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE grid_assignments SET valid_to = now() WHERE role = 'volunteer'"))
        conn.execute(text("UPDATE grids SET name = '改名社区' WHERE code = 'C901001'"))
    body = client.get("/api/v1/locate", params=POINT).json()
    assert body["chain"][1]["name"] == "改名社区"
    assert [p["name"] for p in body["chain"][-1]["people"]] == ["卡片微网格负责人"]
    assert _stale(engine) == (0, 0)


def test_an_assignment_starting_later_is_not_served_from_the_card(
    engine: Engine, client: TestClient
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO grid_assignments (grid_id, person_id, role, valid_from)"
                " SELECT g.id, p.id, 'building_head', now() + interval '1.5 seconds'"
                " FROM grids g, people p"
                " WHERE g.code = 'C901001001001' AND p.name = '卡片社区负责人'"
            )
        )
        fresh_until = conn.execute(
            text(
                "SELECT k.fresh_until FROM grid_cards k JOIN grids g ON g.id = k.grid_id"
                " WHERE g.code = 'C901001001001'"
            )
        ).scalar()
    assert fresh_until is not None
    assert _people(client)[-1] == ["卡片微网格负责人"]
    time.sleep(1.6)  # the card says when it goes stale; after that locate builds the entry
    assert _people(client)[-1] == ["卡片微网格负责人", "卡片社区负责人"]
    assert _stale(engine) == (1, 0)
    with engine.begin() as conn:  # what the service runs every minute
        assert conn.execute(text("SELECT gis_refresh_due_grid_cards()")).scalar() == 1
    assert _stale(engine) == (0, 0)


def test_a_bulk_write_drops_cards_and_locate_stays_right(
    engine: Engine, client: TestClient
) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL gis.bulk_import = 'on'"))
        conn.execute(text("UPDATE grids SET name = '批量网格' WHERE code = 'C901001001'"))
    assert _stale(engine) == (0, 1)
    assert client.get("/api/v1/locate", params=POINT).json()["chain"][2]["name"] == "批量网格"
    with engine.begin() as conn:
        assert conn.execute(text("SELECT gis_fill_grid_cards()")).scalar() == 1
    assert _stale(engine) == (0, 0)


def test_mobile_phones_only_in_the_private_entry(engine: Engine) -> None:
    with engine.connect() as conn:
        public, private = conn.execute(
            text("SELECT public, private FROM grid_cards ORDER BY grid_id LIMIT 1")
        ).one()
    assert "13800000000" not in public and "13800000000" in private
