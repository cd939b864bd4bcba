"""One error shape for every user-facing failure: JSON ``{code, message, details}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on; ``message`` says what to fix."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.headers = headers  # e.g. WWW-Authenticate on 401, Retry-After on 429


def not_found(message: str, **details: Any) -> ApiError:
    """404 with a message naming what was not found."""
    return ApiError(404, "not_found", message, details)


def invalid(message: str, **details: Any) -> ApiError:
    """422 for well-formed but unacceptable input."""
    return ApiError(422, "invalid_parameter", message, details)


def bad_request(message: str, **details: Any) -> ApiError:
    """400 for a request that cannot be understood (unknown parameter, bad syntax)."""
    return ApiError(400, "bad_request", message, details)


def unauthorized(message: str, **details: Any) -> ApiError:
    """401: no valid credentials; the client should log in or send a token or key."""
    return ApiError(
        401, "unauthorized", message, details, headers={"WWW-Authenticate": 'Bearer realm="gis"'}
    )


def forbidden(message: str, **details: Any) -> ApiError:
    """403: authenticated, but the role, scope or grid subtree does not allow this."""
    return ApiError(403, "forbidden", message, details)


def too_many(message: str, retry_after: float, **details: Any) -> ApiError:
    """429 with Retry-After (whole seconds, at least 1)."""
    seconds = max(1, int(retry_after + 0.999))
    return ApiError(
        429,
        "too_many_requests",
        message,
        {**details, "retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of every error."""
    return {"code": code, "message": message, "details": details if details is not None else {}}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "Invalid request. " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the one JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_parameter", _validation_message(errors), {"errors": errors}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint; see /docs for the API."
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
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
