"""OGC API – Features metadata documents with no HTTP: landing page, conformance, collections
and queryables (split from ogc/service.py, issue 10)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from gis_service.ogc import cql2
from gis_service.ogc.collections import (
    CollectionDef,
)
from gis_service.ogc.service import (
    CONFORMANCE,
    CRS84,
    DESCRIPTION,
    GEOJSON,
    GREGORIAN,
    HTML,
    JSON,
    JSON_SCHEMA,
    OPENAPI,
    REL_QUERYABLES,
    TITLE,
    Extent,
    OgcState,
    href,
    link,
)

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
