"""A hazard's version as an entity tag, and back from an If-Match value (RFC 9110 §8.8.3,
§13.1.1): two people acting on the same hazard at once cannot both win."""

from __future__ import annotations

from gis_service.errors import BadRequest


def etag(version: int) -> str:
    """The ETag of a hazard version (strong: the version names exactly one state)."""
    return f'"{version}"'


def parse_if_match(raw: str | None) -> int | None:
    """The version named by an If-Match header (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    if raw is None or not raw.strip():
        return None
    value = raw.split(",")[0].strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    try:
        version = int(value)
    except ValueError as exc:
        raise BadRequest(
            f'If-Match must be the ETag of GET /api/v1/hazards/{{id}}, such as "3"; got {raw!r}.',
            code="bad_if_match",
            if_match=raw,
        ) from exc
    if version < 1:
        raise BadRequest("If-Match names no version of this hazard.", code="bad_if_match")
    return version
