"""Pydantic shapes of the grids API (for the OpenAPI document and for tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gis_service.geo.datums import Datum


class PersonOnGrid(BaseModel):
    """A person's public face on a grid: name, role and work phone."""

    id: int
    name: str
    role: str = Field(description="Role code, e.g. grid_leader.")
    role_name: str = Field(description="Role in Chinese, e.g. 网格长.")
    role_name_en: str
    work_phone: str | None
    mobile_phone: str | None = Field(
        default=None, description="Private: only for staff whose scope covers the grid."
    )
    is_primary: bool = Field(description="The person reports in this grid route to.")


class GridInChain(BaseModel):
    """One grid of a located chain."""

    id: int
    code: str
    name: str
    level: str
    level_name: str
    level_name_en: str
    people: list[PersonOnGrid]
    open_hazards: int | None = Field(
        default=None, description="Open hazards routed to this grid (finest grid only)."
    )


class LocateResult(BaseModel):
    """What covers a point: the chain street-first, and any special grids."""

    point: dict[str, float]
    at: datetime
    chain: list[GridInChain]
    special_grids: list[GridInChain]


class GridFeature(BaseModel):
    """A grid as a GeoJSON Feature."""

    type: Literal["Feature"]
    id: int
    geometry: dict[str, Any]
    properties: dict[str, Any]


Longitude = Annotated[float, Field(strict=True, ge=-180, le=180)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90)]


class BatchLocateRequest(BaseModel):
    """Points to locate, each ``[lon, lat]`` in the datum ``crs``."""

    model_config = {"extra": "forbid"}

    # Numbers only (strict: true or "113.6" is no coordinate), in range: as documented.
    points: list[tuple[Longitude, Latitude]] = Field(
        min_length=1, description="[[lon, lat], …]; at most GIS_MAX_BATCH (10,000) points."
    )
    crs: Datum = Datum.wgs84


class BatchLocateHit(BaseModel):
    """A located point."""

    grid_id: int
    code: str
    chain: list[int]


class BatchLocateResult(BaseModel):
    """One entry per input point, in order; null when the point is outside every grid."""

    count: int
    results: list[BatchLocateHit | None]


class GridSummary(BaseModel):
    """A grid with its people and its subtree's counts."""

    grid: dict[str, Any]
    people: list[PersonOnGrid]
    subtree: dict[str, Any]
