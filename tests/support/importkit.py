"""Helpers of the import, export and coverage tests: a small grid tree drawn in code, files of
every format written from it, and fresh migrated databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Engine, text

from gis_service.db.engine import make_engine
from gis_service.interchange.load import ImportOptions, run_import
from gis_service.interchange.mapping import build_mapping
from gis_service.interchange.report import Report
from tests.support.databases import CATALOG, Databases

X0, Y0 = 113.600, 34.700
D = 0.01  # ~0.9 km × 1.1 km


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle in degrees from the origin (X0, Y0)."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def tree(prefix: str = "T", dx: float = 0.0) -> gpd.GeoDataFrame:
    """Street › 2 communities › 2 grids each › 2 micro-grids each (15 grids), all exact."""
    rows: list[dict[str, Any]] = []

    def add(code, name, level, parent, geom, leader=None):
        rows.append(
            {
                "code": code,
                "name": name,
                "level": level,
                "parent": parent,
                "leader_name": leader or f"{name}负责人",
                "leader_phone": "0371-55500001",
                "households": len(rows) * 10,
                "geometry": geom,
            }
        )

    s = f"{prefix}S"
    add(s, f"{prefix}街道", "street", None, box(dx, 0, dx + 2 * D, D))
    for ci in range(2):
        c = f"{prefix}C{ci}"
        add(c, f"{prefix}社区{ci}", "community", s, box(dx + ci * D, 0, dx + (ci + 1) * D, D))
        for gi in range(2):
            g = f"{c}G{gi}"
            y0, y1 = gi * D / 2, (gi + 1) * D / 2
            add(g, f"{prefix}网格{ci}{gi}", "grid", c, box(dx + ci * D, y0, dx + (ci + 1) * D, y1))
            for mi in range(2):
                x0 = dx + ci * D + mi * D / 2
                add(
                    f"{g}M{mi}", f"微网格{ci}{gi}{mi}", "micro_grid", g, box(x0, y0, x0 + D / 2, y1)
                )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def write(gdf: gpd.GeoDataFrame, folder: Path, fmt: str, name: str = "grids") -> Path:
    """Write a frame as geojson, gpkg, shp (zipped), kml, csv (WKT) or xlsx (WKT)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        path = folder / f"{name}.geojson"
        gdf.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        path = folder / f"{name}.gpkg"
        gdf.to_file(path, driver="GPKG", layer=name)
    elif fmt == "shp":
        import zipfile

        d = folder / f"{name}_shp"
        d.mkdir(exist_ok=True)
        short = gdf.rename(columns={"leader_name": "leader", "leader_phone": "leader_tel"})
        pyogrio.write_dataframe(short, d / f"{name}.shp", encoding="UTF-8")
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in d.iterdir():
                zf.write(f, f.name)
    elif fmt == "kml":
        path = folder / f"{name}.kml"
        pyogrio.write_dataframe(gdf.to_crs(4326), path, driver="KML")
    elif fmt in ("csv", "xlsx"):
        table = pd.DataFrame(gdf.drop(columns="geometry"))
        table["wkt"] = shapely.to_wkt(gdf.geometry.values, rounding_precision=10)
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_excel(path, index=False)
    else:
        raise ValueError(fmt)
    return path


def fresh(databases: Databases, prefix: str = "imp") -> tuple[str, Engine]:
    """A new migrated database (with the layer catalog synced) and an engine on it."""
    url = databases.new(prefix, CATALOG)
    return url, make_engine(url, pool_size=2)


def imp(engine: Engine, path: Path, layer: str = "grids", **kw: Any) -> Report:
    """run_import with keyword options; ``fields``/``defaults`` lists go into the mapping."""
    mapping = build_mapping(layer, kw.pop("fields", None), kw.pop("defaults", None))
    return run_import(engine, path, ImportOptions(layer=layer, mapping=mapping, **kw))


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """One value."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def kinds(report: Report) -> dict[str, int]:
    """Finding counts by kind (errors and warnings together)."""
    return {k.split(":", 1)[1]: n for k, n in report.kinds().items()}
