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

    def _on(self) -> dict[str, dict[str, Any]]:
        """Each filter that is on (names of sql.FILTERS), with its bound parameters."""
        on: dict[str, dict[str, Any]] = {}
        if self.types is not None:
            on["types"] = {"types": self.types}
        if self.statuses is not None:
            on["statuses"] = {"statuses": self.statuses}
        if self.bbox is not None:
            # west_maxx is None, and not in the statement, unless the box crosses 180°.
            name = "bbox_crossing" if self.bbox.crosses_antimeridian else "bbox"
            on[name] = {k: v for k, v in bbox_params(self.bbox).items() if v is not None}
        if self.near is not None:
            on["near"] = near_params(self.near)
        if self.grid is not None:
            on["grid"] = {"grid": self.grid}
        if self.q is not None:
            on["q"] = {"q": self.q}
        return on

    def query(self, crs: Datum) -> tuple[tuple[TextClause, TextClause], dict[str, Any]]:
        """The list's page statements (GeoJSON, CSV) for the filters that are on, and their
        bound parameters."""
        on = self._on()
        params: dict[str, Any] = {"crs": crs.value}
        for bound in on.values():
            params.update(bound)
        return sql.facility_list(frozenset(on)), params


async def nearest(
    db: ReadDb, lon: float, lat: float, k: int, types: list[str] | None, crs: Datum
) -> str:
    """The k facilities nearest a WGS84 point, as a FeatureCollection text."""
    params = {"lon": lon, "lat": lat, "k": k, "types": types, "crs": crs.value}
    return await db.val(sql.FACILITY_NEAREST, params)


async def facility_feature(db: ReadDb, facility_id: int, crs: Datum) -> str | None:
    """One facility as a Feature text with its grid chain, or None."""
    return await db.val(sql.FACILITY_FEATURE, {"id": facility_id, "crs": crs.value})
