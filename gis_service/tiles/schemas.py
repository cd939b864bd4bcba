"""Pydantic shapes of the tiles API (for the OpenAPI document and for tests)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VectorLayer(BaseModel):
    """One MVT layer inside the tiles, as TileJSON 3.0.0 describes it."""

    id: str = Field(description="The layer name inside each tile.")
    description: str
    minzoom: int
    maxzoom: int
    fields: dict[str, str] = Field(description="Attribute name → String, Number or Boolean.")


class TileJSON(BaseModel):
    """A TileJSON 3.0.0 document for one tile layer."""

    tilejson: Literal["3.0.0"]
    name: str
    description: str
    version: str
    scheme: Literal["xyz"]
    tiles: list[str] = Field(description="XYZ URL templates of the tiles.")
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(description="West, south, east, north in WGS84 degrees.")
    center: list[float] = Field(description="Longitude, latitude and zoom to open at.")
    vector_layers: list[VectorLayer]


class TileLayerInfo(BaseModel):
    """A tile layer in the listing, with links to its TileJSON and tiles."""

    id: str
    title_zh: str
    title_en: str
    description: str
    minzoom: int
    maxzoom: int
    tilejson: str = Field(description="URL of the layer's TileJSON document.")
    tiles: str = Field(description="XYZ URL template of the layer's tiles.")


class TileLayerList(BaseModel):
    """Every tile layer the service serves."""

    layers: list[TileLayerInfo]
