"""Request metrics and the structured request log: one ASGI middleware, one JSON line a request.

The line names the route template (``/api/v1/hazards/{hazard_id}``), never the raw path or
query string, so a key sent as ``?api_key=`` or an id typed into a URL cannot reach the log;
bodies are never logged; the caller is named by kind and id (``user:12``, ``api_key:3``).
Every other log line goes through the same formatter, which masks secrets and phone numbers
that free text (an exception message) might carry.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.config import Settings
from gis_service.ops import metrics
from gis_service.ops.redact import redact

access_log = logging.getLogger("gis.access")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, and structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON, free text redacted."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "gis", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["msg"] = redact(record.getMessage())
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    """The plain-text alternative (GIS_LOG_FORMAT=text), redacted the same way."""

    def format(self, record: logging.LogRecord) -> str:
        """The usual text line, masked."""
        fields = getattr(record, "gis", None)
        if isinstance(fields, dict):
            record.msg = " ".join(f"{k}={v}" for k, v in fields.items())
            record.args = ()
        return redact(super().format(record))


def configure_logging(settings: Settings) -> None:
    """Send every logger (uvicorn's included) through one redacting handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingTextFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log prints the raw path with its query string (where Open311 clients
    # put api_key): it stays off, our own request line replaces it.
    logging.getLogger("uvicorn.access").disabled = True


def _caller(scope: Scope) -> str:
    principal = (scope.get("state") or {}).get("principal")
    if principal is None or principal.kind == "anonymous":
        return "anonymous"
    return f"{principal.kind}:{principal.id}"


class ObservabilityMiddleware:
    """Counts, times and logs every HTTP request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Each (method, route template, status)'s two series, looked up once: prometheus'
        # labels() costs ~12 µs a request in multiprocess mode. Bounded: routes are templates.
        self._seen: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        series = self._seen.get(key)
        if series is None:
            series = self._seen[key] = (
                metrics.REQUESTS.labels(method=method, route=route, status=str(status)),
                metrics.LATENCY.labels(method=method, route=route),
            )
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        size = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "OTHER"
            counter, latency = self._series(method, route, status)
            counter.inc()
            latency.observe(seconds)
            # The line's fields are built only when it will be written.
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "gis": {
                            "event": "request",
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(seconds * 1000, 2),
                            "bytes": size,
                            "caller": _caller(scope),
                            "client": (scope.get("client") or ("", 0))[0],
                        }
                    },
                )


def install_observability(app: FastAPI, engine: Engine) -> None:
    """Metrics and request logs for the app; the pool gauges for its engine."""
    metrics.watch_pool(engine)
    app.add_middleware(ObservabilityMiddleware)
