"""Checks that need no database, vectorised over the whole file: missing values, codes,
levels, duplicate codes, geometry types, empty geometries and coordinate ranges."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis_service.facilities.codes import component_code_problem, looks_like_component_code
from gis_service.interchange.mapping import (
    DERIVED,
    FALSE_WORDS,
    FIELDS,
    LEVEL_ALIASES,
    TRUE_WORDS,
    FieldMapping,
)
from gis_service.interchange.reader import CHINA_BOX, Source
from gis_service.interchange.report import ImportRefused, Report

# Formats whose cells arrive as text: numbers and booleans in them are recognised.
TEXT_DRIVERS = ("CSV", "XLSX", "KML")
CODE_RE = r"^[0-9A-Za-z._-]{1,64}$"
PHONE_RE = r"^[0-9+() -]{3,32}$"
LEVELS = ("street", "community", "grid", "micro_grid", "special")
FACILITY_STATUSES = ("planned", "in_service", "damaged", "under_repair", "retired")
STATUS_ALIASES = {
    "规划": "planned",
    "在用": "in_service",
    "正常": "in_service",
    "损坏": "damaged",
    "维修中": "under_repair",
    "报废": "retired",
}

# shapely type ids
_POINT, _LINE, _POLYGON, _MULTIPOINT, _MULTILINE, _MULTIPOLYGON = 0, 1, 3, 4, 5, 6
_TYPE_NAMES = {
    -1: "none",
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def text_values(series: pd.Series) -> np.ndarray:
    """A column as stripped text, None for blanks; 410103001.0 (a numeric field) → '410103001'."""
    if pd.api.types.is_float_dtype(series.dtype):
        vals = series.to_numpy()
        out = np.full(len(vals), None, dtype=object)
        ok = ~np.isnan(vals)
        integral = ok & (np.mod(np.where(ok, vals, 0), 1) == 0)
        out[integral] = [str(int(v)) for v in vals[integral]]
        rest = ok & ~integral
        out[rest] = [repr(float(v)) for v in vals[rest]]
        return out
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return np.asarray([str(v) for v in series.to_numpy()], dtype=object)
    vals = series.to_numpy(dtype=object)
    out = np.empty(len(vals), dtype=object)
    for i, v in enumerate(vals):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
            out[i] = None
        else:
            s = str(v).strip()
            out[i] = s or None
    return out


def _field_values(
    frame: pd.DataFrame, columns: dict[str, str], mapping: FieldMapping, name: str
) -> np.ndarray:
    """A mapped field's text values, or its default, or all None."""
    if name in columns:
        return text_values(frame[columns[name]])
    if name in mapping.defaults:
        return np.full(len(frame), mapping.defaults[name] or None, dtype=object)
    return np.full(len(frame), None, dtype=object)


def _infer(value: str) -> Any:
    """A CSV/XLSX cell as the JSON value it spells (numbers without leading zeros, booleans)."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"-?(0|[1-9]\d{0,15})", value):
        return int(value)
    if re.fullmatch(r"-?(0|[1-9]\d*)\.\d+", value):
        return float(value)
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _plain(value: Any, tabular: bool) -> Any:
    """A cell as a JSON-ready value, or None to drop it."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
        return _infer(value) if tabular else value
    return value


def attributes_json(
    frame: pd.DataFrame, used: set[str], tabular: bool, extra_ignore: frozenset[str] = frozenset()
) -> np.ndarray:
    """Every column no field uses, per row, as a JSON object text (nulls left out)."""
    cols = [
        c
        for c in frame.columns
        if c not in used and str(c).lower() not in DERIVED and str(c).lower() not in extra_ignore
    ]
    n = len(frame)
    if not cols:
        return np.full(n, "{}", dtype=object)
    data = {c: frame[c].to_numpy(dtype=object) for c in cols}
    out = np.empty(n, dtype=object)
    for i in range(n):
        obj = {}
        for c in cols:
            v = _plain(data[c][i], tabular)
            if v is not None:
                obj[str(c)] = v
        out[i] = json.dumps(obj, ensure_ascii=False, sort_keys=True)
    return out


def ewkb_hex(geoms: np.ndarray) -> np.ndarray:
    """Hex EWKB with SRID 4326, which COPY reads straight into a geometry column."""
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)


def check_required(report: Report, columns: dict[str, str], mapping: FieldMapping, req) -> None:
    """Refuse the file when a required field has neither a column nor a default."""
    missing = [f for f in req if f not in columns and f not in mapping.defaults]
    if missing:
        raise ImportRefused(
            f"no column for {', '.join(missing)}",
            "name the columns with --field "
            + " ".join(f"{m}=COLUMN" for m in missing)
            + " (or in a mapping YAML), or give a constant with --default "
            + f"{missing[0]}=VALUE",
            missing=missing,
        )


def _check_codes(report: Report, codes: np.ndarray, offset: int, field: str | None) -> None:
    s = pd.Series(codes, dtype=object)
    blank = s.isna().to_numpy()
    for i in np.flatnonzero(blank):
        report.error(
            "missing_value",
            "the code is empty",
            "give every row a code (text such as 410103001001)",
            row=int(i) + 1 + offset,
            field=field,
        )
    bad = (~blank) & ~s.fillna("").str.match(CODE_RE).to_numpy()
    for i in np.flatnonzero(bad):
        report.error(
            "bad_code",
            "a code may hold only letters, digits, '.', '_' and '-' (1–64 characters)",
            "remove spaces and other characters from the code",
            row=int(i) + 1 + offset,
            field=field,
            value=str(codes[i])[:80],
        )
    dup = (~blank) & s.duplicated(keep=False).to_numpy()
    if dup.any():
        groups: dict[str, list[int]] = {}
        for i in np.flatnonzero(dup):
            groups.setdefault(codes[i], []).append(int(i) + 1 + offset)
        for code, rows in groups.items():
            for r in rows:
                others = [x for x in rows if x != r][:5]
                report.error(
                    "duplicate_code",
                    f"the code also appears in row(s) {', '.join(map(str, others))}",
                    "give each feature its own code; a redrawn grid appears once, with its "
                    "new boundary",
                    row=r,
                    field=field,
                    code=code,
                )


def _check_geometry(
    report: Report,
    geoms: np.ndarray,
    codes: np.ndarray | None,
    offset: int,
    allowed: tuple[int, ...],
    wanted: str,
    fix: str,
) -> np.ndarray:
    """Empty, missing, wrong-type and out-of-range geometries; returns the usable mask."""
    missing = shapely.is_missing(geoms)
    empty = missing.copy()
    empty[~missing] = shapely.is_empty(geoms[~missing])
    for i in np.flatnonzero(empty):
        report.error(
            "empty_geometry",
            "the feature has no geometry (or an empty one)",
            f"draw the {wanted} or delete the row",
            row=int(i) + 1 + offset,
            field="geometry",
            code=codes[i] if codes is not None else None,
        )
    types = shapely.get_type_id(geoms)
    wrong = ~empty & ~np.isin(types, allowed)
    for i in np.flatnonzero(wrong):
        report.error(
            "wrong_geometry_type",
            f"the geometry is a {_TYPE_NAMES.get(int(types[i]), 'geometry')}; "
            f"this layer takes {wanted}",
            fix,
            row=int(i) + 1 + offset,
            field="geometry",
            code=codes[i] if codes is not None else None,
        )
    usable = ~empty & ~wrong
    if usable.any():
        b = shapely.bounds(geoms)
        out = usable & ((b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90))
        for i in np.flatnonzero(out):
            report.error(
                "coordinates_out_of_range",
                f"after conversion the feature lies at {b[i, 0]:.6g}, {b[i, 1]:.6g}, which is "
                "not lon/lat",
                "check the coordinate system: give --crs with the file's real one "
                "(e.g. EPSG:4547 for CGCS2000 Gauss-Krüger metres)",
                row=int(i) + 1 + offset,
                field="geometry",
                code=codes[i] if codes is not None else None,
            )
        usable &= ~out
        x0, y0, x1, y1 = CHINA_BOX
        far = usable & ((b[:, 2] < x0) | (b[:, 0] > x1) | (b[:, 3] < y0) | (b[:, 1] > y1))
        if far.any():
            first = int(np.flatnonzero(far)[0])
            report.warn(
                "outside_china",
                f"{int(far.sum())} feature(s) lie outside China (first: row {first + 1 + offset})",
                "check the coordinate system (lon and lat swapped? wrong --crs?)",
                row=first + 1 + offset,
                field="geometry",
            )
    return usable


def prepare_grids(source: Source, mapping: FieldMapping, report: Report) -> pd.DataFrame:
    """The grid rows ready for staging: text fields, level codes, attributes, geometry."""
    frame = source.frame
    columns = mapping.resolve([str(c) for c in frame.columns])
    check_required(report, columns, mapping, ("code", "name", "level"))
    off = source.row_offset
    codes = _field_values(frame, columns, mapping, "code")
    names = _field_values(frame, columns, mapping, "name")
    raw_levels = _field_values(frame, columns, mapping, "level")
    parents = _field_values(frame, columns, mapping, "parent")
    leaders = _field_values(frame, columns, mapping, "leader_name")
    phones = _field_values(frame, columns, mapping, "leader_phone")
    _check_codes(report, codes, off, columns.get("code"))
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
    usable = _check_geometry(
        report,
        source.geoms,
        codes,
        off,
        (_POLYGON, _MULTIPOLYGON),
        "polygons",
        "draw the grid as an area (Polygon or MultiPolygon); in QGIS: Vector › Geometry "
        "Tools › Lines to Polygons",
    )
    used = set(columns.values())
    attrs = attributes_json(frame, used, source.driver in TEXT_DRIVERS)
    geoms = np.full(len(frame), None, dtype=object)
    if usable.any():
        geoms[usable] = ewkb_hex(source.geoms[usable])
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
    codes = _field_values(frame, columns, mapping, "code")
    names = _field_values(frame, columns, mapping, "name")
    raw_types = _field_values(frame, columns, mapping, "type")
    raw_status = _field_values(frame, columns, mapping, "status")
    _check_codes(report, codes, off, columns.get("code"))
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
    # A MultiPoint holding one point is a point (common in Shapefiles).
    tid = shapely.get_type_id(geoms)
    single = (tid == _MULTIPOINT) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    usable = _check_geometry(
        report,
        geoms,
        codes,
        off,
        (_POINT, _LINE, _MULTILINE),
        "points or lines",
        "draw the facility as a point (covers, chargers, cameras) or a line (pipes, walls)",
    )
    tid = shapely.get_type_id(geoms)
    for i in np.flatnonzero(usable & ~pd.isna(type_codes)):
        kind = types[type_codes[i]]["kind"]
        is_point = tid[i] == _POINT
        if (kind == "point") != is_point:
            report.error(
                "wrong_geometry_type",
                f"a {type_codes[i]} is a {kind}, but the geometry is a "
                f"{_TYPE_NAMES.get(int(tid[i]))}",
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
        hexes[usable] = ewkb_hex(geoms[usable])
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
    names = _field_values(frame, columns, mapping, "name")
    phones = _field_values(frame, columns, mapping, "phone")
    mobiles = _field_values(frame, columns, mapping, "mobile")
    grids = _field_values(frame, columns, mapping, "grid")
    raw_roles = _field_values(frame, columns, mapping, "role")
    raw_primary = _field_values(frame, columns, mapping, "primary")
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
    values = {f: _field_values(frame, columns, mapping, f) for f in FIELDS["care"]}
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
