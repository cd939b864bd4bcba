"""Hazard reads with no HTTP: the list filter, one hazard with its history and version, the
moves a caller may make on it, and a photo's record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import DataError

from gis_service.auth.principal import Principal
from gis_service.auth.visibility import private_params
from gis_service.geo.areas import BBox, Near, bbox_params, near_params
from gis_service.geo.datums import Datum
from gis_service.hazards import sql
from gis_service.hazards.policy import moves_for


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
        return {
            "statuses": self.statuses,
            "categories": self.categories,
            "grid": self.grid,
            **bbox_params(self.bbox),
            **near_params(self.near),
            "since": self.since,
            "until": self.until,
            "overdue": self.overdue,
        }


def list_params(flt: HazardFilter, crs: Datum) -> dict[str, Any]:
    """Parameters for HAZARD_LIST / HAZARD_LIST_CSV."""
    return {**flt.as_params(), "crs": crs.value}


def hazard_feature_versioned(
    conn: Connection, hazard_id: int, principal: Principal, crs: Datum = Datum.wgs84
) -> tuple[str, int] | None:
    """One hazard as a GeoJSON Feature text with history and photos, and its version; the
    reporter and the history's actors and notes only for those who may read them."""
    params = {"id": hazard_id, "crs": crs.value, **private_params(principal)}
    row = conn.execute(sql.HAZARD_FEATURE_V, params).first()
    return None if row is None else (row[0], int(row[1]))


def lookup_ref(conn: Connection, ref: str) -> Row | None:
    """A hazard by id or public code (codes are matched case-insensitively)."""
    as_id = int(ref) if ref.isdigit() and len(ref) < 19 else None
    return conn.execute(sql.HAZARD_REF, {"id": as_id, "code": ref.upper()}).first()


def moves_offered(
    conn: Connection, hazard_id: int, principal: Principal, rework_days: int
) -> list[str]:
    """The moves ``principal`` may make on a hazard now (for the client's buttons)."""
    row = conn.execute(sql.HAZARD_ROW, {"id": hazard_id, "rework_days": rework_days}).one()
    return moves_for(principal, row)


def photo_record(conn: Connection, hazard_id: int, photo_id: str) -> Row | None:
    """A photo of a hazard (id, content type, the hazard's grid path), or None."""
    try:
        return conn.execute(
            sql.SELECT_PHOTO, {"hazard_id": hazard_id, "photo_id": photo_id}
        ).first()
    except DataError:  # not a UUID after all
        return None
