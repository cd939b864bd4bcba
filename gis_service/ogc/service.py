"""OGC API – Features logic with no HTTP: documents, query parsing and the items queries."""

from __future__ import annotations

import json
import math
import threading
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, TextClause

from gis_service.catalog.schemas import Catalog
from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX
from gis_service.db.reads import ReadDb
from gis_service.errors import BadRequest, DomainError
from gis_service.geo.areas import parse_bbox
from gis_service.instants import instant_span
from gis_service.ogc import cql2, sql
from gis_service.ogc.collections import (
    ITEMS_PARAMS,
    CollectionDef,
    attribute_type,
    build_registry,
)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84_NAMES = frozenset(
    {CRS84, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "[OGC:CRS84]", "OGC:CRS84"}
)
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
JSON_SCHEMA = "application/schema+json"
HTML = "text/html"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

# Conformance classes this API implements (OGC 17-069r4 /req/core/conformance-success).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
)

TITLE = "网格化基层治理地图服务 OGC API – Features"
DESCRIPTION = (
    "Grids (街道 › 社区 › 网格 › 微网格, 专属网格), facilities (部件) and open hazards (隐患) "
    "as OGC API – Features collections: GeoJSON in CRS84 (lon, lat), paging with limit and "
    "offset, CQL2-text filters and queryables."
)

# Query parameters each operation accepts (items: ITEMS_PARAMS); anything else is a 400
# (OGC 17-069r4 /rec/core/query-param-unknown).
META_PARAMS = frozenset({"f"})
ITEM_PARAMS = frozenset({"f", "crs"})
REGISTRY_TTL_S = 60.0
EXTENT_TTL_S = 30.0


def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    """A link object; every link carries rel and type (OGC 17-069r4 /rec/core/link-header)."""
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def href(path: str, pairs: Sequence[tuple[str, Any]] = ()) -> str:
    """``path`` with an encoded query string (commas, colons and slashes kept readable)."""
    if not pairs:
        return path
    return path + "?" + urlencode([(k, str(v)) for k, v in pairs], quote_via=quote, safe=",:/")


# ---- state: registry and extents, cached briefly -------------------------------------------------


@dataclass(frozen=True)
class Extent:
    """A collection's spatial and temporal extent and row count."""

    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None
    count: int


class OgcState:
    """The collection registry and extents of one app, refreshed after a short TTL."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._registry: dict[str, CollectionDef] | None = None
        self._registry_at = 0.0
        self._extents: dict[str, tuple[float, Extent]] = {}

    def fresh_registry(self) -> dict[str, CollectionDef] | None:
        """The registry if it is still fresh, else None (then call registry())."""
        with self._lock:
            age = clock.monotonic() - self._registry_at
            return self._registry if age < REGISTRY_TTL_S else None

    def registry(self, conn: Connection) -> dict[str, CollectionDef]:
        """Every collection by id (grid attribute keys are discovered from the data)."""
        now = clock.monotonic()
        fresh = self.fresh_registry()
        if fresh is not None:
            return fresh
        registry = build_registry(self.catalog, discover_grid_attributes(conn))
        with self._lock:
            self._registry, self._registry_at = registry, now
        return registry

    def extent(self, conn: Connection, coll: CollectionDef) -> Extent:
        """The collection's extent from ST_Extent over its rows (cached for EXTENT_TTL_S)."""
        now = clock.monotonic()
        with self._lock:
            hit = self._extents.get(coll.id)
            if hit is not None and now - hit[0] < EXTENT_TTL_S:
                return hit[1]
        row = conn.execute(sql.extent(coll), coll.params).mappings().one()
        bbox = None
        if row["xmin"] is not None:
            bbox = (row["xmin"], row["ymin"], row["xmax"], row["ymax"])
        interval = None
        if coll.temporal is not None and row["t0"] is not None:
            interval = (row["t0"], row["t1"])
        ext = Extent(bbox, interval, int(row["n"]))
        with self._lock:
            self._extents[coll.id] = (now, ext)
        return ext


def discover_grid_attributes(conn: Connection) -> dict[str, list[tuple[list[str], str]]]:
    """Attribute keys (nested objects flattened one level) of current grids, by level."""
    out: dict[str, list[tuple[list[str], str]]] = defaultdict(list)
    for level, path, types, integral in conn.execute(sql.GRID_ATTRIBUTE_KEYS):
        kind = attribute_type(set(types), bool(integral))
        if kind is not None:
            out[level].append((list(path), kind))
    return dict(out)


# ---- metadata documents --------------------------------------------------------------------------


def landing_page(base: str) -> dict[str, Any]:
    """The landing page (OGC 17-069r4 /req/core/root-success)."""
    return {
        "title": TITLE,
        "description": DESCRIPTION,
        "links": [
            link(href(base, [("f", "json")]), "self", JSON, "This document"),
            link(f"{base}/api", "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(f"{_root(base)}/docs", "service-doc", HTML, "The API documentation (Swagger UI)"),
            link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            link(
                f"{base}/conformance",
                "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                JSON,
                "Conformance classes",
            ),
            link(f"{base}/collections", "data", JSON, "Feature collections"),
            link(
                f"{base}/collections",
                "http://www.opengis.net/def/rel/ogc/1.0/data",
                JSON,
                "Feature collections",
            ),
        ],
    }


def _root(base: str) -> str:
    """The service root of ``…/ogc``."""
    return base[: -len("/ogc")] if base.endswith("/ogc") else base


def conformance() -> dict[str, Any]:
    """The conformance declaration (OGC 17-069r4 /req/core/conformance-success)."""
    return {"conformsTo": list(CONFORMANCE)}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def collection_doc(coll: CollectionDef, ext: Extent, base: str) -> dict[str, Any]:
    """One collection's metadata (OGC 17-069r4 /req/core/sfc-md-success)."""
    here = f"{base}/collections/{coll.id}"
    doc: dict[str, Any] = {
        "id": coll.id,
        "title": coll.title,
        "description": coll.description,
        "keywords": list(coll.keywords),
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            link(href(here, [("f", "json")]), "self", JSON, "This collection"),
            link(f"{here}/items", "items", GEOJSON, f"{coll.title} (GeoJSON)"),
            link(href(f"{here}/items", [("f", "json")]), "items", JSON, f"{coll.title} (JSON)"),
            link(f"{here}/queryables", REL_QUERYABLES, JSON_SCHEMA, "Queryable properties"),
            link(f"{base}/collections", "collection", JSON, "All collections"),
        ],
    }
    extent: dict[str, Any] = {}
    if ext.bbox is not None:
        # OGC 17-069r4 /req/core/rc-md-extent: spatial extent in CRS84 (lon, lat).
        extent["spatial"] = {"bbox": [list(ext.bbox)], "crs": CRS84}
    if ext.interval is not None:
        extent["temporal"] = {
            "interval": [[_iso(ext.interval[0]), _iso(ext.interval[1])]],
            "trs": GREGORIAN,
        }
    if extent:
        doc["extent"] = extent
    return doc


def collections_doc(conn: Connection, state: OgcState, base: str) -> dict[str, Any]:
    """The list of collections (OGC 17-069r4 /req/core/fc-md-success)."""
    registry = state.registry(conn)
    return {
        "links": [
            link(href(f"{base}/collections", [("f", "json")]), "self", JSON, "This document"),
            link(base, "parent", JSON, "Landing page"),
        ],
        "collections": [collection_doc(c, state.extent(conn, c), base) for c in registry.values()],
        "crs": [CRS84],
    }


def _json_schema(prop_type: str) -> dict[str, Any]:
    if prop_type == cql2.DATETIME:
        return {"type": "string", "format": "date-time"}
    return {"type": prop_type}


def queryables_doc(coll: CollectionDef, base: str) -> dict[str, Any]:
    """The queryables as JSON Schema (OGC 19-079r2 /req/queryables/get-queryables-response)."""
    props: dict[str, Any] = {
        "geometry": {
            "title": "几何 Geometry",
            "format": coll.geometry_format,
            "x-ogc-role": "primary-geometry",
        }
    }
    for p in coll.props:
        schema = {"title": p.title, **_json_schema(p.type)}
        if p.description:
            schema["description"] = p.description
        if p.enum:
            schema["enum"] = list(p.enum)
        props[p.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{coll.id}/queryables",
        "type": "object",
        "title": coll.title,
        "description": f"Properties of {coll.id} usable in filter=, as ?name=value and in "
        "properties=.",
        "properties": props,
        "additionalProperties": False,
    }


def fields(coll: CollectionDef) -> dict[str, cql2.Field]:
    """The CQL2 view of a collection: each queryable's column in the source alias ``s``."""
    out = {p.name: cql2.Field(f"s.c{i}", p.type) for i, p in enumerate(coll.props)}
    out["geometry"] = cql2.Field("s.geom", cql2.GEOMETRY)
    return out


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


def _latitudes_in_order(raw: str) -> str:
    """A bbox with its latitudes clamped to ±90 and in order: a box reaching past a pole
    reaches the pole, and one given top before bottom is the same box (longitudes keep their
    order, which is how a box crosses the antimeridian)."""
    parts = raw.split(",")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return raw  # parse_bbox says what is wrong
    if len(nums) not in (4, 6) or not all(math.isfinite(n) for n in nums):
        return raw
    half = len(nums) // 2
    lo, hi = sorted(max(-90.0, min(90.0, v)) for v in (nums[1], nums[half + 1]))
    nums[1], nums[half + 1] = lo, hi
    return ",".join(repr(n) for n in nums)


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
            if not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
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
    cursor = _parse_int("cursor", q["cursor"], 0, 2**63 - 1) if "cursor" in q else None
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
            box = parse_bbox(_latitudes_in_order(q["bbox"]), None, antimeridian=True)
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


# ---- features ------------------------------------------------------------------------------------


async def items_body(db: ReadDb, coll: CollectionDef, q: ItemsQuery, base: str) -> str:
    """The FeatureCollection text for one page, built by PostgreSQL."""
    stmt, params = items_statement(coll, q, base)
    return await db.val(stmt, params)


def items_statement(
    coll: CollectionDef, q: ItemsQuery, base: str
) -> tuple[TextClause, dict[str, Any]]:
    """The statement that builds one page's FeatureCollection text, and its parameters."""
    path = f"{base}/collections/{coll.id}/items"
    media = GEOJSON if q.fmt == "geojson" else JSON
    other_fmt, other_media = ("json", JSON) if q.fmt == "geojson" else ("geojson", GEOJSON)
    fpair = [("f", q.fmt)] if q.f_given else []
    page = [("limit", q.limit)] + ([("offset", q.offset)] if q.offset else [])
    links = [
        link(href(path, q.passthrough + fpair + page), "self", media, "This page"),
        link(
            href(path, [*q.passthrough, ("f", other_fmt), *page]),
            "alternate",
            other_media,
            f"This page as {other_media}",
        ),
        link(f"{base}/collections/{coll.id}", "collection", JSON, coll.title),
    ]
    if q.offset > 0:  # OGC 17-069r4 /rec/core/fc-prev (optional)
        prev = [("limit", q.limit), ("offset", max(0, q.offset - q.limit))]
        links.append(link(href(path, q.passthrough + fpair + prev), "prev", media, "Previous page"))
    # The next link pages by keyset: offset numbers the page, and cursor (the last id of this
    # page, appended by the SQL) lets the next page start at that id instead of skipping
    # offset rows, so reading a layer to the end costs the same for every page.
    next_page = [("limit", q.limit), ("offset", q.offset + q.limit), ("cursor", "")]
    next_href = href(path, q.passthrough + fpair + next_page)
    params = {
        **q.params,
        "_limit": q.limit,
        "_offset": q.offset if q.cursor is None else q.cursor,
        "_links": _dumps(links),
        "_type": media,
        "_next": next_href,
        "_next_title": "Next page",
    }
    return sql.items(coll, q.where, q.columns, keyset=q.cursor is not None), params


async def item_body(db: ReadDb, coll: CollectionDef, fid: int, fmt: str, base: str) -> str | None:
    """One Feature text with its self, alternate and collection links, or None."""
    here = f"{base}/collections/{coll.id}/items/{fid}"
    media, other_fmt, other_media = (
        (GEOJSON, "json", JSON) if fmt == "geojson" else (JSON, "geojson", GEOJSON)
    )
    links = [
        link(here, "self", media, "This feature"),
        link(href(here, [("f", other_fmt)]), "alternate", other_media, f"As {other_media}"),
        link(f"{base}/collections/{coll.id}", "collection", JSON, coll.title),
    ]
    params = {
        **coll.params,
        **{f"pn_{i}": p.name for i, p in enumerate(coll.props)},
        "_fid": fid,
        "_links": _dumps(links),
    }
    columns = list(range(len(coll.props)))
    return await db.val(sql.item(coll, columns), params)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
