"""HTTP routes: upload an import, download an export, the coverage check, the changes feed
and the reassignment of hazards after a redraw."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import Connection, text
from starlette.background import BackgroundTask

from gis_service.auth.deps import PUBLIC_READ, require
from gis_service.auth.principal import Principal
from gis_service.errors import Forbidden, Invalid, NotFound, PayloadTooLarge
from gis_service.http.deps import Conn, Crs, EngineDep, SettingsDep, reject_unknown_query
from gis_service.http.responses import GeoJSONResponse
from gis_service.imports import changes as changes_mod
from gis_service.imports.coverage import Tolerances, check_coverage
from gis_service.imports.export import ExportCrs, ExportFormat, ExportLayer, export_layer
from gis_service.imports.load import ImportOptions, run_import
from gis_service.imports.mapping import MappingError, build_mapping

router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])

IMPORTERS = require(roles={"admin", "street_staff"}, scopes={"import"})
EXPORTERS = require(roles={"admin", "street_staff"}, scopes={"export"})
DISPATCHERS = require(roles={"admin", "street_staff"}, scopes={"dispatch"})

_GRID_CODE_PATH = text("SELECT path FROM grids WHERE code = :code ORDER BY valid_from DESC LIMIT 1")
_CODE_OF = text("SELECT code FROM grids WHERE id = :id")


def _scoped_root(conn: Connection, principal: Principal, root: str | None) -> str | None:
    """The subtree a caller may act on: their own grid when they name none; 403 outside it."""
    if principal.whole_territory:
        return root
    if root is None:
        return conn.execute(_CODE_OF, {"id": principal.grid_id}).scalar()
    path = conn.execute(_GRID_CODE_PATH, {"code": root}).scalar()
    if path is None:
        raise NotFound(f"No grid has the code '{root}'.", root=root)
    if not principal.in_scope(path):
        raise Forbidden(f"Grid {root} lies outside your area; export your own subtree.")
    return root


@router.post(
    "/imports",
    tags=["imports"],
    summary="Import grids, facilities or people from an uploaded file",
    responses={422: {"description": "The file was refused; details hold the full report"}},
)
def upload_import(
    settings: SettingsDep,
    engine: EngineDep,
    principal: Annotated[Principal, Depends(IMPORTERS)],
    file: Annotated[UploadFile, File(description="GeoJSON, GPKG, zipped SHP, KML, CSV, XLSX")],
    layer: Annotated[Literal["grids", "facilities", "people"], Form()] = "grids",
    check: Annotated[bool, Form(description="Dry run: report only, write nothing.")] = False,
    update: Annotated[bool, Form(description="Change what differs in existing rows.")] = False,
    fix: Annotated[bool, Form(description="Repair invalid geometry with ST_MakeValid.")] = False,
    crs: Annotated[
        str | None, Form(description="EPSG:4490, EPSG:4547, gcj02, bd09 … (files without CRS)")
    ] = None,
    sheet: Annotated[str | None, Form(description="Layer or sheet name in the file.")] = None,
    encoding: Annotated[str | None, Form(description="Text encoding, e.g. GBK.")] = None,
    mapping: Annotated[str | None, Form(description="Mapping YAML (field: column).")] = None,
    fields: Annotated[
        list[str] | None, Form(description="KEY=COLUMN, repeatable (code=GRIDCODE).")
    ] = None,
    defaults: Annotated[
        list[str] | None, Form(description="KEY=VALUE, repeatable (level=micro_grid).")
    ] = None,
    valid_from: Annotated[
        str | None, Form(description="When new versions take effect (date or ISO time).")
    ] = None,
    retire_missing: Annotated[
        bool, Form(description="End current grids the file no longer lists.")
    ] = False,
) -> dict:
    """Read the file with GeoPandas/pyogrio, check it, and write it in one transaction.
    A refused file answers 422 with the report: every finding names the row, the field and
    what to do."""
    try:
        field_mapping = build_mapping(layer, fields, defaults, mapping)
    except MappingError as exc:
        raise Invalid(str(exc)) from exc
    start = _when(valid_from, "valid_from") if valid_from else None
    name = Path(file.filename or "upload").name
    folder = Path(tempfile.mkdtemp(prefix="gis-import-"))
    try:
        target = folder / name
        with target.open("wb") as out:
            copied = 0
            while chunk := file.file.read(1 << 20):
                copied += len(chunk)
                if copied > settings.import_max_bytes:
                    raise PayloadTooLarge(
                        f"The file is larger than {settings.import_max_bytes:,} bytes; split it "
                        "or use the command line (gis-service import).",
                        code="too_large",
                    )
                out.write(chunk)
        opts = ImportOptions(
            layer=layer,
            check=check,
            update=update,
            fix=fix,
            crs=crs,
            source_layer=sheet,
            encoding=encoding,
            mapping=field_mapping,
            valid_from=start,
            retire_missing=retire_missing,
            actor=principal.audit_name(),
            source_name=name,
        )
        report = run_import(engine, target, opts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = report.as_dict()
    if report.status == "refused":
        first = next((f for f in report.findings if f.severity == "error"), None)
        message = (
            f"{name} was not imported: {report.errors} error(s)"
            + (f", first: {first.message}" if first else "")
            + ". Nothing was written; see details.findings."
        )
        raise Invalid(message, code="import_refused", **body)
    return body


@router.get(
    "/exports/{layer}",
    tags=["imports"],
    summary="Download grids, facilities or hazards as GPKG, GeoJSON, Shapefile, CSV or XLSX",
    response_class=FileResponse,
)
def download_export(
    conn: Conn,
    principal: Annotated[Principal, Depends(EXPORTERS)],
    layer: ExportLayer,
    format: Annotated[ExportFormat, Query(description="gpkg, geojson, shp (zip), csv, xlsx")] = (
        ExportFormat.gpkg
    ),
    root: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Grid code of the subtree.")
    ] = None,
    crs: Annotated[
        ExportCrs, Query(description="wgs84 (EPSG:4326), cgcs2000 (EPSG:4490) or gcj02")
    ] = ExportCrs.wgs84,
) -> FileResponse:
    """The layer for the whole territory or a subtree; the file imports back unchanged."""
    root = _scoped_root(conn, principal, root)
    folder = Path(tempfile.mkdtemp(prefix="gis-export-"))
    try:
        result = export_layer(conn, layer, format, root, crs, folder)
    except LookupError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise NotFound(str(exc), root=root) from exc
    headers = {"X-Feature-Count": str(result.count), "X-CRS": result.crs}
    if result.warnings:
        headers["X-Export-Warnings"] = (
            " | ".join(result.warnings).encode("ascii", "replace")[:1000].decode()
        )
    return FileResponse(
        result.path,
        media_type=result.media_type,
        filename=result.filename,
        headers=headers,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@router.get(
    "/grids/check",
    tags=["grids"],
    response_class=GeoJSONResponse,
    summary="Coverage check: gaps, overlaps, children outside their parent, slivers, no leader",
    dependencies=[Depends(PUBLIC_READ)],
)
def grids_check(
    conn: Conn,
    root: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Grid code of the subtree.")
    ] = None,
    sliver_m2: Annotated[float, Query(gt=0, le=10000, description="Slivers: smaller than.")] = 10.0,
    sliver_width_m: Annotated[
        float, Query(ge=0, le=100, description="Slivers: thinner than (2·area/perimeter).")
    ] = 0.5,
    noise_m2: Annotated[float, Query(ge=0, le=1, description="Ignored: smaller than.")] = 0.01,
) -> GeoJSONResponse:
    """Each finding is a Feature with its geometry and area in m² (on the spheroid)."""
    import json

    try:
        body = check_coverage(conn, root, Tolerances(noise_m2, sliver_m2, sliver_width_m))
    except LookupError as exc:
        raise NotFound(str(exc), root=root) from exc
    return GeoJSONResponse(json.dumps(body, ensure_ascii=False))


@router.get(
    "/grids/changes",
    tags=["grids"],
    summary="Grids added, redrawn or retired since a date (the boundary history)",
    dependencies=[Depends(PUBLIC_READ)],
)
def grids_changes(
    conn: Conn,
    crs: Crs,
    since: Annotated[str, Query(description="Date or ISO 8601 time.", examples=["2026-01-01"])],
    until: Annotated[str | None, Query(description="Date or ISO 8601 time (exclusive).")] = None,
    root: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    level: Annotated[
        Literal["street", "community", "grid", "micro_grid", "special"] | None, Query()
    ] = None,
    geometry: Annotated[bool, Query(description="Include each grid's geometry.")] = False,
) -> dict:
    """One entry per event: added, changed (with the fields that changed) or retired."""
    start = _when(since, "since")
    end = _when(until, "until") if until else None
    if end is not None and end <= start:
        raise Invalid("until must be after since.", since=since, until=until)
    return changes_mod.changes(conn, start, end, root, level, geometry, crs.value)


def _when(value: str, name: str) -> datetime:
    try:
        return changes_mod.parse_when(value)
    except ValueError as exc:
        raise Invalid(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time.") from exc


def reassign_query(
    conn: Conn,
    principal: Annotated[Principal, Depends(DISPATCHERS)],
    root: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    hazards: Annotated[str | None, Query(description="Comma list of hazard public codes.")] = None,
) -> tuple[str | None, list[str] | None]:
    """The subtree root (within the caller's scope) and the optional hazard codes."""
    codes = [c.strip() for c in hazards.split(",") if c.strip()] if hazards else None
    return _scoped_root(conn, principal, root), codes


ReassignQuery = Annotated[tuple[str | None, list[str] | None], Depends(reassign_query)]


@router.get(
    "/grids/reassign",
    tags=["grids"],
    summary="Open hazards that now lie in another grid (dry run: moves nothing)",
)
def reassign_plan(conn: Conn, query: ReassignQuery) -> dict:
    """What POST would move: each hazard's old and new grid and responsible person."""
    root, codes = query
    return changes_mod.reassign(conn, root, apply=False, codes=codes)


@router.post(
    "/grids/reassign",
    tags=["grids"],
    summary="Move open hazards to the grids that now cover them (recorded as hazard events)",
)
def reassign_apply(
    conn: Conn, principal: Annotated[Principal, Depends(DISPATCHERS)], query: ReassignQuery
) -> dict:
    """Apply the plan GET shows (optionally only the listed hazards), in one transaction."""
    root, codes = query
    if conn.in_transaction():
        conn.commit()
    with conn.begin():
        return changes_mod.reassign(
            conn, root, apply=True, codes=codes, actor=principal.audit_name()
        )
