"""The layer catalog: the shipped YAML loads, broken YAML is reported precisely, sync upserts."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection, Engine, text

from gis_service.catalog import LayerError, load_catalog, sync_catalog
from gis_service.catalog.schemas import Catalog

LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"

MANHOLE_COVERS = {
    "water_supply_cover",
    "sewage_cover",
    "rain_cover",
    "power_cover",
    "telecom_cover",
    "gas_cover",
    "heat_cover",
}
REQUIRED_FACILITY_TYPES = MANHOLE_COVERS | {
    "sewer_bend_well",
    "sewer_pipe",
    "ev_charger",
    "ebike_charger",
    "ebike_shed",
    "wall",
    "camera",
    "fitness_equipment",
    "bench",
    "fence",
    "pavilion",
    "smart_toilet",
}
LINE_TYPES = {"sewer_pipe", "wall", "fence"}
# Every event the seed articles name (domain.md), by the code that carries it.
REQUIRED_CATEGORIES = {
    "sewer_blockage",
    "waterlogging",
    "manhole_cover_sunken",
    "manhole_cover_missing",
    "wall_damage",
    "road_collapse",
    "solar_heater_leak",
    "charger_fault",
    "flying_wire_charging",
    "clutter",
    "graffiti",
    "parking_disorder",
    "door_access_fault",
    "neighbour_dispute",
}
LINE_FORMAT = re.compile(r"^layers/\S+?\.yaml(: field '[^']+')?: .+$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(LAYERS_DIR)


@pytest.fixture
def layers_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped layers to break."""
    target = tmp_path / "layers"
    shutil.copytree(LAYERS_DIR, target)
    return target


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _problems(layers_dir: Path) -> LayerError:
    with pytest.raises(LayerError) as info:
        load_catalog(layers_dir)
    return info.value


# ---- the shipped catalog -----------------------------------------------------------------------


def test_shipped_catalog_covers_the_seed_facilities(catalog: Catalog) -> None:
    assert set(catalog.facility_types) >= REQUIRED_FACILITY_TYPES
    covers = [
        f
        for f in catalog.facility_types.values()
        if f.name_zh.endswith("井盖") and f.class_code.startswith("01")
    ]
    assert len(covers) >= 7
    assert {f.class_code for f in covers} >= {"0101", "0102", "0103"}
    for code in LINE_TYPES:
        assert catalog.facility_types[code].geometry == "line"
    for code in REQUIRED_FACILITY_TYPES - LINE_TYPES:
        assert catalog.facility_types[code].geometry == "point"


def test_shipped_facility_types_are_well_formed(catalog: Catalog) -> None:
    class_codes = [f.class_code for f in catalog.facility_types.values()]
    assert len(class_codes) == len(set(class_codes))
    for code, ft in catalog.facility_types.items():
        assert (LAYERS_DIR / "facility_types" / f"{code}.yaml").is_file()
        if ft.class_code.startswith("9"):
            assert ft.class_note, code
        assert ft.demo.per_micro_grid > 0, code
    # manhole covers are dense, cameras sparse (益民园: 275 cameras for a whole community)
    assert catalog.facility_types["sewage_cover"].demo.per_micro_grid >= 1
    assert catalog.facility_types["camera"].demo.per_micro_grid == pytest.approx(0.3)
    assert catalog.facility_types["sewer_pipe"].attributes["material"].type == "enum"


def test_shipped_categories_resolve(catalog: Catalog) -> None:
    assert set(catalog.hazard_categories) >= REQUIRED_CATEGORIES
    assert "zz_municipal_facilities" in catalog.departments
    assert catalog.departments["zz_municipal_facilities"].name_zh == "郑州市市政设施事务中心"
    for code, cat in catalog.hazard_categories.items():
        assert cat.default_department in catalog.departments, code
        assert set(cat.facility_types) <= set(catalog.facility_types), code
    # 四必报: every one of the four report classes has at least one category
    assert {c.report_class for c in catalog.hazard_categories.values()} == {
        "safety_hazard",
        "instability",
        "resident_request",
        "illegal_clue",
    }
    sunken = catalog.hazard_categories["manhole_cover_sunken"]
    assert set(sunken.facility_types) >= MANHOLE_COVERS
    assert catalog.hazard_categories["sewer_blockage"].default_department == (
        "zz_municipal_facilities"
    )


def test_a_new_facility_type_needs_only_a_file(layers_copy: Path) -> None:
    (layers_copy / "facility_types" / "street_light.yaml").write_text(
        "code: street_light\nname_zh: 路灯\nname_en: Street light\nclass_code: '0118'\n"
        "major_class_zh: 公用设施\ngeometry: point\nicon: lightbulb\ncolor: '#FFD600'\n",
        encoding="utf-8",
    )
    catalog = load_catalog(layers_copy)
    assert catalog.facility_types["street_light"].demo.per_micro_grid == 0.5
    assert catalog.facility_types["street_light"].attributes == {}


# ---- broken copies -----------------------------------------------------------------------------


def _bad_syntax(layers: Path) -> None:
    (layers / "hazard_categories" / "sewer_blockage.yaml").write_text(
        "code: sewer_blockage\nname_zh: [下水道堵塞\nname_en: Sewer blockage\n", encoding="utf-8"
    )


def _missing_field(layers: Path) -> None:
    _edit(layers / "hazard_categories" / "sewer_blockage.yaml", lambda d: d.pop("time_limits"))


def _wrong_type(layers: Path) -> None:
    _edit(
        layers / "hazard_categories" / "sewer_blockage.yaml",
        lambda d: d.update(duplicate_radius_m="far"),
    )


def _wrong_nested_type(layers: Path) -> None:
    _edit(
        layers / "facility_types" / "sewer_pipe.yaml",
        lambda d: d["attributes"]["material"].update(type="text"),
    )


def _unknown_field(layers: Path) -> None:
    _edit(layers / "facility_types" / "bench.yaml", lambda d: d.update(colour="#000000"))


def _code_not_file_name(layers: Path) -> None:
    _edit(layers / "facility_types" / "wall.yaml", lambda d: d.update(code="walls"))


def _unknown_department(layers: Path) -> None:
    _edit(
        layers / "hazard_categories" / "clutter.yaml",
        lambda d: d.update(default_department="nobody_at_all"),
    )


def _unknown_facility_type(layers: Path) -> None:
    _edit(
        layers / "hazard_categories" / "camera_fault.yaml",
        lambda d: d.update(facility_types=["camera", "drone"]),
    )


def _duplicate_department(layers: Path) -> None:
    _edit(layers / "departments.yaml", lambda d: d.append(dict(d[0])))


def _unquoted_class_code(layers: Path) -> None:
    path = layers / "facility_types" / "bench.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('class_code: "0407"', "class_code: 0407"),
        encoding="utf-8",
    )


def _roles(change: Callable[[list[dict]], None]) -> Callable[[Path], None]:
    return lambda layers: _edit(layers / "assignment_roles.yaml", change)


def _role(code: str, **fields: Any) -> Callable[[list[dict]], None]:
    def change(roles: list[dict]) -> None:
        next(r for r in roles if r["code"] == code).update(fields)

    return change


BROKEN = [
    (
        "role_rank",
        _roles(_role("volunteer", rank=30)),
        "assignment_roles.yaml",
        "[8].rank",
        "also the rank of role 'grid_leader'",
    ),
    (
        "two_leaders",
        _roles(_role("grid_member", primary_for=["grid"])),
        "assignment_roles.yaml",
        "[4].primary_for",
        "role 'grid_leader' already leads grids of level grid",
    ),
    (
        "leads_elsewhere",
        _roles(_role("building_head", primary_for=["street"])),
        "assignment_roles.yaml",
        "[6].primary_for",
        "not held there",
    ),
    (
        "role_level",
        _roles(_role("volunteer", levels=["household"])),
        "assignment_roles.yaml",
        "[8].levels[0]",
        "household",
    ),
    (
        "points_role",
        lambda layers: _edit(
            layers / "assessment.yaml", lambda d: d["points_roles"].append("chief")
        ),
        "assessment.yaml",
        "points_roles[4]",
        "unknown role 'chief'",
    ),
    (
        "dup_role",
        _roles(lambda roles: roles.append(dict(roles[0]))),
        "assignment_roles.yaml",
        "[9].code",
        "duplicate role code",
    ),
    ("bad_yaml", _bad_syntax, "hazard_categories/sewer_blockage.yaml", "", "line 3, column"),
    ("missing", _missing_field, "hazard_categories/sewer_blockage.yaml", "time_limits", "missing"),
    ("type", _wrong_type, "hazard_categories/sewer_blockage.yaml", "duplicate_radius_m", "number"),
    (
        "nested",
        _wrong_nested_type,
        "facility_types/sewer_pipe.yaml",
        "attributes.material.type",
        "'enum'",
    ),
    ("unknown", _unknown_field, "facility_types/bench.yaml", "colour", "did you mean 'color'"),
    ("code", _code_not_file_name, "facility_types/wall.yaml", "code", "rename"),
    (
        "department",
        _unknown_department,
        "hazard_categories/clutter.yaml",
        "default_department",
        "nobody_at_all",
    ),
    (
        "facility",
        _unknown_facility_type,
        "hazard_categories/camera_fault.yaml",
        "facility_types[1]",
        "drone",
    ),
    ("dup_dept", _duplicate_department, "departments.yaml", "[16].code", "duplicate"),
    ("class_code", _unquoted_class_code, "facility_types/bench.yaml", "class_code", "quote"),
]


@pytest.mark.parametrize(
    ("breaker", "file", "field", "says"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_copy_names_file_and_field(
    layers_copy: Path,
    breaker: Callable[[Path], None],
    file: str,
    field: str,
    says: str,
) -> None:
    breaker(layers_copy)
    err = _problems(layers_copy)
    rel = f"layers/{file}"
    matching = [p for p in err.problems if p.file == rel and p.field == field]
    assert matching, str(err)
    assert says in matching[0].message
    expected = f"{rel}: field '{field}': " if field else f"{rel}: "
    assert expected in str(err)
    for line in str(err).splitlines():
        assert LINE_FORMAT.match(line), line


def test_all_problems_are_reported_at_once(layers_copy: Path) -> None:
    for breaker in (_bad_syntax, _unknown_field, _code_not_file_name, _unknown_department):
        breaker(layers_copy)
    err = _problems(layers_copy)
    files = {p.file for p in err.problems}
    assert files >= {
        "layers/hazard_categories/sewer_blockage.yaml",
        "layers/facility_types/bench.yaml",
        "layers/facility_types/wall.yaml",
        "layers/hazard_categories/clutter.yaml",
    }
    assert len(str(err).splitlines()) == len(err.problems)
    syntax = next(p for p in err.problems if p.file.endswith("sewer_blockage.yaml"))
    assert syntax.line == 3
    # validation errors carry the line they point at
    unknown = next(p for p in err.problems if p.field == "colour")
    assert unknown.line is not None and f"(line {unknown.line})" in unknown.message


def test_missing_folders_are_problems(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="layers folder not found"):
        load_catalog(tmp_path / "layers")
    (tmp_path / "layers").mkdir()
    err = _problems(tmp_path / "layers")
    assert {p.file for p in err.problems} == {
        "layers/assessment.yaml",
        "layers/calendar.yaml",
        "layers/care.yaml",
        "layers/departments.yaml",
        "layers/assignment_roles.yaml",
        "layers/facility_types",
        "layers/hazard_categories",
        "layers/services.yaml",
    }


# ---- people under care (七必访) ------------------------------------------------------------------


def test_shipped_care_categories_are_the_seven_visits(catalog: Catalog) -> None:
    names = {c.name_zh: c.visit_every_days for c in catalog.care.categories}
    assert set(names) == {
        "困难家庭", "孤寡老人", "困境儿童", "残疾人家庭", "退役军人", "生活困难的党员", "重点人员"
    }  # fmt: skip
    assert names["孤寡老人"] < names["困难家庭"]
    assert catalog.care.names()["低保户"] == "hardship_family"


def test_care_file_errors_name_the_field(layers_copy: Path) -> None:
    path = layers_copy / "care.yaml"

    def zero(data: Any) -> None:
        data["categories"][0]["visit_every_days"] = 0

    def alias(data: Any) -> None:
        data["categories"][0]["visit_every_days"] = 7
        data["categories"][1]["aliases"] = ["孤寡老人"]

    _edit(path, zero)
    err = _problems(layers_copy)
    assert [(p.file, p.field) for p in err.problems] == [
        ("layers/care.yaml", "categories[0].visit_every_days")
    ]
    assert err.problems[0].line is not None
    _edit(path, alias)
    err = _problems(layers_copy)
    assert len(err.problems) == 1 and "孤寡老人" in str(err) and "both" in str(err)


def test_duplicate_yaml_keys_are_refused(layers_copy: Path) -> None:
    path = layers_copy / "hazard_categories" / "graffiti.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "snap_radius_m: 1\n", encoding="utf-8")
    err = _problems(layers_copy)
    assert "duplicate key 'snap_radius_m'" in str(err)


# ---- sync --------------------------------------------------------------------------------------


def _active_codes(conn: Connection, table: str) -> set[str]:
    # table names come from the fixed tuple below, never from input
    rows = conn.execute(text(f"SELECT code FROM {table} WHERE active"))
    return {r.code for r in rows}


def _row_count(conn: Connection, table: str) -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


TABLES = ("departments", "facility_types", "hazard_categories")


def _without_facility_type(layers: Path, victim: str) -> None:
    (layers / "facility_types" / f"{victim}.yaml").unlink()
    for path in (layers / "hazard_categories").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if victim in data.get("facility_types", []):
            _edit(
                path,
                lambda d: d.update(facility_types=[f for f in d["facility_types"] if f != victim]),
            )


def test_sync_catalog(engine: Engine, catalog: Catalog, layers_copy: Path) -> None:
    _without_facility_type(layers_copy, "pavilion")
    reduced = load_catalog(layers_copy)
    assert "pavilion" not in reduced.facility_types

    with engine.connect() as conn:
        trans = conn.begin()
        try:
            counts = sync_catalog(conn, catalog)
            sizes = {t: len(getattr(catalog, t)) for t in TABLES}
            for table in TABLES:
                assert counts[table] == sizes[table]
                assert _active_codes(conn, table) == set(getattr(catalog, table))
            totals = {t: _row_count(conn, t) for t in TABLES}

            row = conn.execute(
                text(
                    "SELECT name_zh, class_code, geometry_kind, icon, color, "
                    "attribute_schema -> 'material' ->> 'type' AS material_type, "
                    "definition ->> 'major_class_zh' AS major "
                    "FROM facility_types WHERE code = :code"
                ),
                {"code": "sewer_pipe"},
            ).one()
            pipe = catalog.facility_types["sewer_pipe"]
            assert (row.name_zh, row.class_code, row.geometry_kind) == (
                pipe.name_zh,
                pipe.class_code,
                "line",
            )
            assert (row.icon, row.color, row.material_type) == (pipe.icon, pipe.color, "enum")
            assert row.major == pipe.major_class_zh

            cat = conn.execute(
                text(
                    "SELECT default_department_code, facility_types, sla_hours, time_limits, "
                    "standard_class, definition ->> 'report_class' AS report_class "
                    "FROM hazard_categories WHERE code = 'sewer_blockage'"
                )
            ).one()
            assert cat.default_department_code == "zz_municipal_facilities"
            assert cat.facility_types == catalog.hazard_categories["sewer_blockage"].facility_types
            assert cat.sla_hours == catalog.hazard_categories["sewer_blockage"].sla_hours
            assert cat.time_limits["handle"] == {
                "amount": 2,
                "unit": "work_days",
                "text": "2 工作日",
            }
            assert cat.standard_class == {
                "kind": "event",
                "code": "0404",
                "major_zh": "突发事件",
                "minor_zh": "下水道堵塞或破损",
                "source": "inferred",
            }
            assert cat.report_class == "resident_request"

            # idempotent: same counts, nothing retired, no new rows
            again = sync_catalog(conn, catalog)
            assert again == {
                **sizes,
                **{f"{t}_deactivated": 0 for t in TABLES},
                "care_categories": len(catalog.care.categories),
                "care_categories_deactivated": 0,
                "work_days": counts["work_days"],
                "assignment_roles": len(catalog.assignment_roles),
                "assignment_roles_deactivated": 0,
            }
            assert counts["work_days"] > 0  # holidays and 调休 days of the calendar's years
            assert {t: _row_count(conn, t) for t in TABLES} == totals

            # a removed file retires its row but keeps it (facilities may reference it)
            retired = sync_catalog(conn, reduced)
            assert retired["facility_types_deactivated"] == 1
            assert retired["departments_deactivated"] == 0
            assert retired["hazard_categories_deactivated"] == 0
            active = conn.execute(
                text("SELECT active FROM facility_types WHERE code = 'pavilion'")
            ).scalar_one()
            assert active is False
            assert _row_count(conn, "facility_types") == totals["facility_types"]
            fts = conn.execute(
                text("SELECT facility_types FROM hazard_categories WHERE code = :c"),
                {"c": "public_facility_damage"},
            ).scalar_one()
            assert "pavilion" not in fts

            # and the file coming back revives it
            sync_catalog(conn, catalog)
            assert "pavilion" in _active_codes(conn, "facility_types")
        finally:
            trans.rollback()

    # The database is shared by the whole session: leave the real catalog synced and active.
    with engine.begin() as conn:
        sync_catalog(conn, catalog)
    with engine.connect() as conn:
        for table in TABLES:
            assert set(getattr(catalog, table)) <= _active_codes(conn, table)


# ---- standard classes, time limits and the calendar ------------------------------------------
CLASS_MISTAKES = [
    # an event 大类 whose name is not the standard's
    (
        "hazard_categories/clutter.yaml",
        lambda d: d["standard_class"].update(major_zh="环境卫生"),
        "called 市容环境 in the standard",
    ),
    # a 0x code claiming to be a local extension
    (
        "hazard_categories/clutter.yaml",
        lambda d: d["standard_class"].update(source="local"),
        "9x codes are local",
    ),
    # 07 is no event 大类 of the standard
    (
        "hazard_categories/clutter.yaml",
        lambda d: d["standard_class"].update(code="0701"),
        "not an event 大类",
    ),
    # a component problem concerns facilities
    (
        "hazard_categories/wall_damage.yaml",
        lambda d: d.update(facility_types=[]),
        "list their facility_types",
    ),
    # a component problem takes the facility's class, not a code of its own
    (
        "hazard_categories/wall_damage.yaml",
        lambda d: d["standard_class"].update(code="0101"),
        "takes its class from the facility",
    ),
    (
        "hazard_categories/clutter.yaml",
        lambda d: d["time_limits"].update(handle="2 days"),
        "工作日",
    ),
    (
        "facility_types/wall.yaml",
        lambda d: d.update(class_source="inferred"),
        "local extensions",
    ),
    (
        "facility_types/bench.yaml",
        lambda d: d.update(major_class_zh="绿化"),
        "called 园林绿化 in the standard",
    ),
    (
        "calendar.yaml",
        lambda d: d.update(working_hours=["13:00-12:00"]),
        "ends before it starts",
    ),
    (
        "assessment.yaml",
        lambda d: d["weights"].update(close_rate=0.5),
        "add up to 1",
    ),
    (
        "assessment.yaml",
        lambda d: d.update(grades={"优": 90, "良": 95, "差": 0}),
        "highest threshold down",
    ),
    (
        "assessment.yaml",
        lambda d: d["points"].update(nonsense=3),
        "points.nonsense",
    ),
    (
        "calendar.yaml",
        lambda d: d.update(days_off={"2026-10-10": "x"}, workdays={"2026-10-10": "y"}),
        "listed as day off and as workday",
    ),
]


@pytest.mark.parametrize(("file", "change", "fragment"), CLASS_MISTAKES)
def test_class_and_limit_mistakes_are_named(
    layers_copy: Path, file: str, change: Callable[[Any], None], fragment: str
) -> None:
    _edit(layers_copy / file, change)
    err = _problems(layers_copy)
    assert fragment in str(err), str(err)
    assert any(p.file.endswith(file) for p in err.problems)


def test_shipped_classes_name_their_source(catalog: Catalog) -> None:
    sources = {c.standard_class.source for c in catalog.hazard_categories.values()}
    assert sources == {"standard", "inferred", "local"}
    kinds = {c.code: c.standard_class.kind for c in catalog.hazard_categories.values()}
    assert kinds["manhole_cover_sunken"] == "component" and kinds["road_collapse"] == "event"
    assert catalog.facility_types["sewage_cover"].class_source == "inferred"
    assert catalog.facility_types["ebike_charger"].class_source == "local"


def test_roles_catalogue_syncs_only_what_changed(
    engine: Engine, catalog: Catalog, layers_copy: Path
) -> None:
    assert catalog.assignment_roles["grid_leader"].name_zh == "网格长"
    assert catalog.assignment_roles["grid_leader"].primary_for == ["grid"]
    _edit(layers_copy / "assignment_roles.yaml", lambda d: d.pop())  # volunteer leaves
    _roles(_role("building_head", name_zh="楼长"))(layers_copy)
    reduced = load_catalog(layers_copy)

    def stamps(conn: Connection) -> dict[str, Any]:
        rows = conn.execute(text("SELECT code, synced_at, active, name_zh FROM assignment_roles"))
        return {r.code: (r.synced_at, r.active, r.name_zh) for r in rows}

    with engine.connect() as conn:
        trans = conn.begin()
        try:
            sync_catalog(conn, catalog)
            trans.commit()
            trans = conn.begin()
            before = stamps(conn)
            sync_catalog(conn, catalog)  # unchanged: not a row written
            assert stamps(conn) == before
            counts = sync_catalog(conn, reduced)
            assert counts["assignment_roles_deactivated"] == 1
            after = stamps(conn)
            assert after["volunteer"][1] is False and after["building_head"][2] == "楼长"
            assert after["grid_leader"] == before["grid_leader"]
            sync_catalog(conn, catalog)
            assert stamps(conn)["volunteer"][1] is True
        finally:
            trans.rollback()
