"""The HTTP side of hazards: the list filters, the list response (shared with
/grids/{id}/hazards), and the body of a write: JSON, or multipart form fields plus photos."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from gis_service.catalog.schemas import X_DECLARED
from gis_service.config import Settings
from gis_service.errors import BadRequest, Invalid, PayloadTooLarge, UnsupportedMediaType
from gis_service.geo.datums import Datum
from gis_service.hazards import sql
from gis_service.hazards.photos import Upload, check_count
from gis_service.hazards.queries import HazardFilter, list_params
from gis_service.hazards.schemas import ActionIn, ReportIn
from gis_service.hazards.states import CLOSED_STATUSES, HAZARD_STATUSES, OPEN_STATUSES
from gis_service.http.bodies import body_error, inlined
from gis_service.http.deps import (
    BBoxDep,
    CatalogDep,
    Db,
    Instant,
    NearDep,
    SettingsDep,
    code_list_pattern,
    code_list_query,
    id_query,
)
from gis_service.http.forms import read_form
from gis_service.http.listing import OutputFormat, Page, list_response
from gis_service.instants import as_utc
from gis_service.patches import without_null

M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise body_error(exc) from None


async def read_body(request: Request, model: type[M], settings: Settings) -> tuple[M, list[Upload]]:
    """The body as ``model`` and the uploaded files (multipart only); 4xx with a clear message
    for another content type, malformed JSON, too many or too large files."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        limit = settings.photo_max_count * settings.photo_max_bytes + 1024 * 1024
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(
                f"The request is {int(length) / 1048576:.1f} MB; at most "
                f"{settings.photo_max_count} photos of {settings.photo_max_bytes / 1048576:.0f} MB "
                "each are accepted.",
                code="body_too_large",
                bytes=int(length),
                max_bytes=limit,
            )
        form = await read_form(request, max_files=settings.photo_max_count, files_word="photos")
        fields: dict[str, str] = {}
        uploads: list[Upload] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(settings.photo_max_bytes + 1)
                uploads.append(Upload(value.filename, data))
            elif key in fields:
                raise Invalid(f"Form field {key!r} is given twice.")
            elif value != "":
                fields[key] = value
        check_count(len(uploads), settings)
        return _validated(model, fields), uploads
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.", code="bad_json") from None
        if not isinstance(data, dict):
            raise Invalid("The body must be a JSON object.")
        return _validated(model, data), []
    raise UnsupportedMediaType(
        f"Send application/json, or multipart/form-data with photos (or a plain "
        f"application/x-www-form-urlencoded form); got {ctype!r}.",
        content_type=ctype,
    )


async def report_body(request: Request, settings: SettingsDep) -> tuple[ReportIn, list[Upload]]:
    """The report and its photo files."""
    return await read_body(request, ReportIn, settings)


async def action_body(request: Request, settings: SettingsDep) -> tuple[ActionIn, list[Upload]]:
    """The move and its photo files."""
    return await read_body(request, ActionIn, settings)


# Photos per request unless GIS_PHOTO_MAX_COUNT says otherwise (the document is built once).
_PHOTOS = Settings.model_fields["photo_max_count"].default
# An empty form field is left out (read_body), so an optional one may be sent empty.
_EMPTY = {"type": "string", "maxLength": 0}


def _form_field(prop: dict, required: bool) -> dict:
    """A JSON body's field as a text part of the same form: the value's own schema (a form
    sends it as text, read_body reads it back), never null; a list is one comma-separated
    text (VisitIn.needs); empty when optional, as read_body drops an empty field."""
    meta = {k: prop[k] for k in ("title", "description") if k in prop}
    value = {k: v for k, v in without_null(prop).items() if k not in (*meta, "default")}
    if value.get("type") == "array":
        value = {"type": "string"}
    if required:
        if value.get("type") == "string":
            value = {"minLength": 1, **value}
        return {**meta, **value}
    return {**meta, "anyOf": [value, _EMPTY]}


def json_or_multipart_body(model: type[BaseModel], required: list[str]) -> dict:
    """OpenAPI request body of an endpoint that takes JSON, or the same as multipart + photos:
    one schema, the form's fields derived from the JSON body's (issue 11, finding 12: the
    form said "any text" where the server reads a number or a code)."""
    body = inlined(model.model_json_schema())
    form = {
        "type": "object",
        "description": f"The same fields as text, plus up to {_PHOTOS} files in 'photos'.",
        "properties": {
            **{k: _form_field(v, k in required) for k, v in body["properties"].items()},
            "photos": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "maxItems": _PHOTOS,
            },
        },
        "required": required,
        "additionalProperties": False,
        **{k: v for k, v in body.items() if k in ("allOf", "anyOf", "oneOf")},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": body},
                "multipart/form-data": {"schema": form},
            },
        }
    }


# ---- lists ------------------------------------------------------------------------------------
def csv_list(raw: str | None, allowed: tuple[str, ...] | None, name: str) -> list[str] | None:
    """A comma list from a query parameter, each item checked against ``allowed``."""
    if raw is None or raw == "":
        return None
    items = [x.strip() for x in raw.split(",") if x.strip()]
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise Invalid(
                f"Unknown {name}: {', '.join(bad)}. Allowed: {', '.join(allowed)}.", **{name: bad}
            )
    return items


def status_list(raw: str | None) -> list[str] | None:
    """Expand ``open``/``closed``/``all`` and check status names."""
    if raw in (None, "", "all"):
        return None
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if item == "open":
            out.extend(OPEN_STATUSES)
        elif item == "closed":
            out.extend(CLOSED_STATUSES)
        else:
            out.extend(csv_list(item, HAZARD_STATUSES, "status") or [])
    return out


async def hazard_filter_query(
    catalog: CatalogDep,
    bbox: BBoxDep,
    near: NearDep,
    status: Annotated[
        str | None,
        Query(
            description="open, closed, all, or a comma list of states (reported, accepted, "
            "rejected, dispatched, in_progress, resolved, verified, closed).",
            json_schema_extra={
                X_DECLARED: {
                    "pattern": "^all$|" + code_list_pattern((*HAZARD_STATUSES, "open", "closed"))
                }
            },
        ),
    ] = None,
    category: Annotated[
        str | None, code_list_query("Comma list of hazard-category codes.", "hazard_categories")
    ] = None,
    grid: Annotated[int | None, id_query("Only hazards routed into this grid's subtree.")] = None,
    since: Annotated[Instant | None, Query(description="Reported at or after (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Reported before (ISO 8601).")] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not.")] = None,
) -> HazardFilter:
    """Parse every hazard-list filter."""
    # In UTC before they reach the read pool: asyncpg converts aware values itself and
    # overflows where PostgreSQL would not (9999-12-31T23:59:59-14:00).
    since = as_utc(since) if since and since.tzinfo else since
    until = as_utc(until) if until and until.tzinfo else until
    return HazardFilter(
        statuses=status_list(status),
        categories=csv_list(category, tuple(catalog.hazard_categories), "category"),
        grid=grid,
        bbox=bbox,
        near=near,
        since=since,
        until=until,
        overdue=overdue,
    )


FilterDep = Annotated[HazardFilter, Depends(hazard_filter_query)]


async def hazard_list(
    db: Db, request: Request, flt: HazardFilter, page: Page, fmt: OutputFormat, crs: Datum
) -> Response:
    """A hazard list as GeoJSON or CSV (for /hazards and /grids/{id}/hazards)."""
    statements = (sql.HAZARD_LIST, sql.HAZARD_LIST_CSV)
    params = list_params(flt, crs)
    return await list_response(db, request, page, fmt, statements, params, "hazards")
