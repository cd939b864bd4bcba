"""Thin HTTP routes for vector tiles: the layer list, TileJSON and the tiles themselves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response

from gis_service.http.deps import Conn, Db
from gis_service.http.errors import error_body
from gis_service.ops.metrics import tile_cache
from gis_service.tiles import schemas, service
from gis_service.tiles.tilesets import LAYERS, MAX_ZOOM, MIN_ZOOM

router = APIRouter(prefix="/tiles", tags=["tiles"])

_LAYER_DOC = f"Tile layer: one of {', '.join(LAYERS)}."

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "Unknown layer, or x/y outside the zoom's grid",
        "content": {
            "application/json": {
                "example": error_body("not_found", "Unknown tile layer 'roads'. Known layers: …")
            }
        },
    }
}


@router.get(
    "",
    response_model=schemas.TileLayerList,
    summary="The vector-tile layers, with links to their TileJSON",
)
def list_layers(request: Request, response: Response) -> dict[str, Any]:
    """Every tile layer with its zoom range, TileJSON URL and tile URL template."""
    response.headers["Cache-Control"] = service.CACHE_CONTROL
    return service.layer_list(str(request.base_url))


@router.get(
    "/{layer}.json",
    response_model=schemas.TileJSON,
    responses=_NOT_FOUND,
    summary="TileJSON 3.0.0 for one layer",
)
def get_tilejson(
    request: Request,
    response: Response,
    conn: Conn,
    layer: Annotated[str, Path(description=_LAYER_DOC)],
) -> dict[str, Any]:
    """TileJSON for MapLibre, OpenLayers or QGIS: tile URL, zooms, bounds and fields."""
    doc = service.tilejson(conn, service.get_layer(layer), str(request.base_url))
    response.headers["Cache-Control"] = service.CACHE_CONTROL
    return doc


@router.get(
    "/{layer}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses={
        200: {
            "description": "The tile",
            "content": {service.MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        204: {"description": "Empty tile, or a zoom outside the layer's range"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        422: {"description": "Invalid parameter (z outside 0–22, x or y negative)"},
        **_NOT_FOUND,
    },
    summary="One Mapbox Vector Tile",
)
async def get_tile(
    request: Request,
    db: Db,
    layer: Annotated[str, Path(description=_LAYER_DOC)],
    z: Annotated[int, Path(ge=MIN_ZOOM, le=MAX_ZOOM, description="Zoom.")],
    x: Annotated[
        int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Column, 0 to 2^z - 1 from the west.")
    ],
    y: Annotated[
        int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Row, 0 to 2^z - 1 from the north.")
    ],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A tile in EPSG:3857 (XYZ scheme), with ETag and Cache-Control; 204 when empty. Tiles
    come from the tile cache, which a changed hazard or facility invalidates for the tiles it
    touches and a grid redraw for its layer; If-None-Match with the ETag answers 304."""
    plain = "gzip" not in request.headers.get("accept-encoding", "")
    found = await service.tile(db, service.get_layer(layer), z, x, y, plain)
    headers = {"Cache-Control": service.CACHE_CONTROL}
    if found is not None:
        headers["X-Cache"] = "HIT" if found.hit else "MISS"
        tile_cache(layer, hit=found.hit)
    if found is None or found.empty:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = found.etag
    headers["Vary"] = "Accept-Encoding"
    if service.etag_matches(if_none_match, found.etag):
        return Response(status_code=304, headers=headers)
    if not plain:
        headers["Content-Encoding"] = "gzip"
        return Response(found.gz, media_type=service.MVT_MEDIA_TYPE, headers=headers)
    return Response(found.data, media_type=service.MVT_MEDIA_TYPE, headers=headers)
