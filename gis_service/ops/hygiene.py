"""Photo hygiene: move the photos of long-closed hazards to the photo archive folder.

Order of work, so that a crash at any point loses nothing: copy a photo's files to the
archive (synced), then record ``archived_to`` in the database with an audit row (one
transaction per batch), then delete the originals. A crash before the commit leaves a
spare copy in the archive (the next run overwrites it); after it, a spare original (the next
run removes it). The photo stays readable at its URL throughout.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gis_service.auth import audit
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.db.transaction import transaction
from gis_service.hazards.states import CLOSED_STATUSES
from gis_service.ops.backup import Log
from gis_service.ops.files import fsync_dir, tree_size
from gis_service.ops.pgtools import database_for
from gis_service.ops.sql import CANDIDATES, LEFTOVERS, MARK

BATCH = 500


def _copy_synced(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file():
            target = dst / path.name
            shutil.copyfile(path, target)
            fd = os.open(target, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    fsync_dir(dst)
    fsync_dir(dst.parent)


def archive_photos(
    settings: Settings, years: float, apply: bool = False, log: Log = lambda _: None
) -> dict[str, Any]:
    """Archive (or, without ``apply``, count) photos of hazards closed over ``years`` ago."""
    cutoff = datetime.now(UTC) - timedelta(days=365.25 * years)
    engine = make_engine(database_for(settings).url, pool_size=1)
    src_root, dst_root = settings.photos_path, settings.photo_archive_path
    moved = bytes_moved = cleaned = 0
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                CANDIDATES, {"closed": list(CLOSED_STATUSES), "cutoff": cutoff}
            ).all()
            conn.rollback()  # the batches below each run in a transaction of their own
            found = len(rows)
            size = sum(tree_size(src_root / str(h) / pid) for h, pid in rows)
            if not apply:
                return {
                    "dry_run": True,
                    "closed_before": cutoff.isoformat(),
                    "photos": found,
                    "bytes": size,
                    "archive": str(dst_root),
                    "hint": "add --apply to move them",
                }
            for start in range(0, found, BATCH):
                batch = rows[start : start + BATCH]
                done = []
                for hazard_id, pid in batch:
                    rel = f"{hazard_id}/{pid}"
                    src = src_root / rel
                    if src.is_dir():
                        _copy_synced(src, dst_root / rel)
                        bytes_moved += tree_size(src)
                    done.append((hazard_id, pid, rel))
                with transaction(conn):
                    for _, pid, rel in done:
                        conn.execute(MARK, {"rel": rel, "id": pid})
                    audit.record(
                        conn,
                        None,
                        "archive_photos",
                        "hazard_photo",
                        None,
                        None,
                        {
                            "photos": [pid for _, pid, _ in done],
                            "to": str(dst_root),
                            "closed_before": cutoff.isoformat(),
                        },
                        None,
                        None,
                    )
                for _, _, rel in done:
                    shutil.rmtree(src_root / rel, ignore_errors=True)
                moved += len(done)
                log(f"archived {moved}/{found} photos")
            for hazard_id, pid in conn.execute(LEFTOVERS):
                leftover = src_root / str(hazard_id) / pid
                if leftover.is_dir() and (dst_root / str(hazard_id) / pid).is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                    cleaned += 1
            for hazard_dir in src_root.iterdir() if src_root.is_dir() else []:
                if hazard_dir.is_dir() and not any(hazard_dir.iterdir()):
                    hazard_dir.rmdir()
    finally:
        engine.dispose()
    return {
        "dry_run": False,
        "closed_before": cutoff.isoformat(),
        "photos": moved,
        "bytes": bytes_moved,
        "leftovers_removed": cleaned,
        "archive": str(dst_root),
    }
