"""Multipart and urlencoded forms read by hand, so that a route reads its body only after it
has checked who calls (FastAPI reads Form and File parameters before any dependency)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from gis_service.errors import BadRequest, Invalid
from gis_service.http.guard import GuardError

# Text fields of a form are short; anything longer is not a field of ours.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50


async def read_form(request: Request, *, max_files: int, files_word: str = "files") -> FormData:
    """The request's form (files spooled to disk as they stream in); 4xx when it is not one
    or holds more than ``max_files`` files or an oversized field."""
    try:
        return await request.form(
            max_files=max_files, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
        )
    except GuardError:
        raise
    except StarletteHTTPException as exc:
        if "files" in str(exc.detail).lower():
            raise Invalid(
                f"At most {max_files} {files_word} are accepted per request.",
                code=f"too_many_{files_word.replace(' ', '_')}",
                max_count=max_files,
            ) from None
        raise BadRequest(f"The form could not be read: {exc.detail}", code="bad_form") from None


def is_form(request: Request) -> bool:
    """True for a multipart or urlencoded body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype in ("multipart/form-data", "application/x-www-form-urlencoded")
