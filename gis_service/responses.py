"""Responses whose JSON body PostgreSQL already built."""

from __future__ import annotations

from fastapi.responses import Response


class RawJSONResponse(Response):
    """A JSON body passed through as text, not re-encoded."""

    media_type = "application/json"


class GeoJSONResponse(Response):
    """A GeoJSON body passed through as text (RFC 7946 media type)."""

    media_type = "application/geo+json"
