"""Upgrades: back up before migrations change a database that holds data.

Rolling back an upgrade means restoring that archive with the previous release (README,
"Upgrades and rolling back"); Alembic downgrades are for development, not for real data.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from gis_service.config import Settings
from gis_service.db import migrate

log = logging.getLogger(__name__)


def backup_before_upgrade(engine: Engine, settings: Settings) -> dict[str, Any] | None:
    """Back up when migrations are pending on a database that has a schema; else None."""
    if not settings.backup_before_upgrade:
        return None
    current, head = migrate.current(engine), migrate.head(engine)
    if current is None or current == head:
        return None
    from gis_service.ops.backup import backup

    log.info("migrations pending (%s -> %s): backing up first", current, head)
    result = backup(settings, reason=f"pre-upgrade-{current.split('_')[0]}", log=log.info)
    log.info("pre-upgrade backup: %s", result["archive"])
    return result
