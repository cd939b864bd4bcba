"""Facility reads with no HTTP: filtered lists, k nearest, and one facility."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause

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

    def given(self) -> frozenset[str]:
        """The filters that are on (names of sql.FILTERS)."""
        on = {
            "types": self.types is not None,
            "statuses": self.statuses is not None,
            "bbox": self.bbox is not None and not self.bbox.crosses_antimeridian,
            "bbox_crossing": self.bbox is not None and self.bbox.crosses_antimeridian,
            "near": self.near is not None,
            "grid": self.grid is not None,
            "q": self.q is not None,
        }
        return frozenset(name for name, is_on in on.items() if is_on)

    def statements(self) -> tuple[TextClause, TextClause]:
        """The list's page statements (GeoJSON, CSV) for the filters that are on."""
        return sql.facility_list(self.given())

    def as_params(self, crs: Datum) -> dict[str, Any]:
        """Bound parameters for the list statements (those of the filters that are on)."""
        params: dict[str, Any] = {"crs": crs.value}
        if self.types is not None:
            params["types"] = self.types
        if self.statuses is not None:
            params["statuses"] = self.statuses
        if self.bbox is not None:
            # west_maxx is None, and not in the statement, unless the box crosses 180°.
            params.update((k, v) for k, v in bbox_params(self.bbox).items() if v is not None)
        if self.near is not None:
            params.update(near_params(self.near))
        if self.grid is not None:
            params["grid"] = self.grid
        if self.q is not None:
            params["q"] = self.q
        return params


async def nearest(
    db: ReadDb, lon: float, lat: float, k: int, types: list[str] | None, crs: Datum
) -> str:
    """The k facilities nearest a WGS84 point, as a FeatureCollection text."""
    params = {"lon": lon, "lat": lat, "k": k, "types": types, "crs": crs.value}
    return await db.val(sql.FACILITY_NEAREST, params)


async def facility_feature(db: ReadDb, facility_id: int, crs: Datum) -> str | None:
    """One facility as a Feature text with its grid chain, or None."""
    return await db.val(sql.FACILITY_FEATURE, {"id": facility_id, "crs": crs.value})
