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

from gis_service.db.limits import STATEMENT_TIMEOUT_S
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
    TooLong,
    TooMany,
    Unauthorized,
    UnsupportedMediaType,
)
from gis_service.http.routes import methods_at

log = logging.getLogger(__name__)

# Domain error → HTTP status (RFC 9110 §15; 428 and 429 from RFC 6585; 423 from RFC 4918).
# A statement timeout is 504 (RFC 9110 §15.6.5: the upstream, PostgreSQL, did not answer in
# time), not the 503 of a database that cannot be reached.
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
    TooLong: 504,
}
# PostgreSQL cancelled the statement (SQLSTATE 57014: statement_timeout, or an operator's
# pg_cancel_backend).
QUERY_CANCELED = "57014"
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


def too_long() -> TooLong:
    """The error of a statement cancelled by the statement timeout."""
    log.warning("statement cancelled after the %d s statement timeout", STATEMENT_TIMEOUT_S)
    return TooLong(
        f"The request needed more than the {STATEMENT_TIMEOUT_S} s the database gives one "
        "request, and was stopped. Ask for less at once: a shorter period (from/to or month), "
        "a smaller area (grid=, bbox=) or fewer items.",
        timeout_s=STATEMENT_TIMEOUT_S,
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

    @app.exception_handler(asyncpg.exceptions.QueryCanceledError)
    async def _cancelled(_: Request, exc: Exception) -> JSONResponse:
        return error_response(too_long())

    @app.exception_handler(OperationalError)
    @app.exception_handler(asyncpg.exceptions.PostgresConnectionError)
    @app.exception_handler(ConnectionError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        if getattr(getattr(exc, "orig", None), "pgcode", None) == QUERY_CANCELED:
            return error_response(too_long())
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


# The error_docs entry of a protected route called without credentials.
LOG_IN_FIRST = (401, "unauthorized", "Log in first.")


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


def _doc(error: type[DomainError], message: str, code: str | None = None) -> tuple[int, str, str]:
    """One error_docs entry of a domain error class: its status from STATUS, its code."""
    return STATUS[error], code or error.code, message


def move_docs(case: str, *, private: bool, if_match: bool = False) -> dict[int | str, Any]:
    """OpenAPI ``responses`` of a move of a case's workflow (hazard, order, 吹哨 call): the
    refusals of the scope check and of ``cases.machine.check_move`` (or its hazard twin).

    ``private``: a case outside the caller's scope is not told to exist (404, not 403).
    ``if_match``: the version may come as If-Match (RFC 9110 §13.1.1); none is 428 (RFC 6585
    §3).
    """
    where = " in your scope" if private else ""
    sent = "If-Match or the version field" if if_match else "The version field"
    errors = [
        _doc(Forbidden, "Your role or grid scope does not allow this move."),
        _doc(NotFound, f"No such {case}{where}."),
        _doc(
            Conflict,
            f"The {case}'s state does not allow this move; the allowed ones are listed.",
            code="move_not_allowed",
        ),
        _doc(
            StaleVersion,
            f"{sent} names an older version: the {case} changed since you read it; "
            "reload and decide again.",
        ),
    ]
    if if_match:
        errors.append(_doc(PreconditionRequired, "If-Match (or a version field) is missing."))
    return error_docs(*errors)
