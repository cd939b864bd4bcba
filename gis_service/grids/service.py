"""Grid logic with no HTTP: locate points, list and summarise grids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from numpy.typing import ArrayLike
from sqlalchemy import Connection, Engine

from gis_service.auth.principal import ANONYMOUS, Principal
from gis_service.auth.visibility import private_params
from gis_service.db.reads import ReadDb
from gis_service.errors import Forbidden, NotFound
from gis_service.geo import wkb
from gis_service.geo.areas import BBox, bbox_params
from gis_service.geo.datums import Datum
from gis_service.grids import sql


async def locate(
    db: ReadDb,
    lon: float,
    lat: float,
    at: datetime | None = None,
    principal: Principal = ANONYMOUS,
) -> str | None:
    """The grid chain at a WGS84 point as a JSON text, or None when no grid covers it
    (mobile phones only for a caller who may read private fields there)."""
    params = {"lon": lon, "lat": lat, **private_params(principal)}
    if at is None and not principal.has("read_private"):
        row = await db.row(sql.LOCATE_NOW_PUBLIC, params)
        if row is None:
            return None
        if row["body"] is not None:
            return row["body"]
    return await db.val(sql.LOCATE, {**params, "at": at})


async def locate_many(
    db: ReadDb, lons: ArrayLike, lats: ArrayLike, at: datetime | None = None
) -> str:
    """For each WGS84 point, its finest grid and chain of ids (or null), as a JSON array."""
    points = wkb.multipoint(lons, lats)
    return await db.val(sql.LOCATE_BATCH, {"points": points, "at": at}) or "[]"


async def nearest_grid(db: ReadDb, lon: float, lat: float) -> dict[str, Any] | None:
    """The nearest current street-level grid and its distance in metres (for error messages)."""
    row = await db.row(sql.NEAREST_GRID, {"lon": lon, "lat": lat})
    return dict(row) if row else None


async def first_grid_from(db: ReadDb, lon: float, lat: float) -> datetime | None:
    """When the first grid ever covering the point began, or None when none ever did."""
    return await db.val(sql.FIRST_GRID_AT_POINT, {"lon": lon, "lat": lat})


async def grid_feature(
    db: ReadDb, grid_id: int, crs: Datum = Datum.wgs84, principal: Principal = ANONYMOUS
) -> str | None:
    """One grid as a GeoJSON Feature text, or None."""
    params = {"id": grid_id, "crs": crs.value, **private_params(principal)}
    return await db.val(sql.GRID_FEATURE, params)


async def exists(db: ReadDb, grid_id: int) -> bool:
    """Whether a grid row with this id exists (any version)."""
    return await db.val(sql.GRID_EXISTS, {"id": grid_id}) is not None


@dataclass(frozen=True)
class GridFilter:
    """Filters of a grid list; None switches one off."""

    level: str | None = None
    parent: int | None = None
    ancestor: int | None = None
    bbox: BBox | None = None
    q: str | None = None
    at: datetime | None = None

    def as_params(self, crs: Datum) -> dict[str, Any]:
        """Bound parameters for GRID_LIST / GRID_LIST_CSV."""
        return {
            "level": self.level,
            "parent": self.parent,
            "ancestor": self.ancestor,
            "ids": None,
            **bbox_params(self.bbox),
            "q": self.q,
            "at": self.at,
            "crs": crs.value,
        }


async def ancestors(db: ReadDb, grid_id: int, crs: Datum) -> str | None:
    """The grid's ancestors, street first, as a FeatureCollection text."""
    return await db.val(sql.GRID_ANCESTORS, {"id": grid_id, "crs": crs.value})


async def summary(db: ReadDb, grid_id: int, principal: Principal = ANONYMOUS) -> str | None:
    """People, open and overdue hazards, and facility counts for a grid's subtree (JSON text)."""
    return await db.val(sql.GRID_SUMMARY, {"id": grid_id, **private_params(principal)})


def scoped_root(conn: Connection, principal: Principal, root: str | None) -> str | None:
    """The subtree a caller may act on: their own grid when they name none; 403 outside it."""
    if principal.whole_territory:
        return root
    if root is None:
        return conn.execute(sql.CODE_OF, {"id": principal.grid_id}).scalar()
    path = conn.execute(sql.GRID_CODE_PATH, {"code": root}).scalar()
    if path is None:
        raise NotFound(f"No grid has the code '{root}'.", root=root)
    if not principal.in_scope(path):
        raise Forbidden(
            f"Grid {root} lies outside your area; name a grid inside it, or none for all of it."
        )
    return root


def maintain_cards(engine: Engine) -> tuple[int, int]:
    """Fill missing grid cards and rebuild stale ones; (filled, refreshed)."""
    with engine.begin() as conn:
        filled, refreshed = conn.execute(sql.MAINTAIN_CARDS).one()
    return int(filled), int(refreshed)
