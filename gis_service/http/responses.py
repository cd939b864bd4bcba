"""Responses whose JSON body PostgreSQL already built."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


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
