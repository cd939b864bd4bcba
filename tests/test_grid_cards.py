"""Grid cards: the locate entries kept as ready JSON stay equal to their live definition
through every kind of write, and locate never answers from a stale one. The same for the
chains kept beside them (migration 0022): the answer from the chain card is the answer the
statement that builds the chain level by level gives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.db.engine import make_engine
from gis_service.grids import sql
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


# Cards whose chain, its freshness or its special-grid flag differ from their definition.
STALE_CHAINS = text(
    """
    SELECT count(*) FROM grid_cards k
      JOIN gis_grid_chains(ARRAY(SELECT grid_id FROM grid_cards)) c USING (grid_id)
     WHERE (k.chain, k.chain_fresh_until, k.specials)
           IS DISTINCT FROM (c.chain, c.fresh_until, c.specials)
    """
)
PUBLIC = {"private_all": False, "private_scope": None, "private_person": None}


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
    """(cards differing from their definition, current grids without one); every chain
    must equal its definition whatever the cards are."""
    with engine.connect() as conn:
        row = conn.execute(STALE).one()
        assert conn.execute(STALE_CHAINS).scalar() == 0
    return row.differing, row.missing


def _from_chain_card(engine: Engine, point: dict[str, float] = POINT) -> dict | None:
    """Locate's answer from the chain card (None: the card cannot answer), checked against
    the statement that builds the chain level by level (times aside)."""
    with engine.connect() as conn:
        card = conn.execute(sql.LOCATE_NOW_PUBLIC, {**point, **PUBLIC}).scalar()
        full = conn.execute(sql.LOCATE, {**point, "at": None, **PUBLIC}).scalar()
    if card is None:
        return None
    answer, expected = json.loads(card), json.loads(full)
    answer.pop("at"), expected.pop("at")
    assert answer == expected
    return answer


def test_every_grid_has_a_card_equal_to_its_definition(engine: Engine, client) -> None:
    assert _stale(engine) == (0, 0)
    assert _people(client)[-1] == ["卡片微网格负责人"]
    answer = _from_chain_card(engine)
    assert answer is not None
    assert [g["code"] for g in answer["chain"]] == [code for code, *_ in GRIDS]
    assert [g["open_hazards"] for g in answer["chain"]] == [None, None, None, 0]


def test_a_renamed_person_shows_at_once(engine: Engine, client: TestClient) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE people SET name = '新名字' WHERE name = '卡片网格负责人'"))
    assert _people(client)[2] == ["新名字"]
    assert _stale(engine) == (0, 0)
    assert _from_chain_card(engine)["chain"][2]["people"][0]["name"] == "新名字"


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
    assert _from_chain_card(engine)["chain"][1]["name"] == "改名社区"


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
    assert _from_chain_card(engine) is not None
    time.sleep(1.6)  # the card says when it goes stale; after that locate builds the entry
    assert _people(client)[-1] == ["卡片微网格负责人", "卡片社区负责人"]
    assert _stale(engine) == (1, 0)
    assert _from_chain_card(engine) is None  # the chain is as stale as its last card
    with engine.begin() as conn:  # what the service runs every minute
        assert conn.execute(text("SELECT gis_refresh_due_grid_cards()")).scalar() == 1
    assert _stale(engine) == (0, 0)
    people = _from_chain_card(engine)["chain"][-1]["people"]
    assert [p["name"] for p in people] == ["卡片微网格负责人", "卡片社区负责人"]


def test_a_bulk_write_drops_cards_and_locate_stays_right(
    engine: Engine, client: TestClient
) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL gis.bulk_import = 'on'"))
        conn.execute(text("UPDATE grids SET name = '批量网格' WHERE code = 'C901001001'"))
    assert _stale(engine) == (0, 1)
    # The grid's card is gone, and with it the chains below it: locate builds them.
    assert _from_chain_card(engine) is None
    assert client.get("/api/v1/locate", params=POINT).json()["chain"][2]["name"] == "批量网格"
    with engine.begin() as conn:
        assert conn.execute(text("SELECT gis_fill_grid_cards()")).scalar() == 1
    assert _stale(engine) == (0, 0)
    assert _from_chain_card(engine)["chain"][2]["name"] == "批量网格"


def test_mobile_phones_only_in_the_private_entry(engine: Engine) -> None:
    with engine.connect() as conn:
        public, private = conn.execute(
            text("SELECT public, private FROM grid_cards ORDER BY grid_id LIMIT 1")
        ).one()
    assert "13800000000" not in public and "13800000000" in private


def test_special_grids_drawn_and_removed_show_from_the_chain_card(
    engine: Engine, client: TestClient
) -> None:
    with engine.connect() as conn:
        flag = text(
            "SELECT k.specials FROM grid_cards k JOIN grids g ON g.id = k.grid_id"
            " WHERE g.code = 'C901001001001'"
        )
        assert conn.execute(flag).scalar() is False  # none near: locate does not probe
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, geom, valid_from)"
                " SELECT 'C901001901', '卡片学校', 'special', id,"
                " ST_Multi(ST_MakeEnvelope(113.602, 34.702, 113.603, 34.703, 4326)),"
                " '2020-01-01' FROM grids WHERE code = 'C901001'"
            )
        )
    assert _stale(engine) == (0, 0)
    answer = _from_chain_card(engine)
    assert [s["name"] for s in answer["special_grids"]] == ["卡片学校"]
    body = client.get("/api/v1/locate", params=POINT).json()
    assert [s["name"] for s in body["special_grids"]] == ["卡片学校"]
    # Moved away from the point, the special grid still lies near: probed, not listed.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE grids SET geom ="
                " ST_Multi(ST_MakeEnvelope(113.6055, 34.7055, 113.606, 34.706, 4326))"
                " WHERE code = 'C901001901'"
            )
        )
    assert _stale(engine) == (0, 0)
    assert _from_chain_card(engine)["special_grids"] == []
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE code = 'C901001901'"))
        assert conn.execute(flag).scalar() is False
    assert _stale(engine) == (0, 0)
    assert client.get("/api/v1/locate", params=POINT).json()["special_grids"] == []


def test_demo_district_chains_equal_their_definition(demo_engine: Engine) -> None:
    """Every card and chain the demo loader's writes left (grids, special grids, people) is
    what its definition builds now."""
    with demo_engine.connect() as conn:
        row = conn.execute(STALE).one()
        assert (row.differing, row.missing) == (0, 0)
        assert conn.execute(STALE_CHAINS).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM grid_cards WHERE specials")).scalar() > 0


@pytest.mark.parametrize("n", [3, 200])
def test_grids_under_many_ids_as_under_few(demo_engine: Engine, n: int) -> None:
    """gis_grids_under hash-joins many ids and asks the GIN index for a few: same rows."""
    with demo_engine.connect() as conn:
        ids = conn.execute(
            text("SELECT array_agg(id) FROM (SELECT id FROM grids ORDER BY id DESC LIMIT :n) x"),
            {"n": n},
        ).scalar()
        ids.append(0)  # an id no grid has
        under = conn.execute(
            text("SELECT array_agg(id ORDER BY id) FROM gis_grids_under(:ids)"), {"ids": ids}
        ).scalar()
        expected = conn.execute(
            text(
                "SELECT array_agg(id ORDER BY id) FROM grids"
                " WHERE EXISTS (SELECT 1 FROM unnest(path) p WHERE p = ANY (:ids))"
                " AND valid_to IS NULL"
            ),
            {"ids": ids},
        ).scalar()
    assert under == expected and len(under) >= n // 2
