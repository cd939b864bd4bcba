"""Responses whose JSON body PostgreSQL already built."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request


class RawJSONResponse(JSONResponse):
    """A JSON body passed through as text, not re-encoded.

    A JSONResponse subclass so that the OpenAPI document describes the body as JSON (with the
    route's response model), not as a string.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Text and bytes pass through; anything else is encoded as JSON."""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode("utf-8")
        return super().render(content)


class GeoJSONResponse(RawJSONResponse):
    """A GeoJSON body passed through as text (RFC 7946 media type)."""

    media_type = "application/geo+json"


async def bulk_json(request: Request, body: str) -> RawJSONResponse:
    """A large JSON body (a batch answer of ~0.7 MB), gzip-compressed at level 1 in a worker
    thread when the client accepts gzip. The app's GZip middleware (level 5) spent ~26 ms on
    10,000 batch results, level 1 ~10 ms for 20% more bytes; an encoded body passes the
    middleware as it is."""
    data = body.encode("utf-8")
    if len(data) < 1024 or "gzip" not in request.headers.get("accept-encoding", ""):
        return RawJSONResponse(data)
    packed = await run_in_threadpool(gzip.compress, data, 1, mtime=0)
    headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return RawJSONResponse(packed, headers=headers)
