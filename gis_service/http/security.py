"""HTTP hardening: a request-body cap (413 in the JSON error shape), security headers with
one Content-Security-Policy function, and CORS from settings (none by default)."""

from __future__ import annotations

import json

from fastapi import FastAPI, HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.config import Settings
from gis_service.http.asgi import refuse_while_reading
from gis_service.http.errors import error_body

# The policy of every page and response. The web map (Folium/Leaflet) needs its own inline
# scripts and styles; basemap tiles come from a configurable host, so images may come from
# anywhere over http(s); data (GeoJSON, vector tiles) only from this service.
CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob: https: http:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# The pages that our own pages may frame: the workbench shows the map beside its queues.
FRAMEABLE_PATHS = ("/map",)


def content_security_policy(path: str) -> str:
    """The Content-Security-Policy header for a response to ``path``."""
    directives = dict(CSP_DIRECTIVES)
    if path in FRAMEABLE_PATHS:
        directives["frame-ancestors"] = "'self'"
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def frame_options(path: str) -> str:
    """X-Frame-Options for ``path`` (the older twin of CSP frame-ancestors)."""
    return "SAMEORIGIN" if path in FRAMEABLE_PATHS else "DENY"


SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Field mode uses the phone's position and camera on our own pages only.
    "Permissions-Policy": "geolocation=(self), camera=(self), microphone=()",
}


# The cap of routes whose body is a few text fields.
SMALL_BODY_BYTES = 64 * 1024


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers of a response to ``path``, as ASGI header pairs."""
    extra = {
        **SECURITY_HEADERS,
        "X-Frame-Options": frame_options(path),
        "Content-Security-Policy": content_security_policy(path),
    }
    return [(name.lower().encode(), value.encode()) for name, value in extra.items()]


class SecurityHeadersMiddleware:
    """Adds the security headers (and the CSP) to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Built once: every path gets one of these two sets (the frameable pages, the rest).
        self.framed = {path: security_headers(path) for path in FRAMEABLE_PATHS}
        self.unframed = security_headers("")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.framed.get(scope.get("path", ""), self.unframed)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    """Raised while reading a body that passes the cap; rendered as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request body is larger than {limit:,} bytes, the most one request "
            "may send. Send less (fewer points or smaller photos) per request.",
        )


class BodyLimitMiddleware:
    """413 for a body above ``max_bytes``: at once from Content-Length, or while streaming
    a chunked body (the count stops reading as soon as the cap is passed)."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Upload endpoints (photos, map files) get their own, larger caps by path prefix.
        self.uploads = sorted((uploads or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        """The cap for a request path: the longest matching upload prefix, else the default."""
        for prefix, limit in self.uploads:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                BodyTooLarge(limit).detail,
                {"max_body_bytes": limit},
            ),
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(send, limit)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def refuse(_: Exception) -> None:
            await self._refuse(send, limit)

        await refuse_while_reading(self.app, scope, limited_receive, send, BodyTooLarge, refuse)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the middleware: CORS outermost (preflights), then headers, then the body cap."""
    slack = 1024 * 1024  # form fields and multipart framing around the files
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        uploads={
            "/api/v1/hazards": max(
                settings.max_body_bytes,
                settings.photo_max_count * settings.photo_max_bytes + slack,
            ),
            "/api/v1/visits": max(
                settings.max_body_bytes,
                settings.photo_max_count * settings.photo_max_bytes + slack,
            ),
            "/api/v1/imports": max(settings.max_body_bytes, settings.import_max_bytes + slack),
            # Bodies of a few fields (a login, a user, a key, an Open311 form): their own,
            # small cap, applied as they stream in and before any parsing.
            "/api/v1/auth/": SMALL_BODY_BYTES,
            "/api/v1/users": SMALL_BODY_BYTES,
            "/api/v1/keys": SMALL_BODY_BYTES,
            "/open311/": SMALL_BODY_BYTES,
        },
    )
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # Cross-origin clients authenticate with bearer tokens or API keys, not cookies.
            allow_credentials=False,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-CSRF-Token",
                "If-Match",
                "Idempotency-Key",
                "Accept-Language",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "Link"],
            max_age=600,
        )
