"""Read a write request's body: JSON, or multipart form fields plus photo files."""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis_service.config import Settings
from gis_service.errors import ApiError
from gis_service.hazards.photos import Upload, check_count

M = TypeVar("M", bound=BaseModel)

# Text fields of a form are short; anything longer is not a field of ours.
_MAX_FIELD_BYTES = 64 * 1024
_MAX_FIELDS = 50


def _validated(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from None


async def read_body(request: Request, model: type[M], settings: Settings) -> tuple[M, list[Upload]]:
    """The body as ``model`` and the uploaded files (multipart only); 4xx with a clear message
    for another content type, malformed JSON, too many or too large files."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        limit = settings.photo_max_count * settings.photo_max_bytes + 1024 * 1024
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise ApiError(
                413,
                "body_too_large",
                f"The request is {int(length) / 1048576:.1f} MB; at most "
                f"{settings.photo_max_count} photos of {settings.photo_max_bytes / 1048576:.0f} MB "
                "each are accepted.",
                {"bytes": int(length), "max_bytes": limit},
            )
        try:
            form = await request.form(
                max_files=settings.photo_max_count,
                max_fields=_MAX_FIELDS,
                max_part_size=_MAX_FIELD_BYTES,
            )
        except StarletteHTTPException as exc:
            if "files" in str(exc.detail).lower():
                raise ApiError(
                    422,
                    "too_many_photos",
                    f"At most {settings.photo_max_count} photos are accepted per report or step.",
                    {"max_count": settings.photo_max_count},
                ) from None
            raise ApiError(400, "bad_form", f"The form could not be read: {exc.detail}") from None
        fields: dict[str, str] = {}
        uploads: list[Upload] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(settings.photo_max_bytes + 1)
                uploads.append(Upload(value.filename, data))
            elif key in fields:
                raise ApiError(422, "invalid_parameter", f"Form field {key!r} is given twice.")
            elif value != "":
                fields[key] = value
        check_count(len(uploads), settings)
        return _validated(model, fields), uploads
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "bad_json", f"The body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_parameter", "The body must be a JSON object.")
        return _validated(model, data), []
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Send application/json, or multipart/form-data with photos (or a plain "
        f"application/x-www-form-urlencoded form); got {ctype!r}.",
        {"content_type": ctype},
    )
