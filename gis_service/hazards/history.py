"""A hazard's history: one event per step, with the step's photos (rows and files), written
inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.config import Settings
from gis_service.hazards import photos as photo_store
from gis_service.hazards import sql
from gis_service.hazards.photos import Photo


def record_event(
    conn: Connection,
    hazard_id: int,
    action: str,
    from_status: str | None,
    to_status: str | None,
    principal: Principal,
    note: str | None,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
) -> int:
    """Append one step to the hazard's history; returns the event id. ``occurred_at`` is when
    the step was done on a phone that was offline (None: now)."""
    return conn.execute(
        sql.INSERT_EVENT,
        {
            "hazard_id": hazard_id,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "actor_person_id": principal.person_id,
            "actor_name": principal.name,
            "note": note,
            "data": json.dumps(data, ensure_ascii=False, default=str),
            "occurred_at": occurred_at,
        },
    ).scalar_one()


def store_photos(
    conn: Connection,
    settings: Settings,
    hazard_id: int,
    event_id: int,
    photos: list[Photo],
    uploaded_by: str,
) -> tuple[list[str], list[Path]]:
    """Rows and files of a step's photos; the folders are returned for cleanup on rollback."""
    return photo_store.store(
        conn,
        settings,
        sql.INSERT_PHOTO,
        {"hazard_id": hazard_id, "event_id": event_id},
        hazard_id,
        photos,
        uploaded_by,
    )
