"""HTTP routes of file interchange: upload an import, download an export."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gis_service import scratch
from gis_service.auth.deps import ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.errors import Invalid, NotFound, PayloadTooLarge, UnsupportedMediaType
from gis_service.grids.service import scoped_root
from gis_service.http.bodies import body_error
from gis_service.http.deps import Conn, EngineDep, SettingsDep, instant_param, reject_unknown_query
from gis_service.http.forms import MAX_FIELD_BYTES, is_form, read_form
from gis_service.interchange.export import ExportCrs, ExportFormat, ExportLayer, export_layer
from gis_service.interchange.load import ImportOptions, run_import
from gis_service.interchange.mapping import MappingError, build_mapping

router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])

IMPORTERS = require(roles={"admin", "street_staff"}, scopes={"import"})
EXPORTERS = require(roles={"admin", "street_staff"}, scopes={"export"})
EXPORT_CHUNK_BYTES = 1 << 20


class ImportForm(BaseModel):
    """The text fields of an import upload (the file comes in the part named 'file')."""

    model_config = ConfigDict(extra="forbid")

    layer: Literal["grids", "facilities", "people", "care"] = "grids"
    check: bool = Field(default=False, description="Dry run: report only, write nothing.")
    update: bool = Field(default=False, description="Change what differs in existing rows.")
    fix: bool = Field(default=False, description="Repair invalid geometry with ST_MakeValid.")
    crs: str | None = Field(
        default=None,
        max_length=64,
        description="EPSG:4490, EPSG:4547, gcj02, bd09 … (files without CRS)",
    )
    sheet: str | None = Field(
        default=None, max_length=200, description="Layer or sheet name in the file."
    )
    encoding: str | None = Field(
        default=None, max_length=40, description="Text encoding, e.g. GBK."
    )
    mapping: str | None = Field(
        default=None, max_length=MAX_FIELD_BYTES, description="Mapping YAML (field: column)."
    )
    fields: list[str] | None = Field(
        default=None, description="KEY=COLUMN, repeatable (code=GRIDCODE)."
    )
    defaults: list[str] | None = Field(
        default=None, description="KEY=VALUE, repeatable (level=micro_grid)."
    )
    valid_from: str | None = Field(
        default=None, max_length=64, description="When new versions take effect (date or ISO time)."
    )
    retire_missing: bool = Field(
        default=False, description="End current grids the file no longer lists."
    )


@dataclass
class ImportUpload:
    """An upload that may be imported: its fields and the file, saved in a scratch folder."""

    form: ImportForm
    name: str
    path: Path


async def import_upload(
    request: Request, settings: SettingsDep, _: Annotated[Principal, Depends(IMPORTERS)]
) -> AsyncIterator[ImportUpload]:
    """The upload, read only once the caller may import: an anonymous 200 MB upload is
    refused before a byte of it is read. The file streams to a scratch folder (its cap
    checked as it comes), which is removed when the request ends."""
    if not is_form(request):
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data, in a part named 'file'.",
            content_type=request.headers.get("content-type", ""),
        )
    form = await read_form(request, max_files=1, files_word="files")
    try:
        values: dict[str, Any] = {}
        upload: UploadFile | None = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "file":
                    raise Invalid(f"The file must come in the part named 'file', not {key!r}.")
                upload = value
            elif key in ("fields", "defaults"):
                values.setdefault(key, []).append(value)
            elif key in values:
                raise Invalid(f"Form field {key!r} is given twice.")
            elif value != "":
                values[key] = value
        if upload is None:
            raise RequestValidationError(
                [{"loc": ("body", "file"), "msg": "Field required", "type": "missing"}]
            )
        try:
            fields = ImportForm.model_validate(values)
        except ValidationError as exc:
            raise body_error(exc) from None
        name = scratch.safe_name(upload.filename)
        with scratch.folder(settings, "import") as folder:
            target = folder / name
            await run_in_threadpool(_save, upload, target, settings.import_max_bytes)
            yield ImportUpload(fields, name, target)
    finally:
        await form.close()


def _save(upload: UploadFile, target: Path, limit: int) -> None:
    with target.open("wb") as out:
        copied = 0
        while chunk := upload.file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                raise PayloadTooLarge(
                    f"The file is larger than {limit:,} bytes; split it or use the command "
                    "line (gis-service import).",
                    code="too_large",
                )
            out.write(chunk)


def _import_body() -> dict[str, Any]:
    schema = ImportForm.model_json_schema()
    schema["properties"]["file"] = {
        "type": "string",
        "format": "binary",
        "description": "GeoJSON, GPKG, zipped SHP, KML, CSV, XLSX",
    }
    schema["required"] = ["file"]
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


@router.post(
    "/imports",
    tags=["imports"],
    summary="Import grids, facilities, people or people under care from an uploaded file",
    responses={422: {"description": "The file was refused; details hold the full report"}},
    openapi_extra=_import_body(),
)
def upload_import(
    engine: EngineDep,
    principal: Annotated[Principal, Depends(IMPORTERS)],
    ip: ClientIp,
    upload: Annotated[ImportUpload, Depends(import_upload)],
) -> dict:
    """Read the file with GeoPandas/pyogrio, check it, and write it in one transaction.
    A refused file answers 422 with the report: every finding names the row, the field and
    what to do."""
    f = upload.form
    try:
        field_mapping = build_mapping(f.layer, f.fields, f.defaults, f.mapping)
    except MappingError as exc:
        raise Invalid(str(exc)) from exc
    start = instant_param(f.valid_from or None, "valid_from")
    name = upload.name
    opts = ImportOptions(
        layer=f.layer,
        check=f.check,
        update=f.update,
        fix=f.fix,
        crs=f.crs,
        source_layer=f.sheet,
        encoding=f.encoding,
        mapping=field_mapping,
        valid_from=start,
        retire_missing=f.retire_missing,
        actor=principal.audit_name(),
        source_name=name,
        principal=principal,
        ip=ip,
    )
    report = run_import(engine, upload.path, opts)
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
    settings: SettingsDep,
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
    folder = scratch.new_folder(settings, "export")  # removed once the file is sent
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
    response = FileResponse(
        result.path,
        media_type=result.media_type,
        filename=result.filename,
        headers=headers,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
    # Sent in 1 MiB pieces, not 64 KiB: the gzip middleware compresses a piece that large in
    # a worker thread (a smaller one on the event loop, where ~700 pieces of a 47 MB GeoJSON
    # would hold up every other request, locate included, for a millisecond each).
    response.chunk_size = EXPORT_CHUNK_BYTES
    return response
