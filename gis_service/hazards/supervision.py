"""Supervision with no HTTP: overdue work, statistics of a grid subtree, and a field
worker's tasks with AMap navigation links."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.errors import NotFound, Unauthorized
from gis_service.geo.datums import Datum
from gis_service.hazards import sql_supervision
from gis_service.hazards.states import STATUS_NAMES_ZH


def scoped_grid(principal: Principal, grid: int | None, conn: Connection) -> int | None:
    """The grid a supervisory read covers: the one asked for when it lies in the caller's
    subtree (404 otherwise, as for any private read), else the caller's scope root."""
    if not principal.authenticated:
        raise Unauthorized("Log in to see overdue work and statistics.")
    if grid is None:
        return None if principal.whole_territory else principal.grid_id
    path = conn.execute(sql_supervision.GRID_PATH, {"id": grid}).scalar()
    if path is None or not principal.in_scope(list(path)):
        raise NotFound(f"Grid {grid} does not exist or is outside your scope.", grid=grid)
    return grid


def overdue_list(
    conn: Connection, grid: int | None, limit: int, offset: int, crs: Datum
) -> dict[str, Any]:
    """Overdue hazards of a grid subtree, longest overdue first."""
    rows = conn.execute(
        sql_supervision.OVERDUE_LIST,
        {"grid": grid, "limit": limit, "offset": offset, "crs": crs.value},
    ).all()
    matched = rows[0].matched if rows else 0
    items = []
    for r in rows:
        item = dict(r._mapping)
        item.pop("matched")
        for k in ("due_at", "dispatched_at", "reported_at"):
            item[k] = item[k].isoformat() if item[k] else None
        item["overdue_hours"] = float(item["overdue_hours"])
        item["overdue_work_hours"] = float(item["overdue_work_hours"])
        item["url"] = f"/api/v1/hazards/{r.id}"
        items.append(item)
    return {
        "grid": grid,
        "crs": crs.value,
        "number_matched": matched if rows else _overdue_count(conn, grid),
        "number_returned": len(items),
        "items": items,
    }


def _overdue_count(conn: Connection, grid: int | None) -> int:
    return conn.execute(sql_supervision.OVERDUE_COUNT, {"grid": grid}).scalar_one()


def stats(
    conn: Connection, grid: int | None, since: datetime | None, until: datetime | None, top: int
) -> dict[str, Any]:
    """Counts by status and category, median report→close, overdue, top grids."""
    body = json.loads(
        conn.execute(
            sql_supervision.STATS, {"grid": grid, "since": since, "until": until, "top": top}
        ).scalar_one()
    )
    for key in ("median_hours_to_close", "median_work_hours_to_close"):
        med = body.get(key)
        body[key] = None if med is None else float(med)
    return {
        "grid": grid,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        **body,
    }


def amap_marker_url(gcj_lon: float, gcj_lat: float, name: str) -> str:
    """AMap's marker URI (opens the app or the web map); it takes GCJ-02 coordinates."""
    query = urlencode(
        {
            "position": f"{gcj_lon:.6f},{gcj_lat:.6f}",
            "name": name,
            "coordinate": "gaode",
            "src": "gis-service",
        },
        safe=",",
    )
    return f"https://uri.amap.com/marker?{query}"


def my_tasks(
    conn: Connection, person_id: int, near: tuple[float, float] | None, crs: Datum, limit: int
) -> dict[str, Any]:
    """Hazards waiting for one person, nearest first, each with an AMap navigation link."""
    rows = conn.execute(
        sql_supervision.MY_TASKS,
        {
            "person": person_id,
            "lon": near[0] if near else None,
            "lat": near[1] if near else None,
            "crs": crs.value,
            "limit": limit,
        },
    ).all()
    features = []
    for r in rows:
        name = f"{r.public_code} {r.category_name}"
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": {"type": "Point", "coordinates": [r.out_lon, r.out_lat]},
                "properties": {
                    "public_code": r.public_code,
                    "category": r.category_code,
                    "category_name": r.category_name,
                    "status": r.status,
                    "status_name": STATUS_NAMES_ZH.get(r.status, r.status),
                    "severity": r.severity,
                    "description": r.description,
                    "address": r.address,
                    "grid_name": r.grid_name,
                    "due_at": r.due_at.isoformat() if r.due_at else None,
                    "overdue": bool(r.overdue),
                    "version": r.version,
                    "distance_m": None if r.distance_m is None else float(r.distance_m),
                    "navigation_url": amap_marker_url(r.gcj_lon, r.gcj_lat, name),
                    "gcj02": [round(r.gcj_lon, 7), round(r.gcj_lat, 7)],
                    "url": f"/api/v1/hazards/{r.id}",
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "crs_name": crs.value,
        "person_id": person_id,
        "numberReturned": len(features),
        "features": features,
    }
