"""A hazard's version as an entity tag, and back from an If-Match value (RFC 9110 §8.8.3,
§13.1.1): two people acting on the same hazard at once cannot both win."""

from __future__ import annotations

import re

from gis_service.errors import BadRequest


def etag(version: int) -> str:
    """The ETag of a hazard version (strong: the version names exactly one state)."""
    return f'"{version}"'


# What If-Match may hold, the rule parse_if_match reads with and the document states (issue
# 11, finding 12): blank (absent), or a version as "3", W/"3" or 3, then perhaps more tags
# after a comma (the first is used). A version is 1 or more: 0 names none.
IF_MATCH_PATTERN = r'^\s*$|^\s*(W/)?"?0*([1-9][0-9]{0,9})"?\s*(,[\s\S]*)?$'


def parse_if_match(raw: str | None) -> int | None:
    """The version named by an If-Match header (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    found = re.search(IF_MATCH_PATTERN, raw) if raw is not None else None
    if raw is not None and found is None:
        raise BadRequest(
            f'If-Match must be the ETag of GET /api/v1/hazards/{{id}}, such as "3"; got {raw!r}.',
            code="bad_if_match",
            if_match=raw,
        )
    return int(found[2]) if found is not None and found[2] is not None else None
