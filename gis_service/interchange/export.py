"""Export grids, facilities and hazards to GeoPackage, GeoJSON, zipped Shapefile, CSV or XLSX,
for the whole territory or a subtree, in WGS84, CGCS2000 (EPSG:4490) or GCJ-02."""

from __future__ import annotations

import json
import tempfile
import threading
import warnings as warnings_module
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import shapely
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Connection, text

from gis_service.geo.datums import Datum, geometry_from_wgs84
from gis_service.grids.sql import ROOT_IDS
from gis_service.interchange.cells import neutralise_frame

EXCEL_CELL_MAX = 32767


class ExportFormat(StrEnum):
    """File formats of an export."""

    gpkg = "gpkg"
    geojson = "geojson"
    shp = "shp"
    csv = "csv"
    xlsx = "xlsx"


class ExportCrs(StrEnum):
    """Coordinate systems of an export."""

    wgs84 = "wgs84"
    cgcs2000 = "cgcs2000"
    gcj02 = "gcj02"


class ExportLayer(StrEnum):
    """What can be exported."""

    grids = "grids"
    facilities = "facilities"
    hazards = "hazards"


MEDIA_TYPES = {
    ExportFormat.gpkg: "application/geopackage+sqlite3",
    ExportFormat.geojson: "application/geo+json",
    ExportFormat.shp: "application/zip",
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SUFFIX = {
    ExportFormat.gpkg: ".gpkg",
    ExportFormat.geojson: ".geojson",
    ExportFormat.shp: ".zip",
    ExportFormat.csv: ".csv",
    ExportFormat.xlsx: ".xlsx",
}

# dBase field names hold at most 10 characters: the Shapefile gets these short names (the
# importer knows them too, so an exported Shapefile imports back).
SHAPEFILE_NAMES = {
    "parent_code": "parent",
    "leader_name": "leader",
    "leader_phone": "leader_tel",
    "type_code": "type",
    "public_code": "public_id",
    "description": "descr",
    "reported_at": "reported",
    "grid_code": "grid",
    "grid_chain": "chain",
    "facility_code": "facility",
    "category_name": "cat_name",
    "class_major": "class_maj",
    "class_source": "class_src",
}

# The subtree filter: every version id of the root's code (a redrawn root keeps its code).
GRIDS = text(
    f"""
    SELECT g.code, g.name, g.level, p.code AS parent_code,
           ldr.name AS leader_name, ldr.work_phone AS leader_phone,
           round(ST_Area(g.geom::geography)::numeric, 1)::float8 AS area_m2,
           g.valid_from, g.attributes, ST_AsBinary(g.geom) AS wkb
      FROM grids g
      JOIN grid_levels l ON l.code = g.level
      LEFT JOIN grids p ON p.id = g.parent_id
      LEFT JOIN LATERAL (
          SELECT pp.name, pp.work_phone
            FROM grid_assignments a JOIN people pp ON pp.id = a.person_id
           WHERE a.grid_id = g.id AND a.is_primary
             AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())
           LIMIT 1
      ) ldr ON true
     WHERE g.valid_to IS NULL
       AND (CAST(:root AS text) IS NULL OR g.path && {ROOT_IDS})
     ORDER BY l.rank, g.code
    """
)

FACILITIES = text(
    """
    SELECT f.code, f.type_code, t.name_zh AS type_name,
           -- GB/T 30428.2 大类 + 小类 of the type, and where the code comes from
           t.class_code, t.definition ->> 'major_class_zh' AS class_major,
           t.definition ->> 'class_source' AS class_source,
           f.name, f.status, f.attributes, ST_AsBinary(f.geom) AS wkb
      FROM facilities f
      JOIN facility_types t ON t.code = f.type_code
     WHERE CAST(:root AS text) IS NULL
        OR EXISTS (SELECT 1 FROM grids r
                    WHERE r.code = CAST(:root AS text) AND r.valid_to IS NULL
                      AND ST_Intersects(r.geom, f.geom))
     ORDER BY f.code
    """
)

HAZARDS = text(
    f"""
    SELECT h.public_code, h.category_code AS category, c.name_zh AS category_name,
           -- GB/T 30428.2: an event takes its category's class, a component problem the
           -- class of its facility
           CASE WHEN c.standard_class ->> 'kind' = 'component'
                THEN (SELECT t.class_code FROM facilities f
                        JOIN facility_types t ON t.code = f.type_code
                       WHERE f.id = h.facility_id)
                ELSE c.standard_class ->> 'code' END AS class_code,
           CASE WHEN c.standard_class ->> 'kind' = 'component' THEN '部件' ELSE '事件' END
               AS class_kind,
           h.status,
           h.severity, h.source, h.description, h.address, h.reported_at, h.due_at,
           h.closed_at, h.grid_chain -> -1 ->> 'code' AS grid_code,
           (SELECT string_agg(e ->> 'name', ' › ' ORDER BY o)
              FROM jsonb_array_elements(h.grid_chain) WITH ORDINALITY AS x (e, o)) AS grid_chain,
           h.facility_code, ST_AsBinary(h.geom) AS wkb
      FROM hazards h
      JOIN hazard_categories c ON c.code = h.category_code
     WHERE CAST(:root AS text) IS NULL OR h.grid_path && {ROOT_IDS}
     ORDER BY h.reported_at, h.id
    """
)

ROOT_EXISTS = text("SELECT 1 FROM grids WHERE code = :root LIMIT 1")

_QUERIES = {
    ExportLayer.grids: GRIDS,
    ExportLayer.facilities: FACILITIES,
    ExportLayer.hazards: HAZARDS,
}


@dataclass
class ExportResult:
    """A written export: the file, how to serve it, and what it holds."""

    path: Path
    filename: str
    media_type: str
    count: int
    crs: str
    warnings: list[str] = field(default_factory=list)


def _json_value(v: Any) -> Any:
    """A flattened attribute value a file field can hold (lists and objects as JSON text)."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return v


@dataclass(frozen=True)
class AttributeColumn:
    """One attribute key as a file column, typed for the whole layer (not per chunk)."""

    key: str
    column: str
    dtype: str | None  # "boolean", "Int64", "Float64", or None for text


def attribute_columns(
    conn: Connection, layer: ExportLayer, root: str | None, reserved: set[str]
) -> list[AttributeColumn]:
    """The attribute keys of the layer's rows in order of first appearance, each with the
    type every one of its values fits (a file's columns are fixed before its first row)."""
    if layer is ExportLayer.hazards:
        return []
    rows = conn.execute(
        text(_ATTRIBUTE_KEYS.format(query=_QUERIES[layer].text)), {"root": root}
    ).all()
    out = []
    for r in rows:
        dtype = (
            "boolean" if r.all_bool else "Int64" if r.all_int else "Float64" if r.all_num else None
        )
        out.append(
            AttributeColumn(r.key, r.key if r.key not in reserved else f"attr_{r.key}", dtype)
        )
    return out


# Typed as _flatten did with the whole frame in memory: a JSON integer (jsonb keeps '1.0' a
# decimal, and reads '1e3' as 1000) is an int to Python's json, any other number a float.
_ATTRIBUTE_KEYS = """
    WITH q AS (SELECT row_number() OVER () AS rn, s.attributes FROM ({query}) s)
    SELECT e.key,
           bool_and(jsonb_typeof(e.value) = 'boolean')
               FILTER (WHERE jsonb_typeof(e.value) <> 'null') AS all_bool,
           bool_and(jsonb_typeof(e.value) = 'number' AND e.value::text ~ '^-?[0-9]+$')
               FILTER (WHERE jsonb_typeof(e.value) <> 'null') AS all_int,
           bool_and(jsonb_typeof(e.value) = 'number')
               FILTER (WHERE jsonb_typeof(e.value) <> 'null') AS all_num
      FROM q, jsonb_each(q.attributes) WITH ORDINALITY AS e (key, value, pos)
     WHERE jsonb_typeof(q.attributes) = 'object'
     GROUP BY e.key
     ORDER BY min(ARRAY[q.rn, e.pos])
"""


def _flatten(frame: pd.DataFrame, columns: list[AttributeColumn]) -> pd.DataFrame:
    """One column per attribute key, typed for the whole layer."""
    attrs = frame.pop("attributes") if "attributes" in frame else pd.Series([], dtype=object)
    for col in columns:
        values = [_json_value((obj or {}).get(col.key)) for obj in attrs]
        if col.dtype is not None:
            frame[col.column] = pd.array(values, dtype=col.dtype)
        else:
            frame[col.column] = pd.array(
                [None if x is None else str(x) for x in values], dtype=object
            )
    return frame


def _frame(
    rows: list[dict[str, Any]], names: list[str], columns: list[AttributeColumn], crs: ExportCrs
) -> gpd.GeoDataFrame:
    """A chunk of the layer's rows as a GeoDataFrame in the asked coordinate system."""
    frame = pd.DataFrame(rows, columns=names)
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else np.array([])
    if "attributes" in frame:
        frame = _flatten(frame, columns)
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].map(lambda t: None if pd.isna(t) else t.isoformat())
    if crs is ExportCrs.gcj02 and len(geoms):
        geoms = geometry_from_wgs84(np.asarray(geoms, dtype=object), Datum.gcj02)
    epsg = {ExportCrs.wgs84: "EPSG:4326", ExportCrs.cgcs2000: "EPSG:4490"}.get(crs)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=epsg), crs=epsg)


def _wkt_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """A plain table: attributes, WKT, and lon/lat for points (what the importer reads)."""
    out = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    out["wkt"] = shapely.to_wkt(geoms, rounding_precision=8, trim=True) if len(geoms) else []
    return neutralise_frame(out)  # read by spreadsheets: no text may run as a formula


# ---- writers: each takes the layer chunk by chunk, so memory stays bounded whatever its size
class _Writer:
    """Writes chunks of one layer to ``target``; ``close`` finishes the file."""

    def __init__(self, target: Path, name: str, crs: ExportCrs) -> None:
        self.target, self.name, self.crs = target, name, crs
        self.warnings: list[str] = []

    def write(self, gdf: gpd.GeoDataFrame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (nothing to do for most formats)."""


class _GpkgWriter(_Writer):
    """GeoPackage through GDAL: the first chunk creates the layer, the others append to it."""

    started = False

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        """Create the layer with the first chunk, append the others."""
        pyogrio.write_dataframe(
            gdf,
            self.target,
            layer=self.name,
            driver="GPKG",
            promote_to_multi=False,
            append=self.started,
        )
        self.started = True


class _GeoJsonWriter(_Writer):
    """GeoJSON: GDAL writes each chunk as a small file (with the precision and RFC 7946
    options, which GDAL applies only when it creates a file, not when it appends), and its
    feature lines are copied into the one file, so the result is what one write gives."""

    _HEADER_END = '"features": [\n'

    def __init__(self, target: Path, name: str, crs: ExportCrs) -> None:
        super().__init__(target, name, crs)
        self.chunk = target.parent / "chunk" / target.name
        self.chunk.parent.mkdir()
        self.out: Any = None
        self.footer = ""

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        """Write the chunk with GDAL, then append its features to the file."""
        rfc = "NO" if self.crs is ExportCrs.gcj02 else "YES"
        opts = {"COORDINATE_PRECISION": 8, "RFC7946": rfc}
        pyogrio.write_dataframe(gdf, self.chunk, driver="GeoJSON", layer_options=opts)
        text_ = self.chunk.read_text(encoding="utf-8")
        self.chunk.unlink()
        cut = text_.index(self._HEADER_END) + len(self._HEADER_END)
        end = text_.rindex("\n]")
        header, features, self.footer = text_[:cut], text_[cut:end], text_[end:]
        if self.out is None:
            self.out = self.target.open("w", encoding="utf-8")
            self.out.write(header)
        elif features:
            self.out.write(",\n")
        self.out.write(features)

    def close(self) -> None:
        """End the feature list as GDAL ends it."""
        self.out.write(self.footer)
        self.out.close()


class _ShapefileWriter(_Writer):
    """A zipped Shapefile; one geometry type per file, so facilities split into points and
    lines (the files get the suffix only when more than one type occurs)."""

    def __init__(self, target: Path, name: str, crs: ExportCrs) -> None:
        super().__init__(target, name, crs)
        self.folder = target.parent / "shp"
        self.folder.mkdir()
        self.parts: dict[str, bool] = {}

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        """Append each kind of geometry of the chunk to its file."""
        short = gdf.rename(columns=SHAPEFILE_NAMES)
        if not self.parts:
            long_names = [c for c in short.columns if c != short.geometry.name and len(str(c)) > 10]
            if long_names:
                self.warnings.append(
                    "Shapefile field names hold 10 characters; shortened: " + ", ".join(long_names)
                )
        kinds = shapely.get_type_id(np.asarray(short.geometry.values, dtype=object))
        groups = {
            suffix: short[np.isin(kinds, ids)]
            for suffix, ids in (("_points", (0, 4)), ("_lines", (1, 5)), ("_polygons", (3, 6)))
        }
        if not len(short):
            groups = {"_points": short}  # an empty layer still gets its file
        for suffix, part in groups.items():
            if not len(part) and (suffix in self.parts or len(short)):
                continue
            with warnings_module.catch_warnings():
                warnings_module.simplefilter("ignore", RuntimeWarning)  # reported above
                pyogrio.write_dataframe(
                    part,
                    self.folder / f"{self.name}{suffix}.shp",
                    driver="ESRI Shapefile",
                    encoding="UTF-8",  # also writes the .cpg that tells readers so
                    append=suffix in self.parts,
                )
            self.parts[suffix] = True

    def close(self) -> None:
        """Name the files plainly when one geometry type occurred, and zip them."""
        if len(self.parts) == 1:
            (suffix,) = self.parts
            for f in list(self.folder.glob(f"{self.name}{suffix}.*")):
                f.rename(f.with_name(self.name + f.name[len(self.name + suffix) :]))
        with zipfile.ZipFile(self.target, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(self.folder.iterdir()):
                zf.write(f, f.name)


class _CsvWriter(_Writer):
    """CSV with a UTF-8 BOM, so that Excel shows the Chinese correctly."""

    started = False

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        """Append the chunk's rows (the header and BOM with the first)."""
        _wkt_frame(gdf).to_csv(
            self.target,
            index=False,
            header=not self.started,
            mode="a" if self.started else "w",
            encoding="utf-8" if self.started else "utf-8-sig",
        )
        self.started = True


class _XlsxWriter(_Writer):
    """XLSX in openpyxl's write-only mode: rows go to disk as they come."""

    def __init__(self, target: Path, name: str, crs: ExportCrs) -> None:
        super().__init__(target, name, crs)
        self.book = openpyxl.Workbook(write_only=True)
        self.sheet = self.book.create_sheet(name)
        self.header = False
        self.too_long: list[str] = []

    def write(self, gdf: gpd.GeoDataFrame) -> None:
        """Append the chunk's rows; a geometry longer than a cell holds is left empty."""
        table = _wkt_frame(gdf)
        if not self.header:
            self.sheet.append([str(c) for c in table.columns])
            self.header = True
        if len(table):
            too_long = table["wkt"].str.len() > EXCEL_CELL_MAX
            if too_long.any():
                self.too_long += table.loc[too_long, table.columns[0]].astype(str).tolist()
                table.loc[too_long, "wkt"] = None
        for row in table.itertuples(index=False, name=None):
            self.sheet.append([_cell(v) for v in row])

    def close(self) -> None:
        """Save the workbook (and say which geometries did not fit)."""
        if self.too_long:
            self.warnings.append(
                f"{len(self.too_long)} geometries are longer than an Excel cell holds "
                f"({EXCEL_CELL_MAX} characters) and were left empty: "
                f"{', '.join(self.too_long[:10])}; export GeoPackage for those"
            )
        self.book.save(self.target)


def _cell(value: Any) -> Any:
    """A value openpyxl can write: no pandas missing values, no characters XML forbids."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _writer(fmt: ExportFormat, target: Path, name: str, crs: ExportCrs) -> _Writer:
    if fmt is ExportFormat.gpkg:
        return _GpkgWriter(target, name, crs)
    if fmt is ExportFormat.geojson:
        return _GeoJsonWriter(target, name, crs)
    if fmt is ExportFormat.shp:
        return _ShapefileWriter(target, name, crs)
    if fmt is ExportFormat.csv:
        return _CsvWriter(target, name, crs)
    return _XlsxWriter(target, name, crs)


# Rows per chunk: a few megabytes of frame, whatever the size of the layer.
CHUNK_ROWS = 5000
# One export at a time per process: each is long and heavy, and the service must stay
# responsive to everyone else while one runs (issue 11, finding 9); others wait their turn.
_ONE_AT_A_TIME = threading.Lock()


def export_layer(
    conn: Connection,
    layer: ExportLayer,
    fmt: ExportFormat,
    root: str | None = None,
    crs: ExportCrs = ExportCrs.wgs84,
    folder: Path | None = None,
    chunk_rows: int | None = None,
) -> ExportResult:
    """Query and write one layer, a chunk of rows at a time (a server-side cursor feeds
    the writer, so memory does not grow with the layer); the file lands in ``folder``
    (a new temp folder if None)."""
    if root is not None and conn.execute(ROOT_EXISTS, {"root": root}).first() is None:
        raise LookupError(f"no grid has the code '{root}'")
    folder = Path(folder or tempfile.mkdtemp(prefix="gis-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    writer = _writer(fmt, folder / f"{layer.value}{SUFFIX[fmt]}", layer.value, crs)
    rows_per_chunk = chunk_rows or CHUNK_ROWS
    count = 0
    with _ONE_AT_A_TIME, warnings_module.catch_warnings():
        # GCJ-02 has no EPSG code, so pyogrio warns that the file declares none: we know.
        warnings_module.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        # A server-side cursor: PostgreSQL hands the rows over a chunk at a time.
        result = conn.execute(
            _QUERIES[layer],
            {"root": root},
            execution_options={"stream_results": True, "max_row_buffer": rows_per_chunk},
        )
        names = list(result.keys())
        columns = attribute_columns(conn, layer, root, set(names) - {"wkb"})
        for rows in result.partitions(rows_per_chunk):
            gdf = _frame([tuple(r) for r in rows], names, columns, crs)
            writer.write(gdf)
            count += len(gdf)
            del gdf
        if count == 0:
            writer.write(_frame([], names, columns, crs))
        writer.close()
    warnings = writer.warnings
    if crs is ExportCrs.gcj02:
        warnings.append(
            "GCJ-02 is not an EPSG coordinate system, so the file declares none; import it "
            "back with --crs gcj02"
        )
    stem = f"{layer.value}-{root}" if root else layer.value
    return ExportResult(
        path=writer.target,
        filename=f"{stem}-{crs.value}{SUFFIX[fmt]}",
        media_type=MEDIA_TYPES[fmt],
        count=count,
        crs={"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "GCJ-02"}[crs.value],
        warnings=warnings,
    )
