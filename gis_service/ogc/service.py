"""OGC API – Features with the database: the collection registry and extents (cached
briefly), the list of collections, and one page of items or one item, built by PostgreSQL."""

from __future__ import annotations

import json
import threading
import time as clock
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from gis_service.catalog.schemas import Catalog
from gis_service.ogc import sql
from gis_service.ogc.collections import CollectionDef, attribute_type, build_registry
from gis_service.ogc.documents import CRS84, GEOJSON, JSON, Extent, collection_doc, href, link
from gis_service.ogc.query import ItemsQuery

REGISTRY_TTL_S = 60.0
EXTENT_TTL_S = 30.0


class OgcState:
    """The collection registry and extents of one app, refreshed after a short TTL."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._registry: dict[str, CollectionDef] | None = None
        self._registry_at = 0.0
        self._extents: dict[str, tuple[float, Extent]] = {}

    def registry(self, conn: Connection) -> dict[str, CollectionDef]:
        """Every collection by id (grid attribute keys are discovered from the data)."""
        now = clock.monotonic()
        with self._lock:
            if self._registry is not None and now - self._registry_at < REGISTRY_TTL_S:
                return self._registry
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


# ---- features ------------------------------------------------------------------------------------


def items_body(conn: Connection, coll: CollectionDef, q: ItemsQuery, base: str) -> str:
    """The FeatureCollection text for one page, built by PostgreSQL."""
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
    next_page = [("limit", q.limit), ("offset", q.offset + q.limit)]
    next_href = href(path, q.passthrough + fpair + next_page)
    params = {
        **q.params,
        "_limit": q.limit,
        "_offset": q.offset,
        "_links": _dumps(links),
        "_type": media,
        "_next": next_href,
        "_next_title": "Next page",
    }
    return conn.execute(sql.items(coll, q.where, q.columns), params).scalar_one()


def item_body(conn: Connection, coll: CollectionDef, fid: int, fmt: str, base: str) -> str | None:
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
    return conn.execute(sql.item(coll, columns), params).scalar()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
