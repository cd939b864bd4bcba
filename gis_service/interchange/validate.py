"""The rows of each layer (grids, facilities, people) checked and prepared for staging,
with no database and vectorised over the whole file: missing values, codes, levels, types,
statuses, phones and geometry, each finding naming the row and the field."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis_service.facilities.codes import component_code_problem, looks_like_component_code
from gis_service.facilities.states import FACILITY_STATUSES
from gis_service.interchange.checks import (
    CODE_RE,
    LINE,
    MULTILINE,
    MULTIPOINT,
    MULTIPOLYGON,
    PHONE_RE,
    POINT,
    POLYGON,
    TEXT_DRIVERS,
    TYPE_NAMES,
    attributes_json,
    check_codes,
    check_geometry,
    check_required,
    ewkb_hex,
    field_values,
    text_values,
)
from gis_service.interchange.mapping import (
    FALSE_WORDS,
    FIELDS,
    LEVEL_ALIASES,
    TRUE_WORDS,
    FieldMapping,
)
from gis_service.interchange.reader import Source
from gis_service.interchange.report import Report

STATUS_ALIASES = {
    "规划": "planned",
    "在用": "in_service",
    "正常": "in_service",
    "损坏": "damaged",
    "维修中": "under_repair",
    "报废": "retired",
}


def prepare_grids(source: Source, mapping: FieldMapping, report: Report) -> pd.DataFrame:
    """The grid rows ready for staging: text fields, level codes, attributes, geometry."""
    frame = source.frame
    columns = mapping.resolve([str(c) for c in frame.columns])
    check_required(report, columns, mapping, ("code", "name", "level"))
    off = source.row_offset
    codes = field_values(frame, columns, mapping, "code")
    names = field_values(frame, columns, mapping, "name")
    raw_levels = field_values(frame, columns, mapping, "level")
    parents = field_values(frame, columns, mapping, "parent")
    leaders = field_values(frame, columns, mapping, "leader_name")
    phones = field_values(frame, columns, mapping, "leader_phone")
    check_codes(report, codes, off, columns.get("code"))
    for i in np.flatnonzero(pd.isna(names)):
        report.error(
            "missing_value",
            "the name is empty",
            "give every grid a name (e.g. 星苑社区第一网格)",
            row=int(i) + 1 + off,
            field=columns.get("name"),
            code=codes[i],
        )
    levels = np.array(
        [LEVEL_ALIASES.get(str(v).strip().lower()) if v is not None else None for v in raw_levels],
        dtype=object,
    )
    for i in np.flatnonzero(pd.isna(levels)):
        report.error(
            "unknown_level",
            f"'{raw_levels[i]}' is not a grid level",
            "use street, community, grid, micro_grid or special (街道, 社区, 网格, 微网格, "
            "专属网格; or 1–5), or give --default level=micro_grid",
            row=int(i) + 1 + off,
            field=columns.get("level"),
            code=codes[i],
            value=None if raw_levels[i] is None else str(raw_levels[i]),
        )
    self_parent = np.array(
        [p is not None and p == c for p, c in zip(parents, codes, strict=True)], dtype=bool
    )
    for i in np.flatnonzero(self_parent):
        report.error(
            "bad_parent",
            "the grid names itself as its parent",
            "give the code of the grid one level up",
            row=int(i) + 1 + off,
            field=columns.get("parent"),
            code=codes[i],
        )
    _check_phones(report, phones, codes, off, columns.get("leader_phone"))
    for i in np.flatnonzero(pd.isna(leaders) & ~pd.isna(phones)):
        report.error(
            "missing_value",
            "a leader phone is given without the leader's name",
            "fill in the leader's name",
            row=int(i) + 1 + off,
            field=columns.get("leader_name"),
            code=codes[i],
        )
    usable = check_geometry(
        report,
        source.geoms,
        codes,
        off,
        (POLYGON, MULTIPOLYGON),
        "polygons",
        "draw the grid as an area (Polygon or MultiPolygon); in QGIS: Vector › Geometry "
        "Tools › Lines to Polygons",
    )
    used = set(columns.values())
    attrs = attributes_json(frame, used, source.driver in TEXT_DRIVERS)
    geoms = np.full(len(frame), None, dtype=object)
    if usable.any():
        wkb = None if source.wkb is None else source.wkb[usable]
        geoms[usable] = ewkb_hex(source.geoms[usable], wkb)
    return pd.DataFrame(
        {
            "rn": np.arange(1, len(frame) + 1) + off,
            "code": codes,
            "name": names,
            "level": levels,
            "parent_code": parents,
            "leader_name": leaders,
            "leader_phone": phones,
            "attributes": attrs,
            "geom": geoms,
        }
    )


def _check_phones(
    report: Report, phones: np.ndarray, codes: np.ndarray | None, off: int, field: str | None
) -> None:
    s = pd.Series(phones, dtype=object)
    bad = s.notna().to_numpy() & ~s.fillna("").str.match(PHONE_RE).to_numpy()
    for i in np.flatnonzero(bad):
        report.error(
            "bad_phone",
            "a phone number may hold only digits, spaces, '+', '-' and brackets (3–32)",
            "write it like 0371-55500001 or 13800000000",
            row=int(i) + 1 + off,
            field=field,
            code=None if codes is None else codes[i],
            value=str(phones[i])[:40],
        )


def prepare_facilities(
    source: Source, mapping: FieldMapping, report: Report, types: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    """Facility rows ready for staging; ``types`` maps code → {name_zh, name_en, kind}."""
    frame = source.frame
    columns = mapping.resolve([str(c) for c in frame.columns])
    check_required(report, columns, mapping, ("code", "type"))
    off = source.row_offset
    codes = field_values(frame, columns, mapping, "code")
    names = field_values(frame, columns, mapping, "name")
    raw_types = field_values(frame, columns, mapping, "type")
    raw_status = field_values(frame, columns, mapping, "status")
    check_codes(report, codes, off, columns.get("code"))
    lookup: dict[str, str] = {}
    for code, t in types.items():
        for key in (code, t.get("name_zh"), t.get("name_en"), t.get("class_code")):
            if key:
                lookup.setdefault(str(key).strip().lower(), code)
    type_codes = np.array(
        [lookup.get(str(v).strip().lower()) if v is not None else None for v in raw_types],
        dtype=object,
    )
    known = ", ".join(sorted(types))
    for i in np.flatnonzero(pd.isna(type_codes)):
        report.error(
            "unknown_facility_type",
            f"'{raw_types[i]}' is not a known facility type"
            if raw_types[i]
            else "the facility type is empty",
            f"use one of: {known} (or its Chinese name); new kinds need a YAML file in "
            "layers/facility_types/",
            row=int(i) + 1 + off,
            field=columns.get("type"),
            code=codes[i],
            value=raw_types[i],
        )
    statuses = np.array(
        [
            "in_service"
            if v is None
            else (STATUS_ALIASES.get(v.strip(), v.strip().lower().replace(" ", "_")))
            for v in raw_status
        ],
        dtype=object,
    )
    for i in np.flatnonzero(~np.isin(statuses, FACILITY_STATUSES)):
        report.error(
            "bad_status",
            f"'{raw_status[i]}' is not a facility status",
            f"use one of: {', '.join(FACILITY_STATUSES)}",
            row=int(i) + 1 + off,
            field=columns.get("status"),
            code=codes[i],
            value=raw_status[i],
        )
    geoms = source.geoms.copy()
    wkb = None if source.wkb is None else source.wkb.copy()
    # A MultiPoint holding one point is a point (common in Shapefiles).
    tid = shapely.get_type_id(geoms)
    single = (tid == MULTIPOINT) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        if wkb is not None:
            wkb[single] = None  # no longer the file's geometry: written out again
    usable = check_geometry(
        report,
        geoms,
        codes,
        off,
        (POINT, LINE, MULTILINE),
        "points or lines",
        "draw the facility as a point (covers, chargers, cameras) or a line (pipes, walls)",
    )
    tid = shapely.get_type_id(geoms)
    for i in np.flatnonzero(usable & ~pd.isna(type_codes)):
        kind = types[type_codes[i]]["kind"]
        is_point = tid[i] == POINT
        if (kind == "point") != is_point:
            report.error(
                "wrong_geometry_type",
                f"a {type_codes[i]} is a {kind}, but the geometry is a "
                f"{TYPE_NAMES.get(int(tid[i]))}",
                f"draw it as a {kind}, or correct the type",
                row=int(i) + 1 + off,
                field="geometry",
                code=codes[i],
            )
            usable[i] = False
    _check_component_codes(report, frame, codes, type_codes, types, columns, off)
    used = set(columns.values())
    attrs = attributes_json(frame, used, source.driver in TEXT_DRIVERS)
    hexes = np.full(len(frame), None, dtype=object)
    if usable.any():
        hexes[usable] = ewkb_hex(geoms[usable], None if wkb is None else wkb[usable])
    return pd.DataFrame(
        {
            "rn": np.arange(1, len(frame) + 1) + off,
            "code": codes,
            "type_code": type_codes,
            "name": names,
            "status": statuses,
            "attributes": attrs,
            "geom": hexes,
        }
    )


# Columns that carry a facility's component code (部件编码) besides its own code.
COMPONENT_ID_COLUMNS = ("component_id", "部件编码", "部件标识码")


def _check_component_codes(
    report: Report,
    frame: pd.DataFrame,
    codes: np.ndarray,
    type_codes: np.ndarray,
    types: dict[str, dict[str, Any]],
    columns: dict[str, str],
    off: int,
) -> None:
    """GB/T 30428.2 layout of component codes: the component_id column when the file has one,
    and a facility code that claims the layout (16 digits)."""
    column = next(
        (c for c in frame.columns if str(c).strip().lower() in COMPONENT_ID_COLUMNS), None
    )
    ids = text_values(frame[column]) if column is not None else None
    for i in np.flatnonzero(~pd.isna(type_codes)):
        class_code = types[type_codes[i]].get("class_code")
        if not class_code:
            continue
        checks = []
        if ids is not None and ids[i] is not None and str(ids[i]).strip():
            checks.append((str(ids[i]).strip(), str(column)))
        if looks_like_component_code(codes[i]):
            checks.append((codes[i], columns.get("code")))
        for value, field in checks:
            problem = component_code_problem(value, str(class_code))
            if problem is not None:
                report.error(
                    "bad_component_code",
                    problem[0],
                    problem[1],
                    row=int(i) + 1 + off,
                    field=field,
                    code=codes[i],
                    value=value[:80],
                )


def parse_bool(value: str | None) -> bool | None:
    """yes/no, true/false, 1/0, 是/否 → bool; None when blank; raises ValueError otherwise."""
    if value is None:
        return None
    low = value.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ValueError(value)


def prepare_people(
    source: Source, mapping: FieldMapping, report: Report, roles: dict[str, str]
) -> pd.DataFrame:
    """People rows with their grid and role; ``roles`` maps code and Chinese name → code."""
    frame = source.frame
    columns = mapping.resolve([str(c) for c in frame.columns])
    check_required(report, columns, mapping, ("name", "grid"))
    off = source.row_offset
    names = field_values(frame, columns, mapping, "name")
    phones = field_values(frame, columns, mapping, "phone")
    mobiles = field_values(frame, columns, mapping, "mobile")
    grids = field_values(frame, columns, mapping, "grid")
    raw_roles = field_values(frame, columns, mapping, "role")
    raw_primary = field_values(frame, columns, mapping, "primary")
    for arr, what, field in ((names, "name", "name"), (grids, "grid code", "grid")):
        for i in np.flatnonzero(pd.isna(arr)):
            report.error(
                "missing_value",
                f"the {what} is empty",
                f"fill in the {what}",
                row=int(i) + 1 + off,
                field=columns.get(field),
            )
    _check_phones(report, phones, None, off, columns.get("phone"))
    _check_phones(report, mobiles, None, off, columns.get("mobile"))
    role_codes = np.array(
        [None if v is None else roles.get(v.strip().lower()) for v in raw_roles], dtype=object
    )
    for i in np.flatnonzero(~pd.isna(raw_roles) & pd.isna(role_codes)):
        report.error(
            "unknown_role",
            f"'{raw_roles[i]}' is not a role",
            "use one of: " + ", ".join(sorted({v for v in roles.values()})),
            row=int(i) + 1 + off,
            field=columns.get("role"),
            value=raw_roles[i],
        )
    primary = np.full(len(frame), None, dtype=object)
    for i, v in enumerate(raw_primary):
        try:
            primary[i] = parse_bool(v)
        except ValueError:
            report.error(
                "bad_value",
                f"'{v}' is not yes or no",
                "write yes/no, true/false, 1/0 or 是/否",
                row=i + 1 + off,
                field=columns.get("primary"),
            )
    used = set(columns.values())
    attrs = attributes_json(frame, used, source.driver in TEXT_DRIVERS)
    return pd.DataFrame(
        {
            "rn": np.arange(1, len(frame) + 1) + off,
            "name": names,
            "phone": phones,
            "mobile": mobiles,
            "grid_code": grids,
            "role": role_codes,
            "is_primary": primary,
            "attributes": attrs,
        }
    )


GENDERS = {
    "男": "male",
    "女": "female",
    "male": "male",
    "female": "female",
    "m": "male",
    "f": "female",
}
# Categories in one cell: 孤寡老人、残疾人家庭 / a, b / a；b.
_CATEGORY_SPLIT = re.compile(r"[,，、;；/|]+")


def _birth_year(value: str) -> int | None:
    """1950, 1950.0, 1950-03-01 or 1950年 → 1950; None when it is none of these."""
    m = re.fullmatch(r"(\d{4})(?:\.0|年.*|[-/.]\d{1,2}(?:[-/.]\d{1,2})?(?:[ T].*)?)?", value)
    return int(m.group(1)) if m else None


def prepare_care(
    source: Source, mapping: FieldMapping, report: Report, categories: dict[str, str]
) -> pd.DataFrame:
    """Rows of a ledger of people under care; ``categories`` maps every accepted spelling
    (code, Chinese name, alias, lower case) to its code."""
    frame = source.frame
    columns = mapping.resolve([str(c) for c in frame.columns])
    check_required(report, columns, mapping, ("household", "address", "grid", "name", "categories"))
    off = source.row_offset
    values = {f: field_values(frame, columns, mapping, f) for f in FIELDS["care"]}
    for name, what in (
        ("household", "household code (户编号)"),
        ("address", "address (地址)"),
        ("grid", "grid code (网格编码)"),
        ("name", "name (姓名)"),
        ("categories", "category (类别)"),
    ):
        for i in np.flatnonzero(pd.isna(values[name])):
            report.error(
                "missing_value",
                f"the {what} is empty",
                f"fill in the {what}",
                row=int(i) + 1 + off,
                field=columns.get(name),
            )
    households = values["household"]
    for i, code in enumerate(households):
        if code is not None and not re.fullmatch(CODE_RE, code):
            report.error(
                "bad_code",
                "a household code may hold only letters, digits, '.', '_' and '-' (1–64)",
                "write it like 410103001001-0001",
                row=i + 1 + off,
                field=columns.get("household"),
                value=code[:80],
            )
    _check_phones(report, values["phone"], None, off, columns.get("phone"))
    _check_phones(report, values["household_phone"], None, off, columns.get("household_phone"))
    cats = np.full(len(frame), None, dtype=object)
    known = ", ".join(sorted({c for c in categories.values()}))
    for i, raw in enumerate(values["categories"]):
        if raw is None:
            continue
        codes: list[str] = []
        for part in _CATEGORY_SPLIT.split(raw):
            part = part.strip()
            if not part:
                continue
            code = categories.get(part.lower())
            if code is None:
                report.error(
                    "unknown_category",
                    f"'{part}' is not a category of people under care",
                    f"use one of {known} (or a name from layers/care.yaml)",
                    row=i + 1 + off,
                    field=columns.get("categories"),
                    value=part[:80],
                )
            elif code not in codes:
                codes.append(code)
        cats[i] = "{" + ",".join(codes) + "}" if codes else None
    genders = np.full(len(frame), None, dtype=object)
    for i, raw in enumerate(values["gender"]):
        if raw is None:
            continue
        genders[i] = GENDERS.get(raw.strip().lower())
        if genders[i] is None:
            report.error(
                "bad_value",
                f"'{raw}' is not a gender",
                "write 男 or 女 (male or female), or leave it empty",
                row=i + 1 + off,
                field=columns.get("gender"),
            )
    years = np.full(len(frame), None, dtype=object)
    this_year = date.today().year
    for i, raw in enumerate(values["birth_year"]):
        if raw is None:
            continue
        year = _birth_year(raw.strip())
        if year is None or not 1900 <= year <= this_year:
            report.error(
                "bad_value",
                f"'{raw[:40]}' is not a year of birth between 1900 and {this_year}",
                "write the year, such as 1948",
                row=i + 1 + off,
                field=columns.get("birth_year"),
            )
        else:
            years[i] = year
    seen: dict[tuple[str, str], int] = {}
    homes: dict[str, tuple[str | None, str | None, int]] = {}
    for i in range(len(frame)):
        code, name = households[i], values["name"][i]
        if code is None or name is None:
            continue
        first = seen.setdefault((code, name), i)
        if first != i:
            report.error(
                "duplicate_person",
                f"{name} of household {code} is listed twice (first on row {first + 1 + off})",
                "keep one row per person; list several categories in one cell (、)",
                row=i + 1 + off,
                field=columns.get("name"),
            )
        home = homes.setdefault(code, (values["address"][i], values["grid"][i], i))
        if home[:2] != (values["address"][i], values["grid"][i]):
            report.error(
                "household_mismatch",
                f"household {code} has another address or grid here than on row "
                f"{home[2] + 1 + off}",
                "give every member of a household the same address and grid code",
                row=i + 1 + off,
                field=columns.get("address"),
            )
    used = set(columns.values())
    attrs = attributes_json(frame, used, source.driver in TEXT_DRIVERS)
    return pd.DataFrame(
        {
            "rn": np.arange(1, len(frame) + 1) + off,
            "household": households,
            "address": values["address"],
            "grid_code": values["grid"],
            "household_phone": values["household_phone"],
            "name": values["name"],
            "gender": genders,
            "birth_year": years,
            "phone": values["phone"],
            "categories": cats,
            "note": values["note"],
            "attributes": attrs,
        }
    )
