"""One error shape for every user-facing failure: JSON ``{code, message, details}``.

The one table from domain errors to HTTP status codes lives here (as tipg's errors.py has
it); services raise :mod:`gis_service.errors` and never choose a status themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis_service.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Locked,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    StaleVersion,
    TooMany,
    Unauthorized,
    UnsupportedMediaType,
)
from gis_service.http.routes import methods_at

log = logging.getLogger(__name__)

# Domain error → HTTP status (RFC 9110 §15; 428 and 429 from RFC 6585; 423 from RFC 4918).
STATUS: dict[type[DomainError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StaleVersion: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Invalid: 422,
    Locked: 423,
    PreconditionRequired: 428,
    TooMany: 429,
}
# What Starlette's own HTTP errors are called in the JSON body.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def status_of(exc: DomainError) -> int:
    """The HTTP status of a domain error (its nearest class in the table)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500  # pragma: no cover - every DomainError subclass derives from a listed one


def headers_of(exc: DomainError) -> dict[str, str] | None:
    """Headers an error carries: the challenge of a 401, Retry-After, the current ETag."""
    if isinstance(exc, Unauthorized) and exc.challenge:
        return {"WWW-Authenticate": 'Bearer realm="gis"'}
    if isinstance(exc, TooMany | Locked) and exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, StaleVersion):
        return {"ETag": exc.etag}
    return None


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of every error."""
    return {"code": code, "message": message, "details": details if details is not None else {}}


def error_response(exc: DomainError) -> JSONResponse:
    """A domain error as its JSON response."""
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details),
        status_code=status_of(exc),
        headers=headers_of(exc),
    )


def describe_validation(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic's errors as one line: 'field: what is wrong; …' (the first five)."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the one JSON shape."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        message = "Invalid request. " + describe_validation(errors)
        return JSONResponse(
            error_body("invalid_parameter", message, {"errors": errors}), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Edge refusals (gis_service.http.guard) carry a code of their own.
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint; see /docs for the API."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = methods_at(request.app, request.scope["path"])
            headers["Allow"] = ", ".join(allowed)
            if message == "Method Not Allowed":
                message = f"{request.method} is not allowed here; use {', '.join(allowed)}."
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=headers or None
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(asyncpg.exceptions.PostgresConnectionError)
    @app.exception_handler(ConnectionError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", getattr(exc, "orig", exc))
        return JSONResponse(
            error_body(
                "database_unavailable",
                "The database is not reachable; check that PostGIS is running "
                "(gis-service pg status) or that DATABASE_URL is right.",
            ),
            status_code=503,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal_error", "Internal error; it has been logged."), status_code=500
        )


def error_docs(*errors: tuple[int, str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of the errors a route can answer, each (status, code, message);
    several errors of one status are listed as examples of it."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, code, message in errors:
        entry = out.setdefault(
            status, {"description": message, "content": {"application/json": {"examples": {}}}}
        )
        if entry["description"] != message:
            entry["description"] += f"; {message}"
        entry["content"]["application/json"]["examples"][code] = {
            "value": error_body(code, message)
        }
    return out
