"""Export grids, facilities and hazards to GeoPackage, GeoJSON, zipped Shapefile, CSV or XLSX,
for the whole territory or a subtree, in WGS84, CGCS2000 (EPSG:4490) or GCJ-02."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings as warnings_module
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Connection, TextClause, text

from gis_service.geo.datums import Datum, geometry_from_wgs84
from gis_service.grids.sql import ROOT_IDS
from gis_service.interchange.xlsx import SheetWriter

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
             AND gis_valid_at(a.valid_from, a.valid_to, now())
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


# The geometry type of each layer's GeoPackage table.
GPKG_GEOMETRY = {
    ExportLayer.grids: "MultiPolygon",
    ExportLayer.facilities: "Unknown",
    ExportLayer.hazards: "Point",
}

# Rows are read and written this many at a time: memory stays flat whatever the layer's size.
CHUNK_ROWS = 10_000

# Each attribute key of the layer's rows, in order of first appearance, with its JSON types:
# the file's columns are fixed before the first row is written.
_ATTRIBUTE_KEYS = """
    SELECT k.key, array_agg(DISTINCT jsonb_typeof(k.value)) AS types,
           coalesce(bool_and((k.value #>> '{{}}')::numeric = trunc((k.value #>> '{{}}')::numeric))
                        FILTER (WHERE jsonb_typeof(k.value) = 'number'), true) AS integral
      FROM (SELECT row_number() OVER () AS rn, q.attributes FROM ({query}) q) r,
           jsonb_each(r.attributes) k
     GROUP BY k.key
     ORDER BY min(r.rn), k.key
"""


@dataclass(frozen=True)
class AttributeColumn:
    """One flattened attribute: its key, its column name and its pandas dtype."""

    key: str
    column: str
    dtype: str


def attribute_columns(
    conn: Connection, layer: ExportLayer, root: str | None, reserved: set[str]
) -> list[AttributeColumn]:
    """The layer's attribute columns (keys clashing with a core column get an attr_ prefix)."""
    if layer is ExportLayer.hazards:
        return []
    query = text(_ATTRIBUTE_KEYS.format(query=_QUERIES[layer].text))
    out = []
    for key, types, integral in conn.execute(query, {"root": root}):
        kinds = set(types) - {"null"}
        if kinds == {"boolean"}:
            dtype = "boolean"
        elif kinds == {"number"}:
            dtype = "Int64" if integral else "Float64"
        else:
            dtype = "object"
        out.append(AttributeColumn(key, key if key not in reserved else f"attr_{key}", dtype))
    return out


# An attribute value as a file field holds it, by the column's type; objects and arrays as
# JSON text.
_ATTRIBUTE_SQL = {
    "boolean": "(q.attributes -> CAST(:{k} AS text))::boolean",
    "Int64": "(q.attributes ->> CAST(:{k} AS text))::numeric::bigint",
    "Float64": "(q.attributes ->> CAST(:{k} AS text))::float8",
    "object": "CASE jsonb_typeof(q.attributes -> CAST(:{k} AS text))"
    " WHEN 'string' THEN q.attributes ->> CAST(:{k} AS text) WHEN 'null' THEN NULL"
    " ELSE (q.attributes -> CAST(:{k} AS text))::text END",
}


def flat_query(
    layer: ExportLayer, core: list[str], columns: list[AttributeColumn]
) -> tuple[TextClause, dict[str, str]]:
    """The layer's query with one column per attribute key, flattened by PostgreSQL (the keys
    are bound parameters), and the parameters naming the keys."""
    picked = [f'q."{c}"' for c in core if c != "attributes"]
    params = {}
    for i, c in enumerate(columns):
        params[f"k{i}"] = c.key
        picked.append(_ATTRIBUTE_SQL[c.dtype].format(k=f"k{i}") + f" AS a{i}")
    sql = f"SELECT {', '.join(picked)} FROM ({_QUERIES[layer].text}) q"
    return text(sql), params


def _frame(
    rows: list[Any], names: list[str], columns: list[AttributeColumn], crs: ExportCrs
) -> gpd.GeoDataFrame:
    """One chunk of flat rows as a GeoDataFrame in the asked coordinate system."""
    core = [n for n in names if n != "attributes"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=core + [c.column for c in columns])
    for c in columns:  # one type per column for the whole layer, whatever this chunk holds
        frame[c.column] = pd.array(frame[c.column].tolist(), dtype=c.dtype)
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else np.array([])
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]) or (
            frame[col].dtype == object and any(isinstance(v, datetime) for v in frame[col][:1])
        ):
            frame[col] = frame[col].map(lambda t: None if pd.isna(t) else t.isoformat())
    if crs is ExportCrs.gcj02 and len(geoms):
        geoms = geometry_from_wgs84(np.asarray(geoms, dtype=object), Datum.gcj02)
    epsg = {ExportCrs.wgs84: "EPSG:4326", ExportCrs.cgcs2000: "EPSG:4490"}.get(crs)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=epsg), crs=epsg)


def iter_frames(
    conn: Connection, layer: ExportLayer, root: str | None, crs: ExportCrs
) -> Iterator[gpd.GeoDataFrame]:
    """The layer's rows in chunks of CHUNK_ROWS, flat, read through a server-side cursor; the
    first chunk comes even when there are no rows (it carries the columns)."""
    names = list(
        conn.execute(
            text(f"SELECT * FROM ({_QUERIES[layer].text}) q LIMIT 0"), {"root": root}
        ).keys()
    )
    columns = attribute_columns(conn, layer, root, set(names)) if "attributes" in names else []
    stmt, keys = flat_query(layer, names, columns)
    result = conn.execution_options(stream_results=True, max_row_buffer=CHUNK_ROWS).execute(
        stmt, {"root": root, **keys}
    )
    first = True
    for rows in result.partitions(CHUNK_ROWS):
        first = False
        yield _frame(rows, names, columns, crs)
    if first:
        yield _frame([], names, columns, crs)


def load_frame(
    conn: Connection, layer: ExportLayer, root: str | None, crs: ExportCrs
) -> gpd.GeoDataFrame:
    """The layer's rows as one GeoDataFrame in the asked coordinate system."""
    frames = list(iter_frames(conn, layer, root, crs))
    if len(frames) == 1:
        return frames[0]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def _wkt_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """A plain table: attributes, WKT, and lon/lat for points (what the importer reads)."""
    out = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    out["wkt"] = shapely.to_wkt(geoms, rounding_precision=8, trim=True) if len(geoms) else []
    return out


def _excel_table(table: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Empty the WKT cells longer than Excel holds, and say which rows lost theirs."""
    too_long = table["wkt"].str.len() > EXCEL_CELL_MAX if len(table) else []
    if len(table) and too_long.any():
        codes = table.loc[too_long, table.columns[0]].astype(str).tolist()
        warnings.append(
            f"{len(codes)} geometries are longer than an Excel cell holds ({EXCEL_CELL_MAX} "
            f"characters) and were left empty: {', '.join(codes[:10])}; export GeoPackage "
            "for those"
        )
        table.loc[too_long, "wkt"] = None
    return table


def _features(gdf: gpd.GeoDataFrame) -> Iterator[str]:
    """Each row as a GeoJSON Feature text: geometries by GEOS in one call, properties by
    json (pandas' own to_json builds every feature in Python and is several times slower)."""
    shapes = shapely.to_geojson(np.asarray(gdf.geometry.values, dtype=object))
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    for props, shape in zip(_cells_as_dicts(table), shapes, strict=True):
        text_ = json.dumps(props, ensure_ascii=False, default=_plain)
        yield f'{{"type": "Feature", "properties": {text_}, "geometry": {shape}}}'


def _plain(value: Any) -> Any:
    """numpy scalars as plain Python values, for json."""
    return value.item() if hasattr(value, "item") else str(value)


def _cells_as_dicts(table: pd.DataFrame) -> Iterator[dict[str, Any]]:
    names = [str(c) for c in table.columns]
    for row in _cells(table):
        yield dict(zip(names, row, strict=True))


def _cells(table: pd.DataFrame) -> Iterator[list[Any]]:
    """Rows of plain Python values (None for every kind of missing value)."""
    plain = table.astype(object).where(table.notna(), None)
    for row in plain.itertuples(index=False, name=None):
        yield list(row)


def write_export(
    frames: Iterable[gpd.GeoDataFrame],
    layer: ExportLayer,
    fmt: ExportFormat,
    folder: Path,
    crs: ExportCrs,
) -> tuple[Path, int, list[str]]:
    """Write the chunks in ``fmt`` under ``folder`` as they come; (file, rows, warnings).

    GeoPackage, GeoJSON, CSV and XLSX are written chunk by chunk (XLSX by our streaming
    writer, gis_service.interchange.xlsx), so memory does not grow with the layer; a Shapefile is
    written whole.
    """
    warnings: list[str] = []
    name = layer.value
    target = folder / f"{name}{SUFFIX[fmt]}"
    count = 0
    if fmt is ExportFormat.shp:
        gdf = gpd.GeoDataFrame(pd.concat(list(frames), ignore_index=True))
        _write_shapefile(gdf, name, folder, target, warnings)
        return target, len(gdf), warnings
    if fmt is ExportFormat.gpkg:
        for i, gdf in enumerate(frames):
            pyogrio.write_dataframe(
                gdf,
                target,
                layer=name,
                driver="GPKG",
                promote_to_multi=False,
                # Fixed by the first chunk, so say it for the whole layer: facilities mix
                # points and lines.
                geometry_type=GPKG_GEOMETRY[layer],
                append=i > 0,
            )
            count += len(gdf)
    elif fmt is ExportFormat.geojson:
        with open(target, "w", encoding="utf-8") as out:
            out.write(f'{{"type": "FeatureCollection", "name": "{name}", "features": [')
            for gdf in frames:
                if len(gdf):
                    out.write(("," if count else "") + ",".join(_features(gdf)))
                count += len(gdf)
            out.write("]}\n")
    elif fmt is ExportFormat.csv:
        # A UTF-8 BOM so that Excel shows the Chinese correctly.
        with open(target, "w", encoding="utf-8-sig", newline="") as out:
            for i, gdf in enumerate(frames):
                _wkt_frame(gdf).to_csv(out, index=False, header=i == 0)
                count += len(gdf)
    else:
        sheet = None
        try:
            for gdf in frames:
                table = _excel_table(_wkt_frame(gdf), warnings)
                if sheet is None:
                    sheet = SheetWriter(target, name, [str(c) for c in table.columns])
                sheet.write_rows(_cells(table))
                count += len(gdf)
        finally:
            if sheet is not None:
                sheet.close()
    return target, count, warnings


def _write_shapefile(
    gdf: gpd.GeoDataFrame, name: str, folder: Path, target: Path, warnings: list[str]
) -> None:
    """A zipped Shapefile (points and lines apart when a layer has both)."""
    short = gdf.rename(columns=SHAPEFILE_NAMES)
    long_names = [c for c in short.columns if c != short.geometry.name and len(str(c)) > 10]
    if long_names:
        warnings.append(
            "Shapefile field names hold 10 characters; shortened: " + ", ".join(long_names)
        )
    shp_dir = folder / "shp"
    shp_dir.mkdir()
    kinds = shapely.get_type_id(np.asarray(short.geometry.values, dtype=object))
    groups = {"": short}
    # One geometry type per Shapefile: facilities split into points and lines.
    if len(set(np.where(kinds == 5, 1, kinds).tolist())) > 1:
        groups = {
            "_points": short[kinds == 0],
            "_lines": short[(kinds == 1) | (kinds == 5)],
        }
    for suffix, part in groups.items():
        if len(part) or suffix == "":
            with warnings_module.catch_warnings():
                warnings_module.simplefilter("ignore", RuntimeWarning)  # reported above
                pyogrio.write_dataframe(
                    part,
                    shp_dir / f"{name}{suffix}.shp",
                    driver="ESRI Shapefile",
                    encoding="UTF-8",  # also writes the .cpg that tells readers so
                )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(shp_dir.iterdir()):
            zf.write(f, f.name)


def export_layer(
    conn: Connection,
    layer: ExportLayer,
    fmt: ExportFormat,
    root: str | None = None,
    crs: ExportCrs = ExportCrs.wgs84,
    folder: Path | None = None,
) -> ExportResult:
    """Query and write one layer, streaming; the file lands in ``folder`` (a new temp folder
    if None). A failure leaves no partial file behind."""
    if root is not None and conn.execute(ROOT_EXISTS, {"root": root}).first() is None:
        raise LookupError(f"no grid has the code '{root}'")
    made = folder is None
    folder = Path(folder or tempfile.mkdtemp(prefix="gis-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with warnings_module.catch_warnings():
            # GCJ-02 has no EPSG code, so pyogrio warns that the file declares none: we know.
            warnings_module.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            frames = iter_frames(conn, layer, root, crs)
            path, count, warnings = write_export(frames, layer, fmt, folder, crs)
    except BaseException:
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            (folder / f"{layer.value}{SUFFIX[fmt]}").unlink(missing_ok=True)
            shutil.rmtree(folder / "shp", ignore_errors=True)
        raise
    if crs is ExportCrs.gcj02:
        warnings.append(
            "GCJ-02 is not an EPSG coordinate system, so the file declares none; import it "
            "back with --crs gcj02"
        )
    stem = f"{layer.value}-{root}" if root else layer.value
    return ExportResult(
        path=path,
        filename=f"{stem}-{crs.value}{SUFFIX[fmt]}",
        media_type=MEDIA_TYPES[fmt],
        count=count,
        crs={"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "GCJ-02"}[crs.value],
        warnings=warnings,
    )
