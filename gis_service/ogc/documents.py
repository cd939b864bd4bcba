"""The OGC API – Features documents with no HTTP and no database: landing page,
conformance, collection metadata and queryables (OGC 17-069r4, OGC 19-079r2), and the media
types and links they carry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from gis_service.ogc import cql2
from gis_service.ogc.collections import CollectionDef

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


@dataclass(frozen=True)
class Extent:
    """A collection's spatial and temporal extent and row count."""

    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None
    count: int


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
