"""Export grids, facilities and hazards to GeoPackage, GeoJSON, zipped Shapefile, CSV or XLSX,
for the whole territory or a subtree, in WGS84, CGCS2000 (EPSG:4490) or GCJ-02."""

from __future__ import annotations

import json
import tempfile
import warnings as warnings_module
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
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


def _flatten(frame: pd.DataFrame, reserved: set[str]) -> pd.DataFrame:
    """One column per attribute key (keys that clash with a core column get an attr_ prefix)."""
    attrs = frame.pop("attributes")
    keys: list[str] = []
    seen: set[str] = set()
    for obj in attrs:
        for k in obj or {}:
            if k not in seen:
                seen.add(k)
                keys.append(k)
    for k in keys:
        col = k if k not in reserved else f"attr_{k}"
        values = [_json_value((obj or {}).get(k)) for obj in attrs]
        present = [x for x in values if x is not None]
        if present and all(isinstance(x, bool) for x in present):
            frame[col] = pd.array(values, dtype="boolean")
        elif present and all(isinstance(x, int) and not isinstance(x, bool) for x in present):
            frame[col] = pd.array(values, dtype="Int64")
        elif present and all(isinstance(x, (int, float)) for x in present):
            frame[col] = pd.array(values, dtype="Float64")
        else:
            frame[col] = pd.array([None if x is None else str(x) for x in values], dtype=object)
    return frame


def load_frame(
    conn: Connection, layer: ExportLayer, root: str | None, crs: ExportCrs
) -> gpd.GeoDataFrame:
    """The layer's rows as a GeoDataFrame in the asked coordinate system."""
    rows = conn.execute(_QUERIES[layer], {"root": root}).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows])
    if frame.empty:
        frame = pd.DataFrame({"wkb": pd.Series(dtype=object)})
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else np.array([])
    if "attributes" in frame:
        frame = _flatten(frame, set(frame.columns))
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


def write_export(
    gdf: gpd.GeoDataFrame, layer: ExportLayer, fmt: ExportFormat, folder: Path, crs: ExportCrs
) -> tuple[Path, list[str]]:
    """Write the frame in ``fmt`` under ``folder``; returns the file and any warnings."""
    warnings: list[str] = []
    name = layer.value
    target = folder / f"{name}{SUFFIX[fmt]}"
    if fmt is ExportFormat.gpkg:
        pyogrio.write_dataframe(gdf, target, layer=name, driver="GPKG", promote_to_multi=False)
    elif fmt is ExportFormat.geojson:
        opts = {"COORDINATE_PRECISION": 8, "RFC7946": "NO" if crs is ExportCrs.gcj02 else "YES"}
        pyogrio.write_dataframe(gdf, target, driver="GeoJSON", layer_options=opts)
    elif fmt is ExportFormat.shp:
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
    elif fmt is ExportFormat.csv:
        # A UTF-8 BOM so that Excel shows the Chinese correctly.
        _wkt_frame(gdf).to_csv(target, index=False, encoding="utf-8-sig")
    else:
        table = _wkt_frame(gdf)
        too_long = table["wkt"].str.len() > EXCEL_CELL_MAX if len(table) else []
        if len(table) and too_long.any():
            codes = table.loc[too_long, table.columns[0]].astype(str).tolist()
            warnings.append(
                f"{len(codes)} geometries are longer than an Excel cell holds ({EXCEL_CELL_MAX} "
                f"characters) and were left empty: {', '.join(codes[:10])}; export GeoPackage "
                "for those"
            )
            table.loc[too_long, "wkt"] = None
        table.to_excel(target, index=False, sheet_name=name, engine="openpyxl")
    return target, warnings


def export_layer(
    conn: Connection,
    layer: ExportLayer,
    fmt: ExportFormat,
    root: str | None = None,
    crs: ExportCrs = ExportCrs.wgs84,
    folder: Path | None = None,
) -> ExportResult:
    """Query and write one layer; the file lands in ``folder`` (a new temp folder if None)."""
    if root is not None and conn.execute(ROOT_EXISTS, {"root": root}).first() is None:
        raise LookupError(f"no grid has the code '{root}'")
    folder = Path(folder or tempfile.mkdtemp(prefix="gis-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    gdf = load_frame(conn, layer, root, crs)
    with warnings_module.catch_warnings():
        # GCJ-02 has no EPSG code, so pyogrio warns that the file declares none: we know.
        warnings_module.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        path, warnings = write_export(gdf, layer, fmt, folder, crs)
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
        count=len(gdf),
        crs={"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "GCJ-02"}[crs.value],
        warnings=warnings,
    )
