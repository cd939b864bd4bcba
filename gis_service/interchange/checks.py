"""Checks every layer's rows share, with no database and vectorised over the whole file:
text values, attributes, required columns, codes (format and duplicates) and geometry
(types, emptiness, validity, coordinate range)."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis_service.interchange.mapping import (
    DERIVED,
    FieldMapping,
)
from gis_service.interchange.reader import CHINA_BOX
from gis_service.interchange.report import ImportRefused, Report

# Formats whose cells arrive as text: numbers and booleans in them are recognised.
TEXT_DRIVERS = ("CSV", "XLSX", "KML")
CODE_RE = r"^[0-9A-Za-z._-]{1,64}$"
PHONE_RE = r"^[0-9+() -]{3,32}$"

# shapely type ids
POINT, LINE, POLYGON, MULTIPOINT, MULTILINE, MULTIPOLYGON = 0, 1, 3, 4, 5, 6
TYPE_NAMES = {
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


def field_values(
    frame: pd.DataFrame, columns: dict[str, str], mapping: FieldMapping, name: str
) -> np.ndarray:
    """A mapped field's text values, or its default, or all None."""
    if name in columns:
        return text_values(frame[columns[name]])
    if name in mapping.defaults:
        return np.full(len(frame), mapping.defaults[name] or None, dtype=object)
    return np.full(len(frame), None, dtype=object)


def infer(value: str) -> Any:
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


def plain(value: Any, tabular: bool) -> Any:
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
        return infer(value) if tabular else value
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
            v = plain(data[c][i], tabular)
            if v is not None:
                obj[str(c)] = v
        out[i] = json.dumps(obj, ensure_ascii=False, sort_keys=True)
    return out


def ewkb_hex(geoms: np.ndarray, wkb: np.ndarray | None = None) -> np.ndarray:
    """Hex EWKB with SRID 4326, which COPY reads straight into a geometry column; from the
    file's own WKB where given (``Source.wkb``): the SRID put into its header is all that
    differs, so no geometry is written out again (~0.5 s of 100,000 polygons)."""
    out = np.full(len(geoms), None, dtype=object)
    if wkb is not None:
        out[:] = [_with_srid(w) for w in wkb]
    rest = np.array([h is None for h in out], dtype=bool)
    if rest.any():
        out[rest] = shapely.to_wkb(shapely.set_srid(geoms[rest], 4326), hex=True, include_srid=True)
    return out


# An OGC WKB header: byte order (1 little-endian, 0 big), then the type as 4 bytes.
_SRID_FLAG = {1: (8, 10, "20"), 0: (2, 4, "20")}  # where the flag byte is in the hex text
_SRID_4326 = {1: "E6100000", 0: "000010E6"}


def _with_srid(wkb: bytes | None) -> str | None:
    """Plain 2D WKB (type 1–7) as hex EWKB with SRID 4326; None for anything else."""
    if wkb is None or len(wkb) < 5 or wkb[0] not in (0, 1):
        return None
    order = wkb[0]
    kind = int.from_bytes(wkb[1:5], "little" if order else "big")
    if not 1 <= kind <= 7:  # Z, M, or an EWKB flag already: let shapely write it
        return None
    h = wkb.hex()
    a, b, flag = _SRID_FLAG[order]
    return h[:a] + flag + h[b:10] + _SRID_4326[order] + h[10:]


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


def check_codes(report: Report, codes: np.ndarray, offset: int, field: str | None) -> None:
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


def check_geometry(
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
            f"the geometry is a {TYPE_NAMES.get(int(types[i]), 'geometry')}; "
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
