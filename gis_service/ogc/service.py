"""OGC API – Features logic with no HTTP: shared names and links, the collection registry
and extents, and the items queries (documents: ogc/documents.py; parsing: ogc/parsing.py)."""

from __future__ import annotations

import json
import threading
import time as clock
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, TextClause

from gis_service.catalog.schemas import Catalog
from gis_service.db.reads import ReadDb
from gis_service.ogc import sql
from gis_service.ogc.collections import (
    CollectionDef,
    attribute_type,
    build_registry,
)

if TYPE_CHECKING:  # parsing imports this module
    from gis_service.ogc.parsing import ItemsQuery

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
        self._counts: dict[str, tuple[str, int]] = {}

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

    def known_count(self, collection_id: str) -> tuple[str, int] | None:
        """The (stamp, count) of a whole collection from an earlier page, if any."""
        with self._lock:
            return self._counts.get(collection_id)

    def remember_count(self, collection_id: str, stamp: str, count: int) -> None:
        """Keep the count of a whole collection with the stamp it was counted at."""
        with self._lock:
            self._counts[collection_id] = (stamp, count)

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


# ---- features ------------------------------------------------------------------------------------


async def items_body(
    db: ReadDb, coll: CollectionDef, q: ItemsQuery, base: str, state: OgcState | None = None
) -> str:
    """The FeatureCollection text for one page, built by PostgreSQL; ``state`` keeps the
    count of a whole grid collection between its pages (see sql.items)."""
    known = state.known_count(coll.id) if state is not None else None
    stmt, params = items_statement(coll, q, base, known)
    if "_stamp_layer" not in params:
        return await db.val(stmt, params)
    row = await db.row(stmt, params)
    assert row is not None
    if state is not None and row["stamp"] is not None:
        state.remember_count(coll.id, row["stamp"], row["matched"])
    return row["body"]


def items_statement(
    coll: CollectionDef, q: ItemsQuery, base: str, known: tuple[str, int] | None = None
) -> tuple[TextClause, dict[str, Any]]:
    """The statement that builds one page's FeatureCollection text, and its parameters;
    ``known`` is the (stamp, count) of the whole collection from an earlier page."""
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
    # A whole grid collection (no filter) has a count that only its grids' changes move.
    stamped = coll.kind == "grids" and not q.where
    if stamped:
        params |= {
            "_stamp_layer": coll.id,
            "_known_stamp": known[0] if known else None,
            "_known_count": known[1] if known else None,
        }
    return sql.items(coll, q.where, q.columns, keyset=q.cursor is not None, stamped=stamped), params


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
