"""The demo district: generator invariants in pure Python, then the load into PostGIS."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import Engine, text

from gis_service.catalog import load_catalog
from gis_service.catalog.schemas import Catalog
from gis_service.config import PROJECT_ROOT
from gis_service.demo.generator import (
    GENERATOR_VERSION,
    HISTORY_DAYS,
    DemoData,
    DemoGrid,
    generate,
)
from gis_service.demo.loader import DemoError, load_demo, read_boundary
from gis_service.hazards.states import SOURCE_NOTES
from gis_service.hazards.workflow import is_allowed, target_status
from tests.support.databases import DEMO, DEMO_BOUNDARY, DEMO_SEED, Databases

SEED = 20241122
NOW = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
BOUNDARY_PATH = PROJECT_ROOT / "data" / "erqi_410103_wgs84.geojson"
CODE_RE = re.compile(r"^[0-9A-Za-z._-]{1,64}$")
TERRITORIAL = ("street", "community", "grid", "micro_grid")
STATUSES = (
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "in_progress",
    "resolved",
    "verified",
    "closed",
)
_TO_METRES = Transformer.from_crs(4326, 4547, always_xy=True)  # CGCS2000 / 3° GK CM 114E


def _metric(geoms: list) -> np.ndarray:
    """Geometries in metres; the same input coordinates give the same output coordinates,
    so shared edges stay bit-identical."""
    return shapely.transform(
        np.asarray(geoms, dtype=object),
        lambda xy: np.column_stack(_TO_METRES.transform(xy[:, 0], xy[:, 1])),
    )


# ---- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROJECT_ROOT / "layers")


@pytest.fixture(scope="module")
def data(catalog: Catalog) -> DemoData:
    return generate(read_boundary(BOUNDARY_PATH), catalog, SEED, NOW)


@pytest.fixture(scope="module")
def by_code(data: DemoData) -> dict[str, DemoGrid]:
    return {g.code: g for g in data.grids}


@pytest.fixture(scope="module")
def children(data: DemoData) -> dict[str, list[DemoGrid]]:
    out: dict[str, list[DemoGrid]] = defaultdict(list)
    for g in data.grids:
        if g.parent_code and g.level != "special":
            out[g.parent_code].append(g)
    return out


def _street(data: DemoData, name: str) -> DemoGrid:
    (street,) = [g for g in data.grids if g.level == "street" and g.name == name]
    return street


def _under(data: DemoData, street: DemoGrid, level: str) -> list[DemoGrid]:
    return [g for g in data.grids if g.level == level and g.code.startswith(street.code)]


# ---- the generator, in pure Python --------------------------------------------------------
def test_sizes_follow_the_seed_articles(data: DemoData) -> None:
    streets = [g for g in data.grids if g.level == "street"]
    assert 8 <= len(streets) <= 10
    songshan = _street(data, "嵩山路街道")
    assert len(_under(data, songshan, "community")) == 19
    assert len(_under(data, songshan, "grid")) == 170
    assert len(_under(data, songshan, "micro_grid")) == 940
    assert len(_under(data, songshan, "special")) == 36
    minggong = _street(data, "铭功路街道")
    assert len(_under(data, minggong, "grid")) == 45
    micro = _under(data, minggong, "micro_grid")
    assert len(micro) == 190
    assert sum(m.attributes["unmanaged_compound"] for m in micro) == 57
    assert minggong.attributes["unmanaged_compounds"] == 57
    wulibao = _street(data, "五里堡街道")
    assert "五里堡南社区" in {c.name for c in _under(data, wulibao, "community")}
    assert "星苑社区" in {c.name for c in _under(data, songshan, "community")}
    total_micro = sum(g.level == "micro_grid" for g in data.grids)
    assert 1500 <= total_micro <= 5000


def test_other_names_are_plainly_synthetic(data: DemoData) -> None:
    real = {"嵩山路街道", "铭功路街道", "五里堡街道", "五里堡南社区", "星苑社区"}
    for g in data.grids:
        if g.level in ("street", "community") and g.name not in real:
            assert g.name.startswith("演示"), g.name
        if g.level == "special":
            assert g.name.startswith("演示"), g.name
            assert g.attributes["unit_type"] in ("school", "hospital", "company", "industrial_park")


def test_codes_are_unique_and_nested(data: DemoData, by_code: dict[str, DemoGrid]) -> None:
    assert len(by_code) == len(data.grids)
    lengths = {"street": 9, "community": 12, "grid": 15, "micro_grid": 18, "special": 15}
    parent_level = {
        "community": "street",
        "grid": "community",
        "micro_grid": "grid",
        "special": "community",
    }
    for g in data.grids:
        assert CODE_RE.match(g.code) and g.code.isdigit(), g.code
        assert len(g.code) == lengths[g.level], g.code
        assert g.code.startswith("410103")
        if g.level == "street":
            assert g.parent_code is None
            continue
        parent = by_code[g.parent_code]
        assert parent.level == parent_level[g.level]
        assert g.code[: len(parent.code)] == parent.code
        # Serials 900+ under a community are special grids; territorial ones stay below.
        serial = int(g.code[len(parent.code) :])
        assert (serial >= 900) == (g.level == "special"), g.code


def test_geometries_are_valid_multipolygons(data: DemoData) -> None:
    geoms = [g.geom for g in data.grids]
    assert all(geom.geom_type == "MultiPolygon" for geom in geoms)
    assert shapely.is_valid(geoms).all()
    parts = shapely.get_parts(_metric(geoms))
    # No slivers: the smallest micro-grid is a building plot, not a crack between cells.
    assert shapely.area(parts).min() > 100
    assert not shapely.is_empty(parts).any()


def test_children_tile_their_parent_exactly(
    data: DemoData, by_code: dict[str, DemoGrid], children: dict[str, list[DemoGrid]]
) -> None:
    parents = [g for g in data.grids if g.level in ("street", "community", "grid")]
    assert all(children[p.code] for p in parents)
    for p in parents:
        kids = children[p.code]
        parent_m, *kids_m = _metric([p.geom] + [k.geom for k in kids])
        union = shapely.union_all(kids_m)
        gap_or_spill = shapely.area(shapely.symmetric_difference(parent_m, union))
        overlap = sum(shapely.area(kids_m)) - shapely.area(parent_m)
        assert gap_or_spill < 1.0, (p.code, gap_or_spill)
        assert abs(overlap) < 1.0, (p.code, overlap)
        assert all(p.geom.covers(k.geom) for k in kids), p.code


def test_streets_cover_the_district(data: DemoData) -> None:
    # In degrees: the streets' union is the district snapped to 1e-7°, exactly.
    district = shapely.set_precision(read_boundary(BOUNDARY_PATH), 1e-7)
    streets = shapely.union_all([g.geom for g in data.grids if g.level == "street"])
    m2_per_deg2 = 110_900 * 91_500  # at 34.7°N
    assert shapely.area(shapely.symmetric_difference(district, streets)) * m2_per_deg2 < 1.0


def test_special_grids_sit_inside_one_community(
    data: DemoData, by_code: dict[str, DemoGrid]
) -> None:
    special = [g for g in data.grids if g.level == "special"]
    assert special
    for g in special:
        parent = by_code[g.parent_code]
        assert parent.level == "community"
        assert parent.geom.contains(g.geom), g.code


def test_every_grid_has_one_primary_and_the_right_roles(data: DemoData) -> None:
    keys = [p.key for p in data.people]
    assert len(set(keys)) == len(keys)
    primaries = Counter(a.grid_code for a in data.assignments if a.is_primary)
    assert all(primaries[g.code] == 1 for g in data.grids)
    roles: dict[str, set[str]] = defaultdict(set)
    for a in data.assignments:
        roles[a.grid_code].add(a.role)
    expected = {
        "street": {"party_secretary", "director"},
        "community": {"party_secretary", "director", "community_police"},
        "grid": {"grid_leader", "grid_member"},
        "micro_grid": {"micro_grid_member", "building_head"},
        "special": {"special_grid_leader"},
    }
    for g in data.grids:
        assert roles[g.code] == expected[g.level], g.code
    for p in data.people:
        assert re.fullmatch(r"0371-555\d{5}", p.work_phone), p.work_phone
        assert re.fullmatch(r"100-\d{4}-\d{4}", p.mobile_phone), p.mobile_phone
        assert 2 <= len(p.name) <= 3


def test_facilities_sit_inside_micro_grids(data: DemoData, catalog: Catalog) -> None:
    micro = [g for g in data.grids if g.level == "micro_grid"]
    tree = shapely.STRtree([g.geom for g in micro])
    geoms = [f.geom for f in data.facilities]
    # Each facility lies inside exactly one micro-grid, away from its boundary.
    pairs = tree.query(geoms, predicate="within")
    assert np.array_equal(np.sort(pairs[0]), np.arange(len(geoms)))
    codes = [f.code for f in data.facilities]
    assert len(set(codes)) == len(codes)
    per_type = Counter(f.type_code for f in data.facilities)
    for code, ft in catalog.facility_types.items():
        expected = ft.demo.per_micro_grid * len(micro)
        assert abs(per_type[code] - expected) < 5 * expected**0.5 + 10, code
    for f in data.facilities:
        ft = catalog.facility_types[f.type_code]
        assert re.fullmatch(rf"410103{ft.class_code}\d{{6}}", f.code), f.code
        assert f.geom.geom_type == ("Point" if ft.geometry == "point" else "LineString")
        assert f.status in ("planned", "in_service", "damaged", "under_repair", "retired")
    statuses = Counter(f.status for f in data.facilities)
    assert statuses["in_service"] > 0.8 * len(data.facilities)
    assert statuses["damaged"] > 0 and statuses["under_repair"] > 0


def test_hazards_cover_every_state_with_consistent_events(data: DemoData, catalog: Catalog) -> None:
    hazards = data.hazards
    assert 150 <= len(hazards) <= 600
    assert set(Counter(h.status for h in hazards)) == set(STATUSES)
    assert len({h.public_code for h in hazards}) == len(hazards)
    assert {h.source for h in hazards} == {"patrol", "resident", "camera", "hotline", "superior"}
    actions = Counter(e.action for h in hazards for e in h.events)
    assert actions["fail_verification"] >= 1 and actions["escalate"] >= 1
    facilities = {f.code: f for f in data.facilities}
    people = {p.key for p in data.people}
    earliest = NOW - timedelta(days=HISTORY_DAYS)
    overdue = 0
    for h in hazards:
        cat = catalog.hazard_categories[h.category_code]
        assert h.public_code.startswith("DEMO-")
        assert h.description and h.severity in ("low", "medium", "high", "critical")
        ev = h.events
        assert ev[0].action == "report" and ev[0].from_status is None
        assert ev[0].to_status == "reported" and ev[0].at == h.reported_at
        for before, after in pairwise(ev):
            assert after.from_status == before.to_status, h.public_code
            assert after.at >= before.at, h.public_code
        assert ev[-1].to_status == h.status
        assert earliest <= h.reported_at and ev[-1].at <= NOW
        assert all(e.actor_person_key is None or e.actor_person_key in people for e in ev)
        done = {e.action for e in ev}
        assert (h.accepted_at is not None) == ("accept" in done)
        assert (h.dispatched_at is not None) == ("dispatch" in done)
        assert (h.resolved_at is not None) == (h.status in ("resolved", "verified", "closed"))
        assert (h.verified_at is not None) == (h.status in ("verified", "closed"))
        assert (h.closed_at is not None) == (h.status == "closed")
        if h.dispatched_at is not None:
            # the generator's own clock; the loader recomputes it in working time
            assert h.due_at == h.dispatched_at + timedelta(hours=cat.sla_hours)
            assert (h.assignee_person_key is None) != (h.assignee_department_code is None)
            if h.status in ("dispatched", "in_progress") and h.due_at < NOW:
                overdue += 1
        else:
            assert h.due_at is None and h.assignee_person_key is None
        if h.facility_code is not None:
            fac = facilities[h.facility_code]
            assert fac.type_code in cat.facility_types
            # Within ~2 m of the facility (1.5 m GPS scatter).
            assert fac.geom.distance(shapely.Point(h.lon, h.lat)) < 2.5e-5
        elif cat.facility_types:
            pytest.fail(f"{h.public_code}: {cat.code} hazards should sit at a facility")
    assert overdue >= 3


def test_history_follows_the_service_workflow_and_wording(data: DemoData) -> None:
    """Every demo step is a move the service's workflow allows from the state it starts in,
    leading where the workflow says, and every report carries the note the service writes
    for its source (群众上报 for residents)."""
    for h in data.hazards:
        report, *moves = h.events
        assert report.note == SOURCE_NOTES[h.source], h.public_code
        for e in moves:
            assert is_allowed(e.action, e.from_status), (h.public_code, e.action, e.from_status)
            assert e.to_status == target_status(e.action, e.from_status), h.public_code
    assert "群众上报" in {h.events[0].note for h in data.hazards}


def test_the_seed_story_sewer_blockages(data: DemoData, by_code: dict[str, DemoGrid]) -> None:
    story = [
        h
        for h in data.hazards
        if h.category_code == "sewer_blockage"
        and by_code[by_code[by_code[h.micro_grid_code].parent_code].parent_code].name
        == "五里堡南社区"
    ]
    assert len(story) >= 3
    assert any(by_code[h.micro_grid_code].name == "51号院" for h in story)
    assert any(h.status == "closed" for h in story)


def test_same_seed_same_district(data: DemoData, catalog: Catalog) -> None:
    later = NOW + timedelta(days=3)
    again = generate(read_boundary(BOUNDARY_PATH), catalog, SEED, later)
    assert [g.code for g in again.grids] == [g.code for g in data.grids]
    assert [g.name for g in again.grids] == [g.name for g in data.grids]
    assert all(a.geom.wkb == b.geom.wkb for a, b in zip(again.grids, data.grids, strict=True))
    assert [p.name for p in again.people] == [p.name for p in data.people]
    assert [(f.code, f.geom.wkb) for f in again.facilities] == [
        (f.code, f.geom.wkb) for f in data.facilities
    ]
    assert [(h.public_code, h.lon, h.lat, h.status) for h in again.hazards] == [
        (h.public_code, h.lon, h.lat, h.status) for h in data.hazards
    ]
    # Only the clock moves.
    assert all(
        a.reported_at - b.reported_at == timedelta(days=3)
        for a, b in zip(again.hazards, data.hazards, strict=True)
    )


# ---- the load into PostGIS ----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_engine(databases: Databases) -> Iterator[Engine]:
    """A copy of the loaded demo database of our own, so the shared one is left alone."""
    engine = databases.engine("demo", DEMO)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def loaded(databases: Databases) -> dict:
    """load_demo's report of the load that made the demo template (into a migrated database)."""
    assert DEMO_SEED == SEED and DEMO_BOUNDARY == BOUNDARY_PATH
    return databases.built(DEMO)


def _scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_load_reports_and_stores_its_counts(
    demo_engine: Engine, loaded: dict, data: DemoData
) -> None:
    assert loaded["status"] == "loaded"  # its speed: bench/demo_load.py
    assert set(loaded["timings"]) == {"generate", "delete", "insert"}
    counts = loaded["counts"]
    expected = data.counts()
    # Same seed, same district (only the timestamps differ from the fixture's).
    assert counts == expected
    with demo_engine.connect() as conn:
        by_level = dict(conn.execute(text("SELECT level, count(*) FROM grids GROUP BY 1")).all())
        meta = conn.execute(text("SELECT value FROM service_meta WHERE key = 'demo'")).scalar()
    assert by_level == {
        "street": counts["streets"],
        "community": counts["communities"],
        "grid": counts["grids"],
        "micro_grid": counts["micro_grids"],
        "special": counts["special_grids"],
    }
    assert meta["seed"] == SEED and meta["generator_version"] == GENERATOR_VERSION
    assert meta["counts"] == counts
    for table, key in (
        ("people", "people"),
        ("grid_assignments", "assignments"),
        ("facilities", "facilities"),
        ("hazards", "hazards"),
        ("households", "households"),
        ("care_people", "care_people"),
        ("visits", "visits"),
        ("patrols", "patrols"),
    ):
        assert _scalar(demo_engine, f"SELECT count(*) FROM {table}") == counts[key], table
    # the working history (demo/history.py) adds callbacks, 吹哨 and voids to the events
    history = loaded["history"]
    events = _scalar(demo_engine, "SELECT count(*) FROM hazard_events")
    assert events == counts["hazard_events"] + history["hazard_events"]
    assert min(history.values()) > 0, history


COVERAGE_SAMPLE = """
    WITH parents AS (
        SELECT p.id, p.code, p.geom FROM grids p
         WHERE p.level IN ('street', 'community')
            OR (p.level = 'grid' AND p.code LIKE '410103002%')
    ),
    tiles AS (
        SELECT p.code,
               ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))::geography) AS gap,
               sum(ST_Area(c.geom::geography)) - ST_Area(p.geom::geography) AS overlap,
               bool_and(ST_CoveredBy(c.geom, p.geom)) AS inside
          FROM parents p
          JOIN grids c ON c.parent_id = p.id AND c.level <> 'special'
         GROUP BY p.code, p.geom
    )
    SELECT count(*), max(gap), max(abs(overlap)), bool_and(inside) FROM tiles
"""


def test_coverage_holds_in_postgis(demo_engine: Engine, loaded: dict) -> None:
    with demo_engine.connect() as conn:
        n, gap, overlap, inside = conn.execute(text(COVERAGE_SAMPLE)).one()
        specials_outside = conn.execute(
            text(
                "SELECT count(*) FROM grids c JOIN grids p ON p.id = c.parent_id "
                "WHERE c.level = 'special' AND NOT ST_Within(c.geom, p.geom)"
            )
        ).scalar()
        invalid = conn.execute(
            text("SELECT count(*) FROM grids WHERE NOT ST_IsValid(geom) OR ST_IsEmpty(geom)")
        ).scalar()
    assert n > 200
    assert gap < 1.0 and overlap < 1.0 and inside
    assert specials_outside == 0 and invalid == 0


def test_every_grid_has_exactly_one_primary_in_postgis(demo_engine: Engine, loaded: dict) -> None:
    bad = _scalar(
        demo_engine,
        """
        SELECT count(*) FROM grids g
         WHERE (SELECT count(*) FROM grid_assignments a
                 WHERE a.grid_id = g.id AND a.is_primary) <> 1
        """,
    )
    assert bad == 0


def test_hazards_are_routed_like_live_reports(
    demo_engine: Engine, loaded: dict, data: DemoData
) -> None:
    with demo_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT h.public_code, h.status, h.grid_id, jsonb_array_length(h.grid_chain),
                       h.grid_chain -> -1 ->> 'code', h.responsible_person_id,
                       h.responsible_snapshot ->> 'name', h.department_id,
                       h.facility_code, h.facility_id, g.level
                  FROM hazards h LEFT JOIN grids g ON g.id = h.grid_id
                """
            )
        ).all()
    expected_micro = {h.public_code: h.micro_grid_code for h in data.hazards}
    # the working history voids some reports still waiting for 立案 (作废)
    assert {r[1] for r in rows} == set(STATUSES) | {"voided"}
    for code, _status, grid_id, depth, leaf, person, name, dept, fcode, fid, level in rows:
        assert grid_id is not None and level == "micro_grid", code
        assert depth == 4 and leaf == expected_micro[code], code
        assert person is not None and name, code
        assert dept is not None, code
        assert (fcode is None) == (fid is None), code


def test_events_are_consistent_in_postgis(demo_engine: Engine, loaded: dict) -> None:
    with demo_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT h.public_code, h.status, e.action, e.from_status, e.to_status,
                       e.created_at, e.actor_name
                  FROM hazards h JOIN hazard_events e ON e.hazard_id = h.id
                 ORDER BY h.public_code, e.created_at, e.id
                """
            )
        ).all()
    events: dict[str, list] = defaultdict(list)
    status: dict[str, str] = {}
    for code, st, *event in rows:
        events[code].append(event)
        status[code] = st
    for code, ev in events.items():
        assert ev[0][0] == "report" and ev[0][1] is None, code
        for before, after in pairwise(ev):
            assert after[1] == before[2], code
        assert ev[-1][2] == status[code], code
        assert all(e[4] for e in ev), code  # every step names who took it


def test_reload_is_skipped_then_forced_without_touching_other_rows(
    demo_engine: Engine, loaded: dict, catalog: Catalog
) -> None:
    untouched = """
        SELECT (SELECT updated_at FROM service_meta WHERE key = 'demo'),
               (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM grids),
               (SELECT md5(string_agg(id || ':' || xmin::text, ',' ORDER BY id)) FROM hazards)
    """
    with demo_engine.connect() as conn:
        before = conn.execute(text(untouched)).one()
    again = load_demo(demo_engine, catalog, BOUNDARY_PATH, seed=SEED)
    assert again["status"] == "skipped"
    assert again["counts"] == loaded["counts"]
    with demo_engine.connect() as conn:  # skipped means nothing written (speed: bench/)
        assert conn.execute(text(untouched)).one() == before

    # Rows that are not the demo's: they must survive a forced reload.
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO grids (code, name, level, geom)
                VALUES ('REAL-1', '真实街道', 'street',
                        ST_Multi(ST_MakeEnvelope(113.0, 34.0, 113.01, 34.01, 4326)));
                INSERT INTO people (name, work_phone) VALUES ('真实人员', '0371-1');
                INSERT INTO facilities (code, type_code, geom)
                VALUES ('REAL-F1', 'bench', ST_SetSRID(ST_MakePoint(113.6, 34.7), 4326));
                INSERT INTO hazards (public_code, category_code, description, source, geom)
                VALUES ('REAL-H1', 'other', '真实上报', 'resident',
                        ST_SetSRID(ST_MakePoint(113.6, 34.7), 4326));
                """
            )
        )
    real = """
        SELECT (SELECT count(*) FROM grids WHERE code = 'REAL-1')
             + (SELECT count(*) FROM people WHERE name = '真实人员')
             + (SELECT count(*) FROM facilities WHERE code = 'REAL-F1')
             + (SELECT count(*) FROM hazards WHERE public_code = 'REAL-H1')
    """
    assert _scalar(demo_engine, real) == 4

    forced = load_demo(demo_engine, catalog, BOUNDARY_PATH, seed=SEED, force=True)
    assert forced["status"] == "loaded"
    assert forced["counts"] == loaded["counts"]
    assert forced["deleted"]["grids"] == sum(
        loaded["counts"][k]
        for k in ("streets", "communities", "grids", "micro_grids", "special_grids")
    )
    assert _scalar(demo_engine, real) == 4
    assert _scalar(demo_engine, "SELECT count(*) FROM grids") == forced["deleted"]["grids"] + 1
    assert _scalar(demo_engine, "SELECT count(*) FROM hazards") == loaded["counts"]["hazards"] + 1


def test_reload_refuses_to_orphan_real_grids(
    demo_engine: Engine, loaded: dict, catalog: Catalog
) -> None:
    before = _scalar(demo_engine, "SELECT count(*) FROM grids")
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO grids (code, name, level, parent_id, geom)
                SELECT 'REAL-C1', '真实社区', 'community', id, geom
                  FROM grids WHERE level = 'street' AND attributes->>'demo' = 'true'
                 ORDER BY code LIMIT 1
                """
            )
        )
    try:
        with pytest.raises(DemoError, match="REAL-C1"):
            load_demo(demo_engine, catalog, BOUNDARY_PATH, seed=SEED, force=True)
        # All or nothing: the refused reload left everything as it was.
        assert _scalar(demo_engine, "SELECT count(*) FROM grids") == before + 1
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DELETE FROM grids WHERE code = 'REAL-C1'"))


def test_boundary_file_is_read_as_a_multipolygon(tmp_path: Path) -> None:
    boundary = read_boundary(BOUNDARY_PATH)
    assert boundary.geom_type == "MultiPolygon" and boundary.is_valid
    bad = tmp_path / "line.geojson"
    bad.write_text('{"type": "LineString", "coordinates": [[0, 0], [1, 1]]}')
    with pytest.raises(DemoError):
        read_boundary(bad)
