"""Hazard reads with no HTTP: filtered lists and one hazard with its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gis_service.deps import BBox, Near
from gis_service.geo.datums import Datum
from gis_service.hazards import sql


@dataclass(frozen=True)
class HazardFilter:
    """What a hazard list may be filtered by; None switches a filter off."""

    statuses: list[str] | None = None
    categories: list[str] | None = None
    grid: int | None = None
    bbox: BBox | None = None
    near: Near | None = None
    since: datetime | None = None
    until: datetime | None = None
    overdue: bool | None = None

    def as_params(self) -> dict[str, Any]:
        """Bound parameters for the list statements."""
        box = (
            self.bbox.as_params() if self.bbox else dict.fromkeys(("minx", "miny", "maxx", "maxy"))
        )
        near = self.near
        return {
            "statuses": self.statuses,
            "categories": self.categories,
            "grid": self.grid,
            **box,
            "near_lon": near.lon if near else None,
            "near_lat": near.lat if near else None,
            "radius": near.radius_m if near else None,
            "since": self.since,
            "until": self.until,
            "overdue": self.overdue,
        }


def list_params(flt: HazardFilter, crs: Datum) -> dict[str, Any]:
    """Parameters for HAZARD_LIST / HAZARD_LIST_CSV."""
    return {**flt.as_params(), "crs": crs.value}


def hazard_feature(conn: Connection, hazard_id: int, crs: Datum = Datum.wgs84) -> str | None:
    """One hazard as a GeoJSON Feature text with its history, or None."""
    return conn.execute(sql.HAZARD_FEATURE, {"id": hazard_id, "crs": crs.value}).scalar()
