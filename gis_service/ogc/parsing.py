"""OGC API – Features query parsing with no HTTP: the allowed parameters, formats, CRS,
datetime and the items query (split from ogc/service.py, issue 10)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX, BIGINT_MIN
from gis_service.errors import BadRequest, DomainError
from gis_service.geo.areas import parse_bbox
from gis_service.instants import instant_span
from gis_service.ogc import cql2, sql
from gis_service.ogc.collections import (
    ITEMS_PARAMS,
    CollectionDef,
)
from gis_service.ogc.documents import fields
from gis_service.ogc.service import (
    CRS84,
    CRS84_NAMES,
)

# ---- query parsing -------------------------------------------------------------------------------


def check_params(pairs: Iterable[tuple[str, str]], allowed: Iterable[str]) -> None:
    """400 for an unknown or repeated parameter (OGC 17-069r4 /rec/core/query-param-unknown)."""
    allowed = set(allowed)
    seen: set[str] = set()
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise BadRequest(f"Query parameter '{key}' contains a NUL character.")
        if key not in allowed:
            raise BadRequest(
                f"Unknown query parameter '{key}'. Allowed here: {', '.join(sorted(allowed))}.",
                parameter=key,
            )
        if key in seen:
            raise BadRequest(f"Query parameter '{key}' is given more than once.", parameter=key)
        seen.add(key)


def parse_format(value: str | None, items: bool) -> str:
    """``f``: json for metadata; geojson (default) or json for features."""
    if value is None:
        return "geojson" if items else "json"
    allowed = ("geojson", "json") if items else ("json",)
    if value in allowed:
        return value
    hint = " HTML is not offered." if value == "html" else ""
    raise BadRequest(
        f"Unsupported format f={value}.{hint} Use f={' or f='.join(allowed)}.",
        f=value,
        allowed=list(allowed),
    )


def check_crs(name: str, value: str | None) -> None:
    if value is not None and value not in CRS84_NAMES:
        raise BadRequest(
            f"Parameter '{name}' must be {CRS84}: this API serves CRS84 (lon, lat) only.",
            **{name: value},
        )


def _parse_int(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"Parameter '{name}' must be an integer.", **{name: raw}) from exc
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise BadRequest(f"Parameter '{name}' must be {bounds}.", **{name: raw})
    return value


def parse_datetime(raw: str) -> tuple[datetime | None, datetime | None]:
    """``datetime``: an instant, or an interval a/b with '..' or '' for an open end
    (OGC 17-069r4 /req/core/fc-time-definition)."""
    try:
        if "/" not in raw:
            return instant_span(raw)
        start_raw, _, end_raw = raw.partition("/")
        start = None if start_raw in ("", "..") else instant_span(start_raw)[0]
        end = None if end_raw in ("", "..") else instant_span(end_raw)[1]
    except ValueError as exc:
        raise BadRequest(
            "Parameter 'datetime' must be an RFC 3339 date-time such as 2024-05-01T08:00:00Z, "
            "or an interval start/end where either end may be '..'.",
            datetime=raw,
        ) from exc
    if start is None and end is None:
        raise BadRequest("Parameter 'datetime' must bound at least one end.", datetime=raw)
    return start, end


def _parse_value(name: str, kind: str, raw: str) -> Any:
    """A queryable's typed value (OGC 19-079r2 /req/queryables-query-parameters)."""
    try:
        if kind == cql2.INTEGER:
            value = int(raw)
            if not BIGINT_MIN <= value <= BIGINT_MAX:
                raise ValueError(raw)
            return value
        if kind == cql2.NUMBER:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
        if kind == cql2.BOOLEAN:
            lowered = raw.lower()
            if lowered not in ("true", "false"):
                raise ValueError(raw)
            return lowered == "true"
        if kind == cql2.DATETIME:
            return instant_span(raw)[0]
    except ValueError as exc:
        raise BadRequest(
            f"Parameter '{name}' must be a {kind} value.", parameter=name, value=raw
        ) from exc
    return raw


@dataclass
class ItemsQuery:
    """A parsed items request: page, format, SQL conditions with their bound values."""

    limit: int
    offset: int
    fmt: str
    columns: list[int]
    where: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    passthrough: list[tuple[str, str]] = field(default_factory=list)
    f_given: bool = False
    # The id the page starts after (keyset paging, set by our next links); None = offset.
    cursor: int | None = None


def parse_items_query(
    coll: CollectionDef, pairs: Sequence[tuple[str, str]], settings: Settings
) -> ItemsQuery:
    """Check and translate the items query parameters; 400 with a clear message on error."""
    queryables = {p.name: (i, p) for i, p in enumerate(coll.props)}
    check_params(pairs, ITEMS_PARAMS | set(queryables))
    q = dict(pairs)
    fmt = parse_format(q.get("f"), items=True)
    # OGC 17-069r4 /req/core/fc-limit-response-1: a limit above the maximum is clamped to it,
    # not refused, and the clamped value is what the links carry.
    limit = settings.default_limit
    if "limit" in q:
        limit = min(_parse_int("limit", q["limit"], 1), settings.max_limit)
    offset = _parse_int("offset", q["offset"], 0, 2**53) if "offset" in q else 0
    cursor = _parse_int("cursor", q["cursor"], 0, BIGINT_MAX) if "cursor" in q else None
    check_crs("crs", q.get("crs"))
    check_crs("bbox-crs", q.get("bbox-crs"))
    check_crs("filter-crs", q.get("filter-crs"))

    columns = list(range(len(coll.props)))
    if "properties" in q:
        names = [n.strip() for n in q["properties"].split(",") if n.strip()]
        if not names:
            raise BadRequest("Parameter 'properties' must name at least one property.")
        unknown = [n for n in names if n not in queryables]
        if unknown:
            raise BadRequest(
                f"Unknown propert{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(repr(n) for n in unknown)} in 'properties'; this collection has: "
                f"{', '.join(queryables)}.",
                unknown=unknown,
            )
        columns = sorted({queryables[n][0] for n in names})

    out = ItemsQuery(limit, offset, fmt, columns, f_given="f" in q, cursor=cursor)
    out.params.update(coll.params)
    out.params.update({f"pn_{i}": p.name for i, p in enumerate(coll.props)})

    if "bbox" in q:
        try:
            # No area cap here: a desktop GIS sends its whole view, and limit bounds the work.
            box = parse_bbox(q["bbox"])
        except DomainError as exc:  # OGC 17-069r4 /req/core/fc-bbox-definition: bad bbox: 400
            raise BadRequest(exc.message, **exc.details) from exc
        out.where.append(
            sql.BBOX_ANTIMERIDIAN_FILTER if box.crosses_antimeridian else sql.BBOX_FILTER
        )
        out.params.update({f"bb_{k}": v for k, v in box.as_params().items()})

    if "datetime" in q:
        start, end = parse_datetime(q["datetime"])
        if start is not None and end is not None and start > end:
            out.where.append("FALSE")  # an empty interval: well formed, so 200 with nothing
        # Collections with no time (facilities) ignore datetime rather than empty the result.
        if coll.temporal is not None:
            if end is not None:
                out.where.append(sql.STARTS_BY_FILTER)
                out.params["dt_end"] = end
            if start is not None:
                out.where.append(sql.ENDS_FROM_FILTER)
                out.params["dt_start"] = start

    for name, (i, prop) in queryables.items():
        if name in q:  # OGC 19-079r2 /req/queryables-query-parameters/parameters
            out.where.append(sql.EQUALS_FILTER.format(i=i))
            out.params[f"eq_{i}"] = _parse_value(name, prop.type, q[name])
            if prop.enum and q[name] not in prop.enum:  # the definition lists the values
                raise BadRequest(
                    f"Parameter '{name}' must be one of: {', '.join(prop.enum)}.",
                    parameter=name,
                    value=q[name],
                )

    lang = q.get("filter-lang", "cql2-text")
    if lang != "cql2-text":
        raise BadRequest(
            f"filter-lang={lang} is not supported; use cql2-text.", **{"filter-lang": lang}
        )
    if "filter" in q:
        try:
            out.where.append(cql2.to_sql(q["filter"], fields(coll), out.params))
        except cql2.Cql2Error as exc:  # OGC 19-079r2 /req/filter/filter-param: invalid → 400
            raise BadRequest(f"Invalid filter: {exc}", filter=q["filter"][:200]) from exc

    out.passthrough = [(k, v) for k, v in pairs if k not in ("limit", "offset", "cursor", "f")]
    return out
