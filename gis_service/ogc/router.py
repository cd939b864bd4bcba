"""Thin HTTP routes of OGC API – Features under /ogc (OGC 17-069r4 Part 1, OGC 19-079r2 Part 3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX
from gis_service.errors import NotFound
from gis_service.http.deps import CatalogDep, Conn, Db, SettingsDep, query_pairs
from gis_service.http.errors import error_body
from gis_service.http.responses import GeoJSONResponse
from gis_service.ogc import documents, parsing, schemas, service
from gis_service.ogc.collections import CollectionDef
from gis_service.ogc.service import CRS84, GEOJSON, JSON, JSON_SCHEMA, OPENAPI

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

CollectionId = Annotated[str, Path(description="A collection id, e.g. grids_micro_grid.")]
# FastAPI's own /docs shows the OGC parameters too (the definitive 3.0 document is /ogc/api).
_DOC_PARAMS = schemas.parameters(Settings.model_construct())
_META_DOC = {"parameters": [_DOC_PARAMS["f-metadata"]]}
_ITEMS_DOC = {"parameters": [_DOC_PARAMS[n] for n in schemas.ITEMS_PARAMETER_NAMES]}
_ITEM_DOC = {"parameters": [_DOC_PARAMS["f-features"]]}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Unknown parameter, bad value or bad filter",
        "content": {JSON: {"example": error_body("bad_request", "Unknown query parameter 'x'.")}},
    },
    404: {"description": "No such collection or feature"},
}
_CRS_HEADER = {"Content-Crs": f"<{CRS84}>"}


async def ogc_state(request: Request, catalog: CatalogDep) -> service.OgcState:
    """The app's OGC registry and extent cache, made on first use."""
    state = getattr(request.app.state, "ogc", None)
    if state is None:
        state = service.OgcState(catalog)
        request.app.state.ogc = state
    return state


State = Annotated[service.OgcState, Depends(ogc_state)]


def _base(request: Request) -> str:
    """The absolute URL of /ogc as the client reached it."""
    return str(request.base_url).rstrip("/") + "/ogc"


def _pairs(request: Request) -> list[tuple[str, str]]:
    return query_pairs(request)  # an api_key is a credential: never echoed in links


def _meta(request: Request, allowed: frozenset[str] = service.META_PARAMS) -> None:
    """Check a metadata request's parameters: only f=json."""
    pairs = _pairs(request)
    parsing.check_params(pairs, allowed)
    parsing.parse_format(dict(pairs).get("f"), items=False)


def _collection(conn: Connection, state: service.OgcState, collection_id: str) -> CollectionDef:
    return _found(state.registry(conn).get(collection_id), collection_id)


async def _collection_async(
    request: Request, state: service.OgcState, collection_id: str
) -> CollectionDef:
    """The collection, from the registry (rebuilt off the event loop when it is stale)."""
    registry = state.fresh_registry()
    if registry is None:

        def rebuild() -> dict[str, CollectionDef]:
            with request.app.state.engine.connect() as conn:
                return state.registry(conn)

        registry = await run_in_threadpool(rebuild)
    return _found(registry.get(collection_id), collection_id)


def _found(coll: CollectionDef | None, collection_id: str) -> CollectionDef:
    if coll is None:
        raise NotFound(
            f"No collection '{collection_id}'; see /ogc/collections for the list.",
            collection=collection_id,
        )
    return coll


@router.get(
    "",
    response_model=schemas.LandingPage,
    responses=_ERRORS,
    openapi_extra=_META_DOC,
    summary="OGC API – Features landing page",
)
def landing(request: Request) -> JSONResponse:
    """Links to the API definition, the conformance classes and the collections."""
    _meta(request)
    return JSONResponse(documents.landing_page(_base(request)))


@router.get("/", include_in_schema=False)
def landing_slash(request: Request) -> JSONResponse:
    """The landing page with a trailing slash (OWSLib asks for it that way)."""
    return landing(request)


@router.get(
    "/conformance",
    response_model=schemas.Conformance,
    responses=_ERRORS,
    openapi_extra=_META_DOC,
    summary="Conformance classes implemented",
)
def conformance(request: Request) -> JSONResponse:
    """Core, GeoJSON, OpenAPI 3.0, filtering (CQL2 text) and queryables."""
    _meta(request)
    return JSONResponse(documents.conformance())


@router.get(
    "/api",
    # OGC 17-069r4 /req/oas30/oas-definition-2: the definition's own media type, not JSON's
    responses={200: {"content": {OPENAPI: {"schema": {"type": "object"}}}}, **_ERRORS},
    response_class=JSONResponse,
    openapi_extra=_META_DOC,
    summary="The OGC API definition (OpenAPI 3.0)",
)
def api(request: Request, conn: Conn, state: State, settings: SettingsDep) -> JSONResponse:
    """An OpenAPI 3.0.3 document of the /ogc endpoints, one path set per collection."""
    _meta(request)
    doc = schemas.openapi(state.registry(conn), _base(request), settings)
    return JSONResponse(doc, media_type=OPENAPI)


@router.get(
    "/collections",
    response_model=schemas.Collections,
    responses=_ERRORS,
    openapi_extra=_META_DOC,
    summary="Feature collections",
)
def collections(request: Request, conn: Conn, state: State) -> JSONResponse:
    """Grids by level, facilities by type and open hazards, with real extents."""
    _meta(request)
    return JSONResponse(documents.collections_doc(conn, state, _base(request)))


@router.get(
    "/collections/{collection_id}",
    response_model=schemas.Collection,
    responses=_ERRORS,
    openapi_extra=_META_DOC,
    summary="One collection's metadata",
)
def collection(
    request: Request, conn: Conn, state: State, collection_id: CollectionId
) -> JSONResponse:
    """Title, description, extent (CRS84 bbox, time span) and links."""
    coll = _collection(conn, state, collection_id)
    _meta(request)
    ext = state.extent(conn, coll)
    return JSONResponse(documents.collection_doc(coll, ext, _base(request)))


@router.get(
    "/collections/{collection_id}/queryables",
    responses={200: {"content": {JSON_SCHEMA: {"schema": {"type": "object"}}}}, **_ERRORS},
    response_class=JSONResponse,
    openapi_extra=_META_DOC,
    summary="Queryable properties (JSON Schema)",
)
def queryables(
    request: Request, conn: Conn, state: State, collection_id: CollectionId
) -> JSONResponse:
    """The properties usable in filter=, as ?name=value and in properties=."""
    coll = _collection(conn, state, collection_id)
    _meta(request)
    return JSONResponse(documents.queryables_doc(coll, _base(request)), media_type=JSON_SCHEMA)


@router.get(
    "/collections/{collection_id}/items",
    response_model=schemas.FeatureCollection,
    # f=geojson (the default) is application/geo+json, f=json the same body as JSON
    responses={200: {"content": {GEOJSON: {}, JSON: {}}}, **_ERRORS},
    response_class=GeoJSONResponse,
    openapi_extra=_ITEMS_DOC,
    summary="Features, one page at a time",
)
async def items(
    request: Request,
    db: Db,
    state: State,
    settings: SettingsDep,
    collection_id: CollectionId,
) -> Response:
    """GeoJSON features (CRS84) with numberMatched, numberReturned and self/alternate/next
    links; filter by bbox, datetime, queryable=value or a CQL2-text filter."""
    coll = await _collection_async(request, state, collection_id)
    query = parsing.parse_items_query(coll, _pairs(request), settings)
    body = await service.items_body(db, coll, query, _base(request), state)
    media = GEOJSON if query.fmt == "geojson" else JSON
    return Response(body, media_type=media, headers=_CRS_HEADER)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}, JSON: {}}}, **_ERRORS},
    response_class=GeoJSONResponse,
    openapi_extra=_ITEM_DOC,
    summary="One feature",
)
async def item(
    request: Request,
    db: Db,
    state: State,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(description="The feature's id.")],
) -> Response:
    """A GeoJSON Feature with self, alternate and collection links."""
    coll = await _collection_async(request, state, collection_id)
    pairs = _pairs(request)
    parsing.check_params(pairs, service.ITEM_PARAMS)
    params = dict(pairs)
    fmt = parsing.parse_format(params.get("f"), items=True)
    parsing.check_crs("crs", params.get("crs"))
    missing = NotFound(
        f"Feature {feature_id} does not exist in collection {coll.id}.",
        collection=coll.id,
        feature=feature_id,
    )
    try:
        fid = int(feature_id)
    except ValueError as exc:
        raise missing from exc
    if not 1 <= fid <= BIGINT_MAX:
        raise missing
    body = await service.item_body(db, coll, fid, fmt, _base(request))
    if body is None:
        raise missing
    media = GEOJSON if fmt == "geojson" else JSON
    return Response(body, media_type=media, headers=_CRS_HEADER)
