"""Facility reads with no HTTP: filtered lists, k nearest, and one facility."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gis_service.db.reads import ReadDb
from gis_service.facilities import sql
from gis_service.geo.areas import BBox, Near, bbox_params, near_params
from gis_service.geo.datums import Datum


@dataclass(frozen=True)
class FacilityFilter:
    """What a facility list may be filtered by; None switches a filter off."""

    types: list[str] | None = None
    statuses: list[str] | None = None
    bbox: BBox | None = None
    near: Near | None = None
    grid: int | None = None
    q: str | None = None

    def as_params(self, crs: Datum) -> dict[str, Any]:
        """Bound parameters for the list statements."""
        return {
            "types": self.types,
            "statuses": self.statuses,
            **bbox_params(self.bbox),
            **near_params(self.near),
            "grid": self.grid,
            "q": self.q,
            "crs": crs.value,
        }


async def nearest(
    db: ReadDb, lon: float, lat: float, k: int, types: list[str] | None, crs: Datum
) -> str:
    """The k facilities nearest a WGS84 point, as a FeatureCollection text."""
    params = {"lon": lon, "lat": lat, "k": k, "types": types, "crs": crs.value}
    return await db.val(sql.FACILITY_NEAREST, params)


async def facility_feature(db: ReadDb, facility_id: int, crs: Datum) -> str | None:
    """One facility as a Feature text with its grid chain, or None."""
    return await db.val(sql.FACILITY_FEATURE, {"id": facility_id, "crs": crs.value})
