"""Locate cells (migration 0018): the micro-grid parts listed by lattice cell stay in step
with grids and parts through every kind of write, so the routing answer read through them is
the rule's answer computed from the grids' own polygons."""

from __future__ import annotations

import math
from collections.abc import Iterator

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text

from tests.support.databases import Databases

# Micro-grids of several shapes under one grid: two small boxes sharing an edge that lies on
# a cell boundary (lon 113.6005 = 227201 × 0.0005), a triangle, and one large enough to be
# listed on the coarse lattice (0.01° square: 400 fine cells).
STREET = (113.595, 34.695, 113.625, 34.725)
MICRO = [
    (
        "M001",
        "POLYGON((113.5995 34.6995, 113.6005 34.6995, 113.6005 34.7008, 113.5995 34.7008,"
        " 113.5995 34.6995))",
    ),
    (
        "M002",
        "POLYGON((113.6005 34.6995, 113.6017 34.6995, 113.6017 34.7008, 113.6005 34.7008,"
        " 113.6005 34.6995))",
    ),
    ("M003", "POLYGON((113.6020 34.7000, 113.6040 34.7000, 113.6020 34.7020, 113.6020 34.7000))"),
    (
        "M004",
        "POLYGON((113.6100 34.7100, 113.6200 34.7100, 113.6200 34.7200, 113.6100 34.7200,"
        " 113.6100 34.7100))",
    ),
]
COARSE = 4398046511104  # cell keys of the coarse lattice start here (level 1)

# The rule computed from the grids' own polygons, without parts or cells: the finest
# territorial level covering the point (boundary included) valid at :at, smaller code then id.
BRUTE = text(
    """
    SELECT (SELECT g.id FROM grids g JOIN grid_levels l ON l.code = g.level
             WHERE l.rank BETWEEN 1 AND 4
               AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))
               AND gis_valid_at(g.valid_from, g.valid_to, CAST(:at AS timestamptz))
             ORDER BY l.rank DESC, g.code, g.id LIMIT 1)
      FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t (x, y, i)
     ORDER BY i
    """
)
BATCH = text(
    """
    SELECT f.grid_id
      FROM gis_finest_grids(
               ARRAY(SELECT ST_SetSRID(ST_MakePoint(x, y), 4326)
                       FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]))
                            WITH ORDINALITY AS t (x, y, i) ORDER BY i),
               CAST(:at AS timestamptz)) AS f
     ORDER BY f.ord
    """
)
SINGLE = text(
    """
    SELECT gis_finest_grid(ST_SetSRID(ST_MakePoint(x, y), 4326), CAST(:at AS timestamptz))
      FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t (x, y, i)
     ORDER BY i
    """
)


def _points() -> tuple[list[float], list[float]]:
    """A lattice every 0.00025° over the micro-grids (on their edges, corners and the cell
    boundaries), a finer one around the shared edge, and points outside the street."""
    xs = [113.5990 + 0.00025 * i for i in range(110)]
    ys = [34.6990 + 0.00025 * j for j in range(90)]
    pts = [(x, y) for x in xs for y in ys]
    pts += [(113.6005 + d, 34.7 + 0.0001 * k) for d in (-1e-9, 0.0, 1e-9) for k in range(10)]
    pts += [(113.59, 34.70), (113.63, 34.73), (0.0, 0.0)]
    return [p[0] for p in pts], [p[1] for p in pts]


def _answers(conn, at: str | None = None) -> dict[str, list[int | None]]:
    xs, ys = _points()
    params = {"xs": xs, "ys": ys, "at": at or "now"}
    return {
        name: [r[0] for r in conn.execute(sql, params)]
        for name, sql in (("brute", BRUTE), ("batch", BATCH), ("single", SINGLE))
    }


def _assert_rule(engine: Engine, at: str | None = None) -> dict[str, list[int | None]]:
    with engine.connect() as conn:
        got = _answers(conn, at)
    assert got["batch"] == got["brute"]
    assert got["single"] == got["brute"]
    return got


def _orphans(engine: Engine) -> int:
    """Cell rows whose part or grid facts differ from the tables (or whose part is gone)."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                """
                SELECT count(*) FROM grid_cells c
                 WHERE NOT EXISTS (
                     SELECT 1 FROM grid_parts p JOIN grids g ON g.id = p.grid_id
                      WHERE p.id = c.part_id AND p.rank = 4 AND g.id = c.grid_id
                        AND ST_Equals(p.geom, c.geom) AND g.code = c.code
                        AND g.path = c.path AND g.valid_from = c.valid_from
                        AND g.valid_to IS NOT DISTINCT FROM c.valid_to)
                """
            )
        ).scalar()


@pytest.fixture(scope="module")
def engine(databases: Databases) -> Iterator[Engine]:
    eng = databases.engine("cells")
    with eng.begin() as conn:
        insert = text(
            "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
            " (:code, :code, :level, (SELECT id FROM grids WHERE code = :parent),"
            " ST_Multi(ST_GeomFromText(:wkt, 4326)), '2020-01-01')"
        )
        box = "POLYGON(({0} {1}, {2} {1}, {2} {3}, {0} {3}, {0} {1}))".format(*STREET)
        for code, level, parent in (
            ("S1", "street", None),
            ("S1C1", "community", "S1"),
            ("S1C1G1", "grid", "S1C1"),
        ):
            conn.execute(insert, {"code": code, "level": level, "parent": parent, "wkt": box})
        for code, wkt in MICRO:
            conn.execute(
                insert, {"code": code, "level": "micro_grid", "parent": "S1C1G1", "wkt": wkt}
            )
    yield eng
    eng.dispose()


def test_micro_grids_are_listed_by_cell_and_large_ones_on_the_coarse_lattice(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT code, array_agg(cell >= :coarse) FROM grid_cells GROUP BY code"),
                {"coarse": COARSE},
            ).all()
        )
    # Only micro-grids (rank 4) are listed; the 0.01° one on the coarse lattice only.
    assert sorted(rows) == ["M001", "M002", "M003", "M004"]
    assert set(rows["M004"]) == {True}
    assert set(rows["M001"]) == set(rows["M003"]) == {False}
    # M001 spans lon 113.5995-113.6005 and lat 34.6995-34.7008: every fine cell its box
    # touches (the same float division as the database's), once.
    span = [math.floor(b / 0.0005) for b in (113.6005, 113.5995, 34.7008, 34.6995)]
    assert len(rows["M001"]) == (span[0] - span[1] + 1) * (span[2] - span[3] + 1) == 9
    assert _orphans(engine) == 0


def test_batch_and_single_answer_the_rule_from_the_polygons(engine: Engine) -> None:
    got = _assert_rule(engine)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT code, id FROM grids")).all())
    found = set(got["brute"])
    # Every micro-grid, the grid level around them and the outside were all exercised.
    assert {ids[c] for c, _ in MICRO} | {ids["S1C1G1"], None} <= found
    # On the shared edge lon 113.6005 (a cell boundary) the smaller code wins.
    xs, _ = _points()
    edge = [g for x, g in zip(xs, got["brute"], strict=True) if x == 113.6005]
    assert ids["M001"] in edge and ids["M002"] not in edge


def test_redrawn_retired_recoded_and_deleted_micro_grids_move_their_cells(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        # Redraw: M003 becomes a box elsewhere inside the grid (parts replaced by trigger).
        conn.execute(
            text(
                "UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(113.603, 34.703,"
                " 113.6045, 34.7042, 4326)) WHERE code = 'M003'"
            )
        )
        # Retire M002 and put a new version of it, with another shape, in its place.
        conn.execute(text("UPDATE grids SET valid_to = '2024-01-01' WHERE code = 'M002'"))
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, geom, valid_from)"
                " SELECT 'M002', 'M002 v2', 'micro_grid', parent_id,"
                " ST_Multi(ST_MakeEnvelope(113.6005, 34.6995, 113.6012, 34.7004, 4326)),"
                " '2024-01-01' FROM grids WHERE code = 'M002'"
            )
        )
        # Recode M001 (its cells must carry the new code for the shared-edge rule).
        conn.execute(text("UPDATE grids SET code = 'M009' WHERE code = 'M001'"))
    assert _orphans(engine) == 0
    now = _assert_rule(engine)
    past = _assert_rule(engine, "2022-06-01")
    assert now != past
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT code, id FROM grids WHERE valid_to IS NULL")).all())
    xs, _ = _points()
    edge = [g for x, g in zip(xs, now["brute"], strict=True) if x == 113.6005]
    # M009 (was M001) now has the larger code than the new M002 on their shared edge.
    assert ids["M002"] in edge
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE code = 'M004'"))
    assert _orphans(engine) == 0
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM grid_cells WHERE cell >= :c"), {"c": COARSE}
            ).scalar()
            == 0
        )
    _assert_rule(engine)


def test_truncating_the_parts_empties_the_cells(databases: Databases) -> None:
    eng = databases.engine("cells_truncate")
    try:
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, geom) VALUES ('T1', 'T1',"
                    " 'micro_grid', ST_Multi(ST_MakeEnvelope(113.6, 34.7, 113.601, 34.701,"
                    " 4326)))"
                )
            )
            assert conn.execute(text("SELECT count(*) FROM grid_cells")).scalar() > 0
            conn.execute(text("TRUNCATE grid_parts"))
            assert conn.execute(text("SELECT count(*) FROM grid_cells")).scalar() == 0
    finally:
        eng.dispose()


def _lattice(bounds: tuple[float, float, float, float]) -> set[int]:
    """The cell keys of a part's box, computed here: revision 0018's rule in Python (the
    same float division), fine cells unless the box spans more than 64, then coarse."""
    fine, coarse = 0.0005, 0.0005 * 64

    def ix(v: float, size: float) -> int:
        return math.floor(v / size) + 1048576

    x0, y0, x1, y1 = bounds
    span = (ix(x1, fine) - ix(x0, fine) + 1) * (ix(y1, fine) - ix(y0, fine) + 1)
    level, size = (1, coarse) if span > 64 else (0, fine)
    return {
        level * COARSE + i * 2097152 + j
        for i in range(ix(x0, size), ix(x1, size) + 1)
        for j in range(ix(y0, size), ix(y1, size) + 1)
    }


def test_a_bulk_import_lists_exactly_the_cells_of_its_polygons(
    databases: Databases, tmp_path
) -> None:
    """The import writes parts and cells set-based (gis.bulk_import): every micro-grid part
    is listed in exactly the cells its box touches, the parts of a grid make up its polygon,
    and each card is its definition once the cards are filled."""
    from shapely import MultiPolygon, Point, Polygon

    from tests.support.importkit import X0, Y0, box, fresh, imp, tree, write

    url, eng = fresh(databases, "cells_import")
    try:
        grids = tree("K")  # micro-grids of 0.005°: listed on the coarse lattice
        # One micro-grid's place holds others: a box on cell boundaries, a triangle, two
        # boxes as one multipolygon, and a 200-vertex disc (subdivided into several parts).
        i = grids.index[grids.code == "KC1G1M1"][0]
        grids.loc[i, "geometry"] = box(0.015, 0.005, 0.0155, 0.0055)
        row = grids.loc[i].to_dict()
        shapes = {
            "KT": Polygon(
                [(X0 + 0.016, Y0 + 0.006), (X0 + 0.0172, Y0 + 0.006), (X0 + 0.016, Y0 + 0.0071)]
            ),
            "KM": MultiPolygon(
                [box(0.0175, 0.0052, 0.0179, 0.0057), box(0.0181, 0.0052, 0.0185, 0.0061)]
            ),
            "KD": Point(X0 + 0.0175, Y0 + 0.0085).buffer(0.0012, quad_segs=50),
        }
        extra = [{**row, "code": c, "name": f"微网格{c}", "geometry": g} for c, g in shapes.items()]
        grids = gpd.GeoDataFrame(
            [*grids.to_dict("records"), *extra], geometry="geometry", crs=grids.crs
        )
        report = imp(eng, write(grids, tmp_path, "gpkg"))
        assert report.ok, report.text()
        with eng.connect() as conn:
            parts = conn.execute(
                text(
                    "SELECT p.id, ST_XMin(p.geom), ST_YMin(p.geom), ST_XMax(p.geom),"
                    " ST_YMax(p.geom) FROM grid_parts p WHERE p.rank = 4"
                )
            ).all()
            listed = conn.execute(text("SELECT part_id, cell FROM grid_cells")).all()
            whole = conn.execute(
                text(
                    "SELECT count(*) FROM grids g WHERE NOT ST_Equals(g.geom,"
                    " (SELECT ST_Union(p.geom) FROM grid_parts p WHERE p.grid_id = g.id))"
                )
            ).scalar()
            n_disc = conn.execute(
                text(
                    "SELECT count(*) FROM grid_parts p JOIN grids g ON g.id = p.grid_id"
                    " WHERE g.code = 'KD'"
                )
            ).scalar()
        expected = sorted((pid, c) for pid, *b in parts for c in _lattice(tuple(b)))
        assert sorted(listed) == expected
        assert len(parts) == 8 + 1 + 2 + n_disc and n_disc > 1
        assert {c >= COARSE for _, c in listed} == {True, False}
        assert whole == 0
        assert _orphans(eng) == 0
        with eng.begin() as conn:
            conn.execute(text("SELECT gis_fill_grid_cards()"))
            stale = conn.execute(
                text(
                    "SELECT count(*) FROM grids g"
                    " LEFT JOIN grid_cards c ON c.grid_id = g.id"
                    " LEFT JOIN gis_grid_cards(ARRAY[g.id], now()) d ON true"
                    " WHERE g.valid_to IS NULL AND (c.public IS DISTINCT FROM d.public"
                    " OR c.private IS DISTINCT FROM d.private)"
                )
            ).scalar()
            people = conn.execute(
                text("SELECT count(*) FROM grid_cards WHERE public LIKE '%负责人%'")
            ).scalar()
        assert stale == 0 and people == 15 + 3
    finally:
        eng.dispose()
        databases.drop(url)
