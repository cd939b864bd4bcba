"""Tile logic with no HTTP: address checks, one-statement tiles, ETags and TileJSON."""

from __future__ import annotations

import asyncio
import gzip
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from gis_service.db.reads import ReadDb
from gis_service.errors import NotFound
from gis_service.tiles import sql
from gis_service.tiles.tilesets import LAYERS, THIN_CELLS_PER_SIDE, TileLayer

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

# Short: grids change rarely, but hazards open and close all day and a tile must not hide a
# new one for long. The ETag makes every revalidation after that cheap for the client.
CACHE_MAX_AGE_S = 60
CACHE_CONTROL = f"public, max-age={CACHE_MAX_AGE_S}"

# Width of the EPSG:3857 world in metres; a tile at zoom z is WORLD_M / 2**z wide.
WORLD_M = 2 * 20037508.342789244
EXTENT = 4096
BUFFER = 64
# Below this zoom polygons are simplified twice as hard: streets and communities carry long
# boundaries whose sub-pixel wiggles cost bytes and nobody sees them.
COARSE_BELOW_ZOOM = 13
# TileJSON's version of the tile schema: raise the major number when a field goes away.
TILESET_VERSION = "1.0.0"
# Web-mercator stops at ±85.05°; TileJSON bounds must stay inside it.
MAX_LAT = 85.0511287798066
WORLD_BOUNDS = (-180.0, -MAX_LAT, 180.0, MAX_LAT)


def get_layer(layer_id: str) -> TileLayer:
    """The layer called ``layer_id``, or a 404 that names the known layers."""
    layer = LAYERS.get(layer_id)
    if layer is None:
        known = list(LAYERS)
        raise NotFound(
            f"Unknown tile layer '{layer_id}'. Known layers: {', '.join(known)}.",
            layer=layer_id,
            known_layers=known,
        )
    return layer


def check_tile_address(z: int, x: int, y: int) -> None:
    """Refuse x or y outside the 2^z × 2^z grid of zoom ``z`` with a 404 (no such tile)."""
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise NotFound(
            f"Tile {z}/{x}/{y} does not exist: at zoom {z}, x and y run from 0 to {n - 1}.",
            z=z,
            x=x,
            y=y,
            max_xy=n - 1,
        )


def simplify_tolerance(z: int) -> float:
    """Simplification tolerance in EPSG:3857 metres: one tile unit, two at low zoom."""
    unit = WORLD_M / (1 << z) / EXTENT
    return unit * (2 if z < COARSE_BELOW_ZOOM else 1)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """A tile's (west, south, east, north) in degrees (the inverse slippy-map formula)."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def tile_params(layer: TileLayer, z: int, x: int, y: int) -> dict[str, Any]:
    """The bound parameters of the layer's tile statement for one tile."""
    west, south, east, north = tile_bounds(z, x, y)
    return {
        **layer.params,
        "z": z,
        "x": x,
        "y": y,
        "margin": BUFFER / EXTENT,
        "tolerance": simplify_tolerance(z),
        "layer": layer.id,
        # The thinning lattice of point layers below their detail zoom (unused otherwise).
        "x0": west,
        "y0": south,
        "cw": (east - west) / THIN_CELLS_PER_SIDE,
        "ch": (north - south) / THIN_CELLS_PER_SIDE,
    }


@dataclass(frozen=True)
class Tile:
    """A tile's bytes (None: not read, the client takes ``gz``), gzip-compressed (empty for
    an empty tile), its ETag, and whether the cache had it."""

    data: bytes | None
    gz: bytes
    etag: str
    hit: bool

    @property
    def empty(self) -> bool:
        """No feature: answered 204."""
        return not self.gz and not self.data


# Tiles are sent gzip-compressed (3-5x smaller); the cache keeps them that way, so a hit costs
# no compression. Level 6: nearly all of level 9's gain at a fraction of its time.
GZIP_LEVEL = 6
_background: set[asyncio.Task] = set()


async def tile(
    db: ReadDb, layer: TileLayer, z: int, x: int, y: int, plain: bool = True
) -> Tile | None:
    """One tile from the tile cache, built and stored there when missing or stale; None
    when the zoom is outside the layer. ``plain``: the client takes no gzip, so the plain
    bytes are read. On the primary (the build stores; a hit reflects the newest versions):
    one small statement for a hit, the cached build after a miss; the compressed bytes of a
    new tile are added to the cache after the answer has gone."""
    check_tile_address(z, x, y)
    if not layer.covers_zoom(z):
        return None
    params = tile_params(layer, z, x, y)
    row = await db.write(sql.CACHE_HIT, {**params, "plain": plain})
    hit = row is not None
    if not hit:
        row = await db.write(sql.cached(layer.statement(z)), params)
        hit = row["hit"]
    data = None if row["data"] is None else bytes(row["data"])
    gz = row["gz"]
    if gz is None and data:
        gz = gzip.compress(data, GZIP_LEVEL, mtime=0)
        store = db.write(sql.STORE_GZ, {**params, "gz": gz, "etag": row["etag"]})
        task = asyncio.create_task(store)
        _background.add(task)  # keep a reference until it is done
        task.add_done_callback(_background.discard)
    return Tile(data, bytes(gz or b""), row["etag"], hit)


def sync_layers(conn: Connection) -> None:
    """Tell the cache triggers which zooms each layer has (tile_layers)."""
    for layer in LAYERS.values():
        conn.execute(
            sql.SYNC_LAYERS,
            {"layer": layer.id, "minzoom": layer.minzoom, "maxzoom": layer.maxzoom},
        )


def prune_cache(conn: Connection) -> int:
    """Drop tiles built over a day ago or under a layer version that has moved."""
    return conn.execute(sql.PRUNE).rowcount


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """True when an If-None-Match header names ``tag`` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == tag for c in candidates)


def layer_bounds(conn: Connection, layer: TileLayer) -> tuple[float, float, float, float]:
    """The data's extent as (west, south, east, north), inside web-mercator; world if empty."""
    row = conn.execute(layer.extent_sql, dict(layer.params)).mappings().first()
    if row is None or row["xmin"] is None:
        return WORLD_BOUNDS
    west = max(-180.0, float(row["xmin"]))
    east = min(180.0, float(row["xmax"]))
    south = max(-MAX_LAT, float(row["ymin"]))
    north = min(MAX_LAT, float(row["ymax"]))
    if west > east or south > north:  # data only beyond ±85.05°: nothing a tile can show
        return WORLD_BOUNDS
    return west, south, east, north


def _fit_zoom(bounds: tuple[float, float, float, float], layer: TileLayer) -> int:
    """The zoom at which the bounds fill about one 512-px view, clamped to the layer."""
    west, south, east, north = bounds

    def merc_y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    # Both spans as fractions of the world's width, so one log2 gives the zoom.
    span = max((east - west) / 360.0, (merc_y(north) - merc_y(south)) / (2 * math.pi))
    zoom = math.floor(math.log2(1 / span)) if span > 0 else layer.maxzoom
    return max(layer.minzoom, min(layer.maxzoom, zoom))


def tile_url_template(base_url: str, layer: TileLayer) -> str:
    """The XYZ URL template of a layer's tiles under ``base_url``."""
    return f"{base_url.rstrip('/')}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.pbf"


def tilejson_url(base_url: str, layer: TileLayer) -> str:
    """The URL of a layer's TileJSON document under ``base_url``."""
    return f"{base_url.rstrip('/')}/tiles/{layer.id}.json"


def tilejson(conn: Connection, layer: TileLayer, base_url: str) -> dict[str, Any]:
    """A TileJSON 3.0.0 document for one layer; bounds from the data, world when empty."""
    bounds = layer_bounds(conn, layer)
    west, south, east, north = bounds
    center = [(west + east) / 2, (south + north) / 2, _fit_zoom(bounds, layer)]
    if bounds == WORLD_BOUNDS:  # no data: open where a map of the layer starts to show
        center = [0.0, 0.0, layer.minzoom]
    return {
        "tilejson": "3.0.0",
        "name": layer.id,
        "description": f"{layer.title_zh} / {layer.title_en}. {layer.description}",
        "version": TILESET_VERSION,
        "scheme": "xyz",
        "tiles": [tile_url_template(base_url, layer)],
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "bounds": list(bounds),
        "center": center,
        "vector_layers": [
            {
                "id": layer.id,
                "description": layer.title_en,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "fields": dict(layer.fields),
            }
        ],
    }


def layer_list(base_url: str) -> dict[str, Any]:
    """Every tile layer with its zooms and links to its TileJSON and tiles."""
    return {
        "layers": [
            {
                "id": layer.id,
                "title_zh": layer.title_zh,
                "title_en": layer.title_en,
                "description": layer.description,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "tilejson": tilejson_url(base_url, layer),
                "tiles": tile_url_template(base_url, layer),
            }
            for layer in LAYERS.values()
        ]
    }
