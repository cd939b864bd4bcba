"""Shapes of the OGC API documents: Pydantic models for FastAPI's own docs, and the
OpenAPI 3.0 definition served at /ogc/api (OGC 17-069r4 /req/oas30/oas-definition-1)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from gis_service import __version__
from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX, BIGINT_MIN
from gis_service.geo.areas import BBOX_DESCRIPTION, BBOX_SCHEMA
from gis_service.instants import date_pattern
from gis_service.ogc import cql2
from gis_service.ogc.collections import CollectionDef
from gis_service.ogc.service import CRS84, GEOJSON, JSON, JSON_SCHEMA, OPENAPI, TITLE

OPENAPI_VERSION = "3.0.3"


# ---- Pydantic shapes (for FastAPI's /docs; the bodies themselves are built elsewhere) -----------


class Link(BaseModel):
    """A link: every one has rel and type."""

    href: str
    rel: str
    type: str
    title: str | None = None


class LandingPage(BaseModel):
    """The /ogc landing page."""

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    """The conformance classes this API implements."""

    conformsTo: list[str]


class Collection(BaseModel):
    """A feature collection's metadata."""

    id: str
    title: str
    description: str
    itemType: str = "feature"
    crs: list[str]
    extent: dict[str, Any] | None = None
    links: list[Link]


class Collections(BaseModel):
    """The list of collections."""

    links: list[Link]
    collections: list[Collection]


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection page with OGC paging members."""

    type: str = Field(examples=["FeatureCollection"])
    timeStamp: str
    numberMatched: int
    numberReturned: int
    links: list[Link]
    features: list[dict[str, Any]]


# ---- the OpenAPI 3.0 document ------------------------------------------------------------------


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


# Strings never hold NUL: the edge refuses it in every parameter (gis_service.http.guard).
NO_NUL = r"^[^\x00]*$"
# RFC 3339 instants and OGC 17-069r4 /req/core/fc-time-definition intervals, so that clients
# and fuzzers send what the server reads ('..' or nothing for an open end, not both).
_DATE = date_pattern()
_TIME = (
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])"
)
_INSTANT = f"{_DATE}({_TIME})?"
DATETIME_PATTERN = f"^({_INSTANT}|{_INSTANT}/({_INSTANT}|\\.\\.)?|(\\.\\.)?/{_INSTANT})$"


def parameters(settings: Settings) -> dict[str, dict[str, Any]]:
    """Reusable parameters (OGC 17-069r4 /req/core/fc-limit-definition, fc-bbox-definition, …)."""
    return {
        "f-metadata": _query(
            "f", "Format of the response; JSON only.", {"type": "string", "enum": ["json"]}
        ),
        "f-features": _query(
            "f",
            "geojson (application/geo+json, the default) or json (the same body as "
            "application/json).",
            {"type": "string", "enum": ["geojson", "json"], "default": "geojson"},
        ),
        "limit": _query(
            "limit",
            f"Page size, at most {settings.max_limit}: larger values are clamped to it, never "
            "refused (OGC 17-069r4 /req/core/fc-limit-response-1), so the schema sets no "
            "maximum; the links carry the clamped value.",
            {"type": "integer", "minimum": 1, "default": settings.default_limit},
        ),
        "offset": _query(
            "offset",
            "Number of features to skip (features are ordered by id); follow the next link "
            "rather than computing it.",
            {"type": "integer", "minimum": 0, "maximum": 2**53, "default": 0},
        ),
        "cursor": _query(
            "cursor",
            "The id the page starts after (keyset paging). The next link sets it, so that a "
            "deep page costs what the first does; offset then only numbers the page.",
            {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
        ),
        "bbox": _query(
            "bbox",
            f"In CRS84: {BBOX_DESCRIPTION}",
            BBOX_SCHEMA,
        ),
        "bbox-crs": _query(
            "bbox-crs", "CRS of bbox; only CRS84.", {"type": "string", "enum": [CRS84]}
        ),
        "crs": _query(
            "crs", "CRS of the response; only CRS84.", {"type": "string", "enum": [CRS84]}
        ),
        "datetime": _query(
            "datetime",
            "An RFC 3339 instant or interval (start/end, '..' for an open end). Grids use "
            "their validity, hazards their report time; facilities have no time and ignore it. "
            "An interval whose start is after its end matches nothing.",
            {"type": "string", "pattern": DATETIME_PATTERN},
        ),
        "properties": _query(
            "properties",
            "Comma-separated property names to return (default: all).",
            {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NO_NUL}},
        ),
        "filter": _query(
            "filter",
            f"A CQL2-text filter (at most {cql2.MAX_LENGTH} characters, {cql2.MAX_DEPTH} levels "
            "of nesting) over the queryables, e.g. status = 'damaged' AND "
            "S_INTERSECTS(geometry, BBOX(113.60,34.70,113.62,34.72)).",
            # Something besides blanks: an empty filter is refused ("filter is empty").
            {
                "type": "string",
                "maxLength": cql2.MAX_LENGTH,
                "pattern": r"^[^\x00]*[^\x00\s][^\x00]*$",
            },
        ),
        "filter-lang": _query(
            "filter-lang",
            "The filter language; only cql2-text.",
            {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"},
        ),
        "filter-crs": _query(
            "filter-crs",
            "CRS of geometries in the filter; only CRS84.",
            {"type": "string", "enum": [CRS84]},
        ),
        "featureId": {
            "name": "featureId",
            "in": "path",
            "required": True,
            "description": "The feature's id (an integer).",
            "schema": {"type": "integer"},
        },
    }


ITEMS_PARAMETER_NAMES = (
    "f-features",
    "limit",
    "offset",
    "cursor",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "properties",
    "filter",
    "filter-lang",
    "filter-crs",
)


def _schemas() -> dict[str, Any]:
    """Component schemas, in OpenAPI 3.0 dialect (nullable, no type arrays)."""
    link = {
        "type": "object",
        "required": ["href", "rel", "type"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
        },
    }
    links = {"type": "array", "items": _ref("schemas", "link")}
    nullable_time = {"type": "string", "format": "date-time", "nullable": True}
    return {
        "link": link,
        "exception": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
        "landingPage": {
            "type": "object",
            "required": ["links"],
            "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "links": links,
            },
        },
        "confClasses": {
            "type": "object",
            "required": ["conformsTo"],
            "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
        },
        "extent": {
            "type": "object",
            "properties": {
                "spatial": {
                    "type": "object",
                    "properties": {
                        "bbox": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "array",
                                "minItems": 4,
                                "maxItems": 6,
                                "items": {"type": "number"},
                            },
                        },
                        "crs": {"type": "string", "default": CRS84},
                    },
                },
                "temporal": {
                    "type": "object",
                    "properties": {
                        "interval": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "array",
                                "minItems": 2,
                                "maxItems": 2,
                                "items": nullable_time,
                            },
                        },
                        "trs": {"type": "string"},
                    },
                },
            },
        },
        "collection": {
            "type": "object",
            "required": ["id", "links"],
            "properties": {
                "id": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "keywords": {"type": "array", "items": {"type": "string"}},
                "links": links,
                "extent": _ref("schemas", "extent"),
                "itemType": {"type": "string", "default": "feature"},
                "crs": {"type": "array", "items": {"type": "string"}},
            },
        },
        "collections": {
            "type": "object",
            "required": ["links", "collections"],
            "properties": {
                "links": links,
                "collections": {"type": "array", "items": _ref("schemas", "collection")},
                "crs": {"type": "array", "items": {"type": "string"}},
            },
        },
        "geometryGeoJSON": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "Point",
                        "MultiPoint",
                        "LineString",
                        "MultiLineString",
                        "Polygon",
                        "MultiPolygon",
                        "GeometryCollection",
                    ],
                },
                "coordinates": {"type": "array", "items": {}},
            },
        },
        "featureGeoJSON": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer"},
                "geometry": {"allOf": [_ref("schemas", "geometryGeoJSON")], "nullable": True},
                "properties": {"type": "object", "nullable": True},
                "links": links,
            },
        },
        "featureCollectionGeoJSON": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": _ref("schemas", "featureGeoJSON")},
                "links": links,
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
            },
        },
        "queryables": {
            "type": "object",
            "description": "A JSON Schema (draft 2020-12) of the queryable properties.",
            "properties": {
                "properties": {"type": "object"},
                "type": {"type": "string"},
                "$id": {"type": "string"},
            },
        },
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("schemas", "exception")}}}


def _responses() -> dict[str, Any]:
    return {
        "BadRequest": _error(
            "Bad request: unknown or repeated parameter, bad value or bad filter; the message "
            "says what to fix."
        ),
        "NotFound": _error("No such collection or feature."),
        "BadCredential": _error(
            "A session, bearer token or API key was sent but is unknown, expired or revoked."
        ),
        "ServerError": _error("A server error."),
    }


def _ok(description: str, media: dict[str, str]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {m: {"schema": _ref("schemas", s)} for m, s in media.items()},
    }


def _op(
    op_id: str,
    summary: str,
    tag: str,
    params: Iterable[dict[str, Any]],
    ok: dict[str, Any],
    not_found: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok, "400": _ref("responses", "BadRequest")}
    # Public, but a credential that is sent must be valid (a revoked token is refused).
    responses["401"] = _ref("responses", "BadCredential")
    if not_found:
        responses["404"] = _ref("responses", "NotFound")
    responses["500"] = _ref("responses", "ServerError")
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "tags": [tag],
            "parameters": list(params),
            "responses": responses,
        }
    }


def _queryable_param(coll: CollectionDef, index: int) -> dict[str, Any]:
    prop = coll.props[index]
    schema: dict[str, Any] = {"type": prop.type}
    if prop.type == cql2.DATETIME:
        schema = {"type": "string", "format": "date-time"}
    elif prop.type == cql2.INTEGER:  # the values PostgreSQL's bigint holds
        schema.update(minimum=BIGINT_MIN, maximum=BIGINT_MAX)
    elif prop.type == cql2.STRING and not prop.enum:
        schema["pattern"] = NO_NUL
    if prop.enum:
        schema["enum"] = list(prop.enum)
    return _query(
        prop.name,
        f"{prop.title}: only features whose {prop.name} equals this value.",
        schema,
    )


def _properties_param(coll: CollectionDef) -> dict[str, Any]:
    """``properties`` with this collection's property names (OGC 19-079r2 queryables)."""
    names = [p.name for p in coll.props]
    return _query(
        "properties",
        "Comma-separated property names to return (default: all).",
        {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}},
    )


# One comparison per queryable type, the shape of filter the pattern below describes.
_LITERALS = {
    cql2.INTEGER: ("(=|<>|<|>|<=|>=)", "-?[0-9]{1,9}"),
    cql2.NUMBER: ("(=|<>|<|>|<=|>=)", "-?[0-9]{1,6}(\\.[0-9]{1,3})?"),
    cql2.BOOLEAN: ("(=|<>)", "(TRUE|FALSE)"),
    cql2.STRING: ("(=|<>)", "'[A-Za-z0-9_]{0,12}'"),
    cql2.DATETIME: ("(<|>)", f"TIMESTAMP\\('{_DATE}T00:00:00Z'\\)"),
}


def _filter_param(coll: CollectionDef) -> dict[str, Any]:
    """``filter`` with a pattern of this collection's comparisons joined by AND / OR.

    The server reads all of CQL2 text (basic-cql2, spatial functions, LIKE, IN, BETWEEN …);
    the pattern describes the common subset so that generated clients and fuzzers send
    filters that are valid for this collection (a free string would be mostly invalid)."""
    terms = []
    for prop in coll.props:
        if prop.type not in _LITERALS:
            continue
        ops, literal = _LITERALS[prop.type]
        if prop.enum:
            literal = "'(" + "|".join(re.escape(v) for v in prop.enum) + ")'"
        terms.append(f"{prop.name} {ops} {literal}")
    term = "(" + "|".join(terms) + ")"
    return _query(
        "filter",
        f"A CQL2-text filter (at most {cql2.MAX_LENGTH} characters, {cql2.MAX_DEPTH} levels "
        "of nesting) over the queryables, e.g. status = 'damaged' AND "
        "S_INTERSECTS(geometry, BBOX(113.60,34.70,113.62,34.72)). The pattern shows the "
        "simplest form (comparisons joined by AND / OR); the whole of CQL2 text is read.",
        {
            "type": "string",
            "maxLength": cql2.MAX_LENGTH,
            "pattern": f"^(TRUE|FALSE|true|false|{term}( (AND|OR) {term}){{0,2}})$",
        },
    )


def openapi(registry: dict[str, CollectionDef], base: str, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of /ogc, with one set of paths per collection (so that
    clients such as GDAL find each collection's limit bounds and queryable parameters)."""
    meta = [_ref("parameters", "f-metadata")]
    paths: dict[str, Any] = {
        "/": _op(
            "getLandingPage",
            "Landing page",
            "Capabilities",
            meta,
            _ok("Links to the API definition, conformance and collections.", {JSON: "landingPage"}),
        ),
        "/api": _op(
            "getAPI",
            "This API definition (OpenAPI 3.0)",
            "Capabilities",
            [],
            {
                "description": "The OpenAPI 3.0 document.",
                "content": {OPENAPI: {"schema": {"type": "object"}}},
            },
        ),
        "/conformance": _op(
            "getConformanceDeclaration",
            "Conformance classes implemented",
            "Capabilities",
            meta,
            _ok("The conformance classes.", {JSON: "confClasses"}),
        ),
        "/collections": _op(
            "getCollections",
            "Feature collections",
            "Capabilities",
            meta,
            _ok("Every collection with its extent and links.", {JSON: "collections"}),
        ),
    }
    features = {GEOJSON: "featureCollectionGeoJSON", JSON: "featureCollectionGeoJSON"}
    for cid, coll in registry.items():
        stem = "".join(part.capitalize() for part in cid.split("_"))
        paths[f"/collections/{cid}"] = _op(
            f"describe{stem}",
            f"{coll.title}: metadata",
            "Capabilities",
            meta,
            _ok(coll.description, {JSON: "collection"}),
            not_found=True,
        )
        paths[f"/collections/{cid}/queryables"] = _op(
            f"getQueryables{stem}",
            f"{coll.title}: queryable properties",
            "Capabilities",
            meta,
            _ok("JSON Schema of the queryables.", {JSON_SCHEMA: "queryables", JSON: "queryables"}),
            not_found=True,
        )
        queryable_params = [_queryable_param(coll, i) for i in range(len(coll.props))]
        per_collection = {"properties": _properties_param(coll), "filter": _filter_param(coll)}
        items_params = [
            per_collection.get(n) or _ref("parameters", n) for n in ITEMS_PARAMETER_NAMES
        ]
        paths[f"/collections/{cid}/items"] = _op(
            f"getFeatures{stem}",
            f"{coll.title}: features",
            "Data",
            items_params + queryable_params,
            _ok(
                "One page of features with numberMatched, numberReturned and next links.",
                features,
            ),
            not_found=True,
        )
        paths[f"/collections/{cid}/items/{{featureId}}"] = _op(
            f"getFeature{stem}",
            f"{coll.title}: one feature",
            "Data",
            [_ref("parameters", "featureId"), _ref("parameters", "f-features")],
            _ok("The feature.", {GEOJSON: "featureGeoJSON", JSON: "featureGeoJSON"}),
            not_found=True,
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": TITLE,
            "version": __version__,
            "description": "OGC API – Features (Part 1 Core, GeoJSON, OpenAPI 3.0; Part 3 "
            "filtering with CQL2 text and queryables) for grids, facilities and open hazards. "
            "Coordinates are CRS84 (lon, lat). Errors are JSON {code, message, details}.",
        },
        "servers": [{"url": base}],
        "tags": [
            {"name": "Capabilities", "description": "What the API offers."},
            {"name": "Data", "description": "The features."},
        ],
        "paths": paths,
        "components": {
            "parameters": parameters(settings),
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }
