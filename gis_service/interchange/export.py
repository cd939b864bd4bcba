"""Export grids, facilities and hazards to GeoPackage, GeoJSON, zipped Shapefile, CSV or XLSX,
for the whole territory or a subtree, in WGS84, CGCS2000 (EPSG:4490) or GCJ-02."""

from __future__ import annotations

import csv
import io
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
from gis_service.interchange import export_rows as text_rows
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
           g.valid_from, g.attributes, g.geom
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
           f.name, f.status, f.attributes, f.geom
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
           h.facility_code, h.geom
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


# Formats whose rows PostgreSQL writes as text (write_text).
TEXT_FORMATS = frozenset({ExportFormat.csv, ExportFormat.geojson, ExportFormat.xlsx})

# The geometry type of each layer's GeoPackage table.
GPKG_GEOMETRY = {
    ExportLayer.grids: "MultiPolygon",
    ExportLayer.facilities: "Unknown",
    ExportLayer.hazards: "Point",
}

# Rows are read and written this many at a time: memory stays flat whatever the layer's size.
CHUNK_ROWS = 10_000

# Each attribute key of the layer's rows with each JSON type it takes, where it first appears
# and, for numbers, whether all are whole: the file's columns are fixed before the first row
# is written. Grouped by key and type (no DISTINCT aggregate); the text test spares most
# numbers the numeric cast.
_ATTRIBUTE_KEYS = """
    SELECT k.key, jsonb_typeof(k.value) AS type, min(r.rn) AS first,
           bool_and(k.value::text !~ '[.eE]'
                    OR (k.value #>> '{{}}')::numeric = trunc((k.value #>> '{{}}')::numeric))
               FILTER (WHERE jsonb_typeof(k.value) = 'number') AS integral
      FROM (SELECT row_number() OVER () AS rn, q.attributes FROM ({query}) q) r,
           jsonb_each(r.attributes) k
     GROUP BY k.key, jsonb_typeof(k.value)
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
    found: dict[str, tuple[int, set[str], bool]] = {}
    for key, kind, first, integral in conn.execute(query, {"root": root}):
        at, kinds, whole = found.get(key, (first, set(), True))
        found[key] = (min(at, first), kinds | {kind}, whole and integral is not False)
    out = []
    for key, (_at, kinds, whole) in sorted(found.items(), key=lambda kv: (kv[1][0], kv[0])):
        kinds = kinds - {"null"}
        if kinds == {"boolean"}:
            dtype = "boolean"
        elif kinds == {"number"}:
            dtype = "Int64" if whole else "Float64"
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
    layer: ExportLayer,
    core: list[str],
    columns: list[AttributeColumn],
    geometry: str = "ST_AsBinary(q.geom) AS wkb",
) -> tuple[TextClause, dict[str, str]]:
    """The layer's query with one column per attribute key, flattened by PostgreSQL (the keys
    are bound parameters), the geometry as ``geometry``, and the parameters naming the keys."""
    picked = [geometry if c == "geom" else f'q."{c}"' for c in core if c != "attributes"]
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
    core = ["wkb" if n == "geom" else n for n in names if n != "attributes"]
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
    reserved = {*names, "wkb", "wkt"}
    columns = attribute_columns(conn, layer, root, reserved) if "attributes" in names else []
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


def _text_columns(
    conn: Connection, layer: ExportLayer, root: str | None
) -> tuple[TextClause, dict[str, Any], list[text_rows.Column]]:
    """The layer's flat query (geometry kept as is), its parameters, and its output columns."""
    query = _QUERIES[layer]
    core = text_rows.core_columns(conn, query, {"root": root})
    names = [c.name for c in core]
    reserved = {*names, "attributes", "geom", "wkb", "wkt"}
    attrs = attribute_columns(conn, layer, root, reserved)
    flat, keys = flat_query(layer, [*names, "geom", "attributes"], attrs, geometry="q.geom")
    return flat, {"root": root, **keys}, core + text_rows.attribute_columns(attrs)


def write_text(
    conn: Connection,
    layer: ExportLayer,
    fmt: ExportFormat,
    root: str | None,
    crs: ExportCrs,
    target: Path,
) -> tuple[int, list[str]]:
    """Write a CSV, GeoJSON or XLSX export whose rows PostgreSQL builds as text and COPY
    streams into the file; (rows, warnings)."""
    flat, params, columns = _text_columns(conn, layer, root)
    datum = "gcj02" if crs is ExportCrs.gcj02 else None
    params |= {
        "_datum": datum,
        "_xml_dropped": text_rows.XML_DROPPED,
        "_xml_care": text_rows.xml_care(),
        **text_rows.name_params(columns),
    }
    header = [c.name for c in columns]
    warnings: list[str] = []
    if fmt is ExportFormat.geojson:
        sql = text_rows.geojson_statement(flat.text, columns, datum)
        with open(target, "wb") as out:
            head = f'{{"type": "FeatureCollection", "name": "{layer.value}", "features": [\n'
            out.write(head.encode())
            sink = text_rows.Buffered(out.write)
            count = text_rows.copy_rows(conn, sql, params, sink, text_rows.COPY_AS_IS)
            sink.flush()
            out.write(b"]}\n")
        return count, warnings
    wkt = text_rows.geometry_sql(datum)
    if fmt is ExportFormat.csv:
        sql = text_rows.csv_statement(flat.text, columns, wkt)
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow([*header, "wkt"])
        # A UTF-8 BOM so that Excel shows the Chinese correctly.
        with open(target, "wb") as out:
            out.write(("\ufeff" + line.getvalue()).encode())
            sink = text_rows.Buffered(out.write)
            count = text_rows.copy_rows(conn, sql, params, sink, "FORMAT csv")
            sink.flush()
        return count, warnings
    long = (
        conn.execute(
            text(
                f"SELECT {columns[0].sql} FROM ({flat.text}) q WHERE ST_NPoints(q.geom) > "
                f"{EXCEL_CELL_MAX // 5} AND length(ST_AsText({wkt}, 8)) > {EXCEL_CELL_MAX}"
            ),
            params,
        )
        .scalars()
        .all()
    )
    if long:
        warnings.append(
            f"{len(long)} geometries are longer than an Excel cell holds ({EXCEL_CELL_MAX} "
            f"characters) and were left empty: {', '.join(map(str, long[:10]))}; export "
            "GeoPackage for those"
        )
    sql = text_rows.xlsx_statement(flat.text, columns, wkt, EXCEL_CELL_MAX)
    sheet = SheetWriter(target, layer.value, [*header, "wkt"])
    try:
        # Rows hold no line break of their own (see text_rows.XML_DROPPED): the ones COPY puts
        # between them go.
        sink = text_rows.Buffered(sheet.write_xml, lambda b: b.replace(b"\n", b""))
        count = text_rows.copy_rows(conn, sql, params, sink, text_rows.COPY_AS_IS)
        sink.flush()
    finally:
        sheet.close()
    return count, warnings


def write_export(
    frames: Iterable[gpd.GeoDataFrame],
    layer: ExportLayer,
    fmt: ExportFormat,
    folder: Path,
    crs: ExportCrs,
) -> tuple[Path, int, list[str]]:
    """Write the chunks as GeoPackage or Shapefile under ``folder``; (file, rows, warnings).

    A GeoPackage is written chunk by chunk, so memory does not grow with the layer; a
    Shapefile is written whole. (CSV, GeoJSON and XLSX are built by PostgreSQL: write_text.)
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
            if fmt in TEXT_FORMATS:
                path = folder / f"{layer.value}{SUFFIX[fmt]}"
                count, warnings = write_text(conn, layer, fmt, root, crs, path)
            else:
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
