"""HTTP routes of file interchange: upload an import, download an export."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.errors import Invalid, NotFound, PayloadTooLarge
from gis_service.grids.service import scoped_root
from gis_service.http.deps import Conn, EngineDep, SettingsDep, instant_param, reject_unknown_query
from gis_service.interchange.export import ExportCrs, ExportFormat, ExportLayer, export_layer
from gis_service.interchange.load import ImportOptions, run_import
from gis_service.interchange.mapping import MappingError, build_mapping

router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])

IMPORTERS = require(roles={"admin", "street_staff"}, scopes={"import"})
EXPORTERS = require(roles={"admin", "street_staff"}, scopes={"export"})


@router.post(
    "/imports",
    tags=["imports"],
    summary="Import grids, facilities, people or people under care from an uploaded file",
    responses={422: {"description": "The file was refused; details hold the full report"}},
)
def upload_import(
    settings: SettingsDep,
    engine: EngineDep,
    ip: ClientIp,
    principal: Annotated[Principal, Depends(IMPORTERS)],
    file: Annotated[UploadFile, File(description="GeoJSON, GPKG, zipped SHP, KML, CSV, XLSX")],
    layer: Annotated[
        Literal["grids", "facilities", "people", "care"],
        Form(description="care: a ledger of people under care (七必访台账), XLSX or CSV."),
    ] = "grids",
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
    start = instant_param(valid_from or None, "valid_from")
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
            principal=principal,
            ip=ip,
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
    root = scoped_root(conn, principal, root)
    folder = Path(tempfile.mkdtemp(prefix="gis-export-"))
    try:
        result = export_layer(conn, layer, format, root, crs, folder)
    except LookupError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise NotFound(str(exc), root=root) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no temp file outlives a failed export
        raise
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
