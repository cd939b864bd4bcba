"""Read GeoJSON, GeoPackage, (zipped) Shapefile, KML, CSV and XLSX into one shape: a table of
attributes plus an array of shapely geometries converted to WGS84 lon/lat."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely
import shapely.errors
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gis_service.geo.datums import Datum, geometry_to_wgs84
from gis_service.interchange.cells import restore_frame
from gis_service.interchange.report import Finding, ImportRefused

# Lon/lat box around China (with margin): a file without CRS whose every coordinate lies in
# it can only be lon/lat degrees, so WGS84 is assumed with a warning.
CHINA_BOX = (73.0, 3.0, 136.0, 54.0)

# Geographic CRSs whose lon/lat equal WGS84 at street scale (CGCS2000 differs by centimetres).
_SAME_AS_WGS84 = {4326, 4490, 4610, 4214}

CRS_ALIASES = {
    "wgs84": "EPSG:4326",
    "cgcs2000": "EPSG:4490",
    "crs84": "OGC:CRS84",
}

# Housekeeping columns KML readers add; never data.
_KML_NOISE = frozenset(
    {
        "timestamp",
        "begin",
        "end",
        "altitudemode",
        "tessellate",
        "extrude",
        "visibility",
        "draworder",
        "icon",
        "snippet",
    }
)

GEOMETRY_CANDIDATES = {
    "wkt": ("wkt", "geometry", "geom", "the_geom", "shape", "几何", "坐标串"),
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
}

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".zip": "zip",
    ".kml": "KML",
    ".kmz": "KML",
    ".csv": "CSV",
    ".txt": "CSV",
    ".xlsx": "XLSX",
    ".xlsm": "XLSX",
}


@dataclass
class Source:
    """A file read into memory: attribute columns, WGS84 geometries and what was assumed."""

    frame: pd.DataFrame
    geoms: np.ndarray
    driver: str
    crs: str
    warnings: list[Finding] = field(default_factory=list)
    geometry_errors: list[Finding] = field(default_factory=list)
    row_offset: int = 0  # added to a 1-based record number to give the row staff see
    # The file's own WKB of each geometry while ``geoms`` are exactly what it holds (no
    # conversion, no Z dropped): staged as it is instead of being written out again.
    wkb: np.ndarray | None = None


# ---- coordinate systems -------------------------------------------------------------------
@dataclass(frozen=True)
class CrsChoice:
    """How to bring the file's coordinates to WGS84."""

    label: str
    datum: Datum | None = None
    crs: CRS | None = None


def parse_crs(spec: str) -> CrsChoice:
    """``--crs``: gcj02, bd09, wgs84, cgcs2000, EPSG:NNNN, a bare number or any PROJ text."""
    key = spec.strip().lower()
    if key in (Datum.gcj02.value, Datum.bd09.value):
        return CrsChoice(key, datum=Datum(key))
    text = CRS_ALIASES.get(key, spec.strip())
    if re.fullmatch(r"\d{4,6}", text):
        text = f"EPSG:{text}"
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        raise ImportRefused(
            f"unknown coordinate system '{spec}'",
            "give --crs as EPSG:4490, EPSG:4326, EPSG:3857, EPSG:4547 (CGCS2000 3-degree "
            "Gauss-Krüger, CM 114°E), gcj02 (AMap, Tencent, WeChat) or bd09 (Baidu)",
        ) from exc
    return CrsChoice(_crs_label(crs), crs=crs)


def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _is_wgs84_like(crs: CRS) -> bool:
    if crs.to_epsg() in _SAME_AS_WGS84:
        return True
    return crs.to_string() == "OGC:CRS84"


def _bounds(geoms: np.ndarray) -> tuple[float, float, float, float] | None:
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if len(present) == 0:
        return None
    b = shapely.bounds(present)
    return (
        float(np.nanmin(b[:, 0])),
        float(np.nanmin(b[:, 1])),
        float(np.nanmax(b[:, 2])),
        float(np.nanmax(b[:, 3])),
    )


def _fmt_bounds(b: tuple[float, float, float, float]) -> str:
    return ", ".join(f"{v:.6g}" for v in b)


def to_wgs84(
    geoms: np.ndarray, file_crs: CRS | None, option: str | None, warnings: list[Finding]
) -> tuple[np.ndarray, str]:
    """Geometries in WGS84 lon/lat, and a label of the coordinate system they came in."""
    choice = parse_crs(option) if option else None
    if (
        choice
        and file_crs is not None
        and not (choice.crs is not None and choice.crs.equals(file_crs))
    ):
        declared = _crs_label(file_crs)
        if not (choice.datum and _is_wgs84_like(file_crs)):
            warnings.append(
                Finding(
                    "warning",
                    "crs_overridden",
                    f"the file declares {declared}; --crs {option} was used instead",
                    "drop --crs to use the file's own coordinate system",
                )
            )
    if choice is None and file_crs is not None:
        choice = CrsChoice(_crs_label(file_crs), crs=file_crs)
    if choice is None:
        b = _bounds(geoms)
        x0, y0, x1, y1 = CHINA_BOX
        if b is not None and b[0] >= x0 and b[2] <= x1 and b[1] >= y0 and b[3] <= y1:
            warnings.append(
                Finding(
                    "warning",
                    "crs_assumed",
                    "the file has no coordinate system; every coordinate is lon/lat inside "
                    "China, so WGS84 (GPS, EPSG:4326) was assumed",
                    "if the file was drawn on AMap or Tencent maps give --crs gcj02, on Baidu "
                    "--crs bd09; for CGCS2000 give --crs EPSG:4490",
                )
            )
            return geoms, "EPSG:4326 (assumed)"
        where = f" (coordinates span {_fmt_bounds(b)})" if b else ""
        raise ImportRefused(
            f"the file has no coordinate system and its coordinates are not plainly lon/lat "
            f"inside China{where}",
            "give --crs: EPSG:4547 … EPSG:4554 for CGCS2000 3-degree Gauss-Krüger metres "
            "(EPSG:4547 = CM 114°E, e.g. Zhengzhou), EPSG:3857 for web-mercator metres, "
            "EPSG:4490 or EPSG:4326 for degrees, gcj02 or bd09 for AMap or Baidu lon/lat",
            bounds=b,
        )
    if choice.datum is not None:
        return geometry_to_wgs84(geoms, choice.datum), f"{choice.label} → WGS84"
    crs = choice.crs
    assert crs is not None
    if _is_wgs84_like(crs):
        return geoms, choice.label
    transformer = Transformer.from_crs(crs, 4326, always_xy=True)

    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply), f"{choice.label} → WGS84"


# ---- files --------------------------------------------------------------------------------
def detect_driver(path: Path) -> str:
    """The reader a file needs, from its extension."""
    suffix = path.suffix.lower()
    driver = FORMATS.get(suffix)
    if driver is None:
        raise ImportRefused(
            f"cannot tell the format of '{path.name}' from its extension",
            "use .geojson, .gpkg, .zip (a zipped Shapefile), .shp, .kml, .csv or .xlsx",
        )
    return driver


def _zip_members(path: Path) -> tuple[str, list[str]]:
    """The driver and /vsizip/ paths of the datasets inside a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
    except zipfile.BadZipFile as exc:
        raise ImportRefused(f"'{path.name}' is not a readable zip file", "zip it again") from exc
    shps = [n for n in names if n.lower().endswith(".shp")]
    if shps:
        return "ESRI Shapefile", [f"/vsizip/{path}/{n}" for n in sorted(shps)]
    for ext in (".gpkg", ".geojson", ".json", ".kml"):
        inner = [n for n in names if n.lower().endswith(ext)]
        if len(inner) == 1:
            return FORMATS[ext], [f"/vsizip/{path}/{inner[0]}"]
    raise ImportRefused(
        f"'{path.name}' holds no Shapefile (.shp with its .dbf, .shx, .prj)",
        "zip the .shp together with its .dbf, .shx, .prj and .cpg files",
    )


def _read_ogr(
    paths: list[str], layer: str | None, encoding: str | None, driver: str
) -> tuple[pd.DataFrame, np.ndarray, CRS | None, list[Finding], np.ndarray]:
    """Read one or more OGR datasets (every layer of KML, every .shp of a zip)."""
    warnings: list[Finding] = []
    frames: list[pd.DataFrame] = []
    geoms: list[np.ndarray] = []
    wkbs: list[np.ndarray] = []
    crs: CRS | None = None
    for p in paths:
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(p)]
        except Exception as exc:  # GDAL says little more than "not recognised"
            raise ImportRefused(
                f"cannot read '{Path(p).name}': {exc}", "check that the file is complete"
            ) from exc
        if layer is not None:
            if layer not in layers:
                raise ImportRefused(
                    f"no layer '{layer}' in the file; its layers are: {', '.join(layers)}",
                    "give --layer with one of those names",
                )
            wanted = [layer]
        elif len(layers) > 1 and driver not in ("KML", "ESRI Shapefile"):
            raise ImportRefused(
                f"the file has {len(layers)} layers: {', '.join(layers)}",
                "give --layer NAME to say which one to import",
            )
        else:
            wanted = layers
        if driver == "ESRI Shapefile" and encoding is None:
            base = p[: -len(".shp")] if p.lower().endswith(".shp") else p
            if not _exists_any(base, (".cpg", ".CPG")):
                warnings.append(
                    Finding(
                        "warning",
                        "no_cpg",
                        f"{Path(p).name} has no .cpg file naming its text encoding",
                        "if Chinese text looks garbled, re-run with --encoding GBK (or UTF-8)",
                    )
                )
        for name in wanted:
            meta, wkb, part = _read_layer(p, name, encoding)
            try:
                shapes = shapely.from_wkb(wkb)
            except shapely.errors.GEOSException as exc:
                # A geometry GEOS cannot build (a polygon ring that does not close): keep the
                # rest, and refuse the file naming the problem; those rows show up without
                # a geometry in the report.
                shapes = shapely.from_wkb(wkb, on_invalid="ignore")
                wkb = np.where(shapely.is_missing(shapes), None, wkb)
                warnings.append(
                    Finding(
                        "error",
                        "unreadable_geometry",
                        f"some geometries could not be read: {exc}",
                        "close every polygon ring (its last point must equal its first) and "
                        "export the file again; the rows concerned are reported without geometry",
                    )
                )
            if meta["crs"] is not None:
                layer_crs = CRS.from_user_input(meta["crs"])
                if crs is not None and not crs.equals(layer_crs):
                    raise ImportRefused(
                        f"layers of the file use different coordinate systems "
                        f"({_crs_label(crs)} and {_crs_label(layer_crs)})",
                        "export them in one coordinate system",
                    )
                crs = layer_crs
            geoms.append(np.asarray(shapes, dtype=object))
            wkbs.append(wkb)
            frames.append(part)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if driver == "KML":
        frame = frame[[c for c in frame.columns if str(c).lower() not in _KML_NOISE]]
    geom = np.concatenate(geoms) if len(geoms) > 1 else geoms[0]
    wkb = np.concatenate(wkbs) if len(wkbs) > 1 else wkbs[0]
    return frame, geom, crs, warnings, wkb


# read_dataframe's own rule for a datetime column read as text. It is private to pyogrio
# (pyproject asks only pyogrio >= 0.9), so an import or a call that another version refuses
# falls back to pandas' ISO 8601 reader: naive or one offset as is, mixed offsets in UTC,
# text that is no date left as text — what read_dataframe does with them.
try:
    from pyogrio.geopandas import _try_parse_datetime
except ImportError:  # pragma: no cover - depends on the installed pyogrio
    _try_parse_datetime = None


def _parse_datetimes(column: pd.Series) -> pd.Series:
    """A datetime column of a layer read as text, parsed as read_dataframe would."""
    if _try_parse_datetime is not None:
        with contextlib.suppress(TypeError):
            return _try_parse_datetime(column, False, True)
    for utc in (False, True):
        with contextlib.suppress(ValueError, TypeError):
            return pd.to_datetime(column, format="ISO8601", utc=utc)
    return column


def _read_layer(
    path: str, layer: str, encoding: str | None
) -> tuple[dict, np.ndarray, pd.DataFrame]:
    """One layer's metadata, its geometries as the file's WKB (None where there is none) and
    its attributes as ``pyogrio.read_dataframe`` gives them; read_dataframe drops the WKB once
    it has built shapes from it, and here it goes on to the database as it is."""
    kw = {"encoding": encoding} if encoding else {}
    meta, _, wkb, fields = pyogrio.raw.read(path, layer=layer, datetime_as_string=True, **kw)
    names = meta["fields"].tolist()
    frame = pd.DataFrame({names[i]: fields[i] for i in range(len(names))}, columns=names)
    for dtype, name in zip(meta["dtypes"], names, strict=True):
        if dtype.startswith("datetime"):  # as read_dataframe does (strings → datetimes)
            frame[name] = _parse_datetimes(frame[name])
    for subtype, name in zip(meta["ogr_subtypes"], names, strict=True):
        if subtype == "OFSTJSON" and pd.api.types.infer_dtype(frame[name]) == "string":
            # read_dataframe leaves a column it cannot parse as text, and so does this
            with contextlib.suppress(ValueError):
                frame[name] = frame[name].map(json.loads, na_action="ignore")
    if wkb is None:
        wkb = np.full(len(frame), None, dtype=object)
    return meta, np.asarray(wkb, dtype=object), frame


def _exists_any(base: str, exts: tuple[str, ...]) -> bool:
    if base.startswith("/vsizip/"):
        zpath, _, inner = base[len("/vsizip/") :].partition(".zip/")
        with zipfile.ZipFile(zpath + ".zip") as zf:
            names = set(zf.namelist())
        return any(inner + e in names for e in exts)
    return any(Path(base + e).exists() for e in exts)


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    raw = path.read_bytes()
    encodings = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in encodings:
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportRefused(
            f"'{path.name}' is neither UTF-8 nor GBK text", "save it as CSV UTF-8 from Excel"
        )
    # Codes are text: never let pandas turn 001 into 1.
    try:
        return pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, sep=None, engine="python"
        )
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ImportRefused(
            f"'{path.name}' cannot be read as a table: {exc}",
            "check the text encoding (--encoding) and that the columns are separated by "
            "commas, semicolons or tabs",
        ) from exc


def _read_xlsx(path: Path, sheet: str | None) -> pd.DataFrame:
    try:
        book = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise ImportRefused(f"cannot read the workbook '{path.name}': {exc}") from exc
    if sheet is not None:
        if sheet not in book:
            raise ImportRefused(
                f"no sheet '{sheet}'; the sheets are: {', '.join(book)}",
                "give --layer with one of those sheet names",
            )
        return book[sheet]
    filled = {k: v for k, v in book.items() if len(v.columns)}
    if len(filled) > 1:
        raise ImportRefused(
            f"the workbook has {len(filled)} sheets: {', '.join(filled)}",
            "give --layer SHEET to say which one to import",
        )
    return next(iter(filled.values())) if filled else next(iter(book.values()))


def _pick(columns: list[str], explicit: str | None, candidates: tuple[str, ...]) -> str | None:
    by_lower = {str(c).lower(): c for c in columns}
    if explicit:
        if explicit in columns:
            return explicit
        if explicit.lower() in by_lower:
            return by_lower[explicit.lower()]
        raise ImportRefused(
            f"no column '{explicit}' in the file; its columns are: {', '.join(map(str, columns))}",
            "fix the column name in the mapping",
        )
    for cand in candidates:
        if cand in by_lower:
            return by_lower[cand]
    return None


def _tabular_geometry(
    frame: pd.DataFrame, geometry_columns: dict[str, str]
) -> tuple[pd.DataFrame, np.ndarray, list[Finding]]:
    """Geometries from a WKT (or GeoJSON) column, or from lon and lat columns."""
    cols = [str(c) for c in frame.columns]
    errors: list[Finding] = []
    wkt = _pick(cols, geometry_columns.get("wkt"), GEOMETRY_CANDIDATES["wkt"])
    lon = lat = None
    if wkt is None:
        lon = _pick(cols, geometry_columns.get("lon"), GEOMETRY_CANDIDATES["lon"])
        lat = _pick(cols, geometry_columns.get("lat"), GEOMETRY_CANDIDATES["lat"])
    n = len(frame)
    if wkt is not None:
        texts = frame[wkt].astype(str).str.strip().to_numpy(dtype=object)
        geoms = np.full(n, None, dtype=object)
        is_json = np.array([t.startswith("{") for t in texts], dtype=bool)
        has_text = np.array([t != "" for t in texts], dtype=bool)
        as_wkt = has_text & ~is_json
        if as_wkt.any():
            geoms[as_wkt] = shapely.from_wkt(texts[as_wkt], on_invalid="ignore")
        if is_json.any():
            geoms[is_json] = shapely.from_geojson(texts[is_json], on_invalid="ignore")
        for i in np.flatnonzero(has_text & shapely.is_missing(geoms)):
            errors.append(
                Finding(
                    "error",
                    "bad_geometry_text",
                    "the geometry text cannot be read as WKT or GeoJSON",
                    "write it as WKT, e.g. POLYGON((113.6 34.7, …)) or POINT(113.6 34.7)",
                    row=int(i) + 1,
                    field=wkt,
                    value=texts[i][:80],
                )
            )
        return frame.drop(columns=[wkt]), geoms, errors
    if lon is not None and lat is not None:
        xs = pd.to_numeric(frame[lon].astype(str).str.strip(), errors="coerce").to_numpy()
        ys = pd.to_numeric(frame[lat].astype(str).str.strip(), errors="coerce").to_numpy()
        bad = np.isnan(xs) | np.isnan(ys)
        geoms = np.full(n, None, dtype=object)
        if (~bad).any():
            geoms[~bad] = shapely.points(xs[~bad], ys[~bad])
        raw_lon = frame[lon].astype(str).str.strip().to_numpy()
        for i in np.flatnonzero(bad):
            col = lon if np.isnan(xs[i]) else lat
            errors.append(
                Finding(
                    "error",
                    "bad_coordinate",
                    "the coordinate is missing or not a number",
                    "fill in decimal degrees, e.g. 113.6468 and 34.7275",
                    row=int(i) + 1,
                    field=col,
                    value=str(frame[col].iloc[i])[:40] if col != lon else str(raw_lon[i])[:40],
                )
            )
        return frame.drop(columns=[lon, lat]), geoms, errors
    raise ImportRefused(
        "the table has no geometry: no WKT column and no lon/lat columns",
        "add a 'wkt' column, or 'lon' and 'lat' columns (经度, 纬度 work too), or name them "
        "in the mapping (wkt: COLUMN, or lon: COLUMN and lat: COLUMN)",
        columns=cols,
    )


def read_source(
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    geometry_columns: dict[str, str] | None = None,
    require_geometry: bool = True,
) -> Source:
    """Read a file: attributes, geometries in WGS84 and warnings about what was assumed."""
    path = Path(path)
    if not path.exists():
        raise ImportRefused(f"no such file: {path}")
    driver = detect_driver(path)
    warnings: list[Finding] = []
    geometry_errors: list[Finding] = []
    if driver in ("CSV", "XLSX"):
        frame = _read_csv(path, encoding) if driver == "CSV" else _read_xlsx(path, layer)
        frame = restore_frame(frame)  # text our exports guarded against formulas
        frame.columns = [str(c).strip() for c in frame.columns]
        if require_geometry:
            frame, geoms, geometry_errors = _tabular_geometry(frame, geometry_columns or {})
        else:
            frame, geoms = _drop_geometry_columns(frame, geometry_columns or {})
        file_crs, wkb = None, None
        row_offset = 1  # the header is line 1, the first record line 2
    else:
        paths = [str(path)]
        if driver == "zip":
            driver, paths = _zip_members(path)
        frame, geoms, file_crs, warnings, wkb = _read_ogr(paths, layer, encoding, driver)
        row_offset = 0
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and shapely.has_z(geoms[~shapely.is_missing(geoms)]).any():
        geoms, wkb = shapely.force_2d(geoms), None
    label = "none"
    if require_geometry and len(frame):
        converted, label = to_wgs84(geoms, file_crs, crs, warnings)
        if converted is not geoms:
            geoms, wkb = converted, None
    for f in geometry_errors:
        if f.row is not None:
            f.row += row_offset
    return Source(frame, geoms, driver, label, warnings, geometry_errors, row_offset, wkb)


def _drop_geometry_columns(
    frame: pd.DataFrame, geometry_columns: dict[str, str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """For tables without geometry (people): an array of None geometries."""
    return frame, np.full(len(frame), None, dtype=object)
