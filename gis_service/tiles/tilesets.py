"""The registry of vector-tile layers: what each serves, at which zooms, with which fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import TextClause

from gis_service.tiles import sql

# Zoom bounds of the tile address space; a layer's own range lies inside them.
MIN_ZOOM = 0
MAX_ZOOM = 22

# Above a layer's maxzoom clients overzoom the last tile (TileJSON says where it is): 4096
# units per tile side at z18 is a 4 cm grid in Zhengzhou, finer than any boundary we hold.
LAYER_MAXZOOM = 18

# Point layers below their detail zoom keep one feature per cell of a 32 × 32 lattice over
# the tile (16 px on a 512-px tile, about one map icon), with `count` saying how many it
# stands for. A city-centre z14 tile holds ~25,000 facilities: unreadable as points, too
# many to encode within the time budget, and a tile of several hundred kilobytes.
THIN_CELLS_PER_SIDE = 32


@dataclass(frozen=True)
class TileLayer:
    """One tile layer: its id (also the MVT layer name), titles, zooms, SQL and fields."""

    id: str
    title_zh: str
    title_en: str
    description: str
    minzoom: int
    maxzoom: int
    # Attribute name → TileJSON type ("String", "Number", "Boolean").
    fields: Mapping[str, str]
    tile_sql: TextClause
    extent_sql: TextClause
    # Extra bound parameters of the tile and extent statements (a grid level).
    params: Mapping[str, Any] = field(default_factory=dict)
    # Below detail_zoom, thinned_sql builds the tile (one feature per lattice cell).
    detail_zoom: int = MIN_ZOOM
    thinned_sql: TextClause | None = None
    # Thinned zooms whose cells are kept ready in the database: their own statement.
    thinned_by_zoom: Mapping[int, TextClause] = field(default_factory=dict)

    def covers_zoom(self, z: int) -> bool:
        """True when this layer has tiles at zoom ``z``."""
        return self.minzoom <= z <= self.maxzoom

    def statement(self, z: int) -> TextClause:
        """The statement that builds this layer's tile at zoom ``z``."""
        if self.thinned_sql is not None and z < self.detail_zoom:
            return self.thinned_by_zoom.get(z, self.thinned_sql)
        return self.tile_sql


GRID_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "id": "Number",
        "code": "String",
        "name": "String",
        "level": "String",
        "parent_id": "Number",
        "leader": "String",
        "leader_role": "String",
    }
)
GRID_FIELDS_WITH_COUNTS: Mapping[str, str] = MappingProxyType(
    {**GRID_FIELDS, "open_hazards": "Number"}
)

FACILITY_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "id": "Number",
        "code": "String",
        "name": "String",
        "type_code": "String",
        "type_name": "String",
        "icon": "String",
        "color": "String",
        "status": "String",
        "count": "Number",
    }
)

# Nothing about the reporter: tiles are public.
HAZARD_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "id": "Number",
        "public_code": "String",
        "category_code": "String",
        "category_name": "String",
        "severity": "String",
        "status": "String",
        "reported_at": "String",
        "overdue": "Boolean",
        "count": "Number",
    }
)

_GRID_NOTE = (
    " Current boundaries only. leader is the primary responsible person, leader_role their role."
)
_COUNT_NOTE = " open_hazards counts the open hazards routed anywhere in the grid's subtree."


def _thin_note(what: str, detail_zoom: int, extra: str = "") -> str:
    return (
        f" Below z{detail_zoom} a tile keeps one {what} per 1/{THIN_CELLS_PER_SIDE} of its width"
        f"{extra}, and count says how many it stands for; from z{detail_zoom} on, every one "
        "(count = 1)."
    )


def _grid_layer(
    level: str, title_zh: str, title_en: str, minzoom: int, with_counts: bool
) -> TileLayer:
    """A grid layer; only the fine levels carry open-hazard counts (see sql._GRID_COUNTS)."""
    note = _GRID_NOTE + (_COUNT_NOTE if with_counts else "")
    return TileLayer(
        id=f"grids_{level}",
        title_zh=title_zh,
        title_en=f"{title_en} grids",
        description=f"{title_zh} ({title_en.lower()}) grid polygons.{note}",
        minzoom=minzoom,
        maxzoom=LAYER_MAXZOOM,
        fields=GRID_FIELDS_WITH_COUNTS if with_counts else GRID_FIELDS,
        tile_sql=sql.GRID_TILE_WITH_COUNTS if with_counts else sql.GRID_TILE,
        extent_sql=sql.GRID_EXTENT,
        params=MappingProxyType({"level": level}),
    )


FACILITY_DETAIL_ZOOM = 16
HAZARD_DETAIL_ZOOM = 14

# Min zooms keep every tile small and readable: a street of ~10 km² holds ~20 communities,
# ~170 grids and ~1,000 micro-grids (about 100 m across: 50 px at z15). Counting hazards
# costs one heap visit per hazard in the tile's grids, so streets and communities, which
# hold tens of thousands, go without; special grids too, as no hazard is routed to them.
_LAYERS = (
    # Chinese titles as the map names the levels (not "网格网格").
    _grid_layer("street", "街道", "Street", 10, with_counts=False),
    _grid_layer("community", "社区", "Community", 12, with_counts=False),
    _grid_layer("grid", "网格", "Grid", 13, with_counts=True),
    _grid_layer("micro_grid", "微网格", "Micro-grid", 15, with_counts=True),
    _grid_layer("special", "专属网格", "Special", 14, with_counts=False),
    TileLayer(
        id="facilities",
        title_zh="部件",
        title_en="Facilities",
        description=(
            "Facilities (部件) of every type, points and lines, with the type's name, icon and "
            "colour for styling." + _thin_note("facility", FACILITY_DETAIL_ZOOM)
        ),
        minzoom=14,
        maxzoom=LAYER_MAXZOOM,
        fields=FACILITY_FIELDS,
        tile_sql=sql.FACILITY_TILE,
        extent_sql=sql.FACILITY_EXTENT,
        detail_zoom=FACILITY_DETAIL_ZOOM,
        thinned_sql=sql.FACILITY_TILE_THINNED,
        thinned_by_zoom=MappingProxyType(sql.FACILITY_TILE_CELLS),
    ),
    TileLayer(
        id="hazards",
        title_zh="隐患",
        title_en="Open hazards",
        description=(
            "Open hazards (not closed or rejected): category, severity, status, report time "
            "(UTC, ISO 8601) and whether the deadline has passed; no reporter details."
            + _thin_note("hazard", HAZARD_DETAIL_ZOOM, extra=", an overdue one if any")
        ),
        minzoom=12,
        maxzoom=LAYER_MAXZOOM,
        fields=HAZARD_FIELDS,
        tile_sql=sql.HAZARD_TILE,
        extent_sql=sql.HAZARD_EXTENT,
        detail_zoom=HAZARD_DETAIL_ZOOM,
        thinned_sql=sql.HAZARD_TILE_THINNED,
    ),
)

LAYERS: Mapping[str, TileLayer] = MappingProxyType({layer.id: layer for layer in _LAYERS})
