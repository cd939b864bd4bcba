"""The embedded cluster's WAL archiving settings, from GIS_WAL_ARCHIVE_DIR.

Segments are gzipped into ``<dir>/wal/`` (a segment closed early by archive_timeout is mostly
zeros and shrinks to almost nothing), written under a temporary name, synced and renamed, so
a crash never leaves a half segment under the real name. An existing segment is accepted
only when identical, as PostgreSQL's documentation asks of an archive_command (§26.3.1).
"""

from __future__ import annotations

import re
from pathlib import Path

from gis_service.config import Settings

# Changes wait at most this long in an unfinished segment before it is archived.
ARCHIVE_TIMEOUT_SECONDS = 300
_UNSAFE = re.compile(r"""["'$`\\%\n]""")


def wal_dir(archive_root: Path) -> Path:
    """Where archived WAL segments go."""
    return archive_root / "wal"


def base_dir(archive_root: Path) -> Path:
    """Where base backups go."""
    return archive_root / "base"


def check_path(path: Path) -> Path:
    """The archive folder as an absolute path that is safe inside a shell command."""
    path = path.expanduser().absolute()
    if _UNSAFE.search(str(path)):
        raise ValueError(
            f"GIS_WAL_ARCHIVE_DIR={path} contains a quote, $, `, \\\\ or %; choose a plain path."
        )
    return path


def archive_command(archive_root: Path) -> str:
    """The shell command PostgreSQL runs for each finished WAL file (%p path, %f name)."""
    d = wal_dir(check_path(archive_root))
    target = f'"{d}/%f.gz"'
    return (
        f'if test -f {target}; then gzip -dc {target} | cmp -s - "%p"; exit $?; fi; '
        f'gzip -3 -c "%p" > "{d}/%f.gz.part" && sync "{d}/%f.gz.part" '
        f'&& mv "{d}/%f.gz.part" {target} && sync "{d}"'
    )


def restore_command(archive_root: Path) -> str:
    """The shell command recovery runs to fetch a WAL file; fails when it is not archived."""
    d = wal_dir(check_path(archive_root))
    return f'test -f "{d}/%f.gz" && gzip -dc "{d}/%f.gz" > "%p"'


def quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


def archive_conf(settings: Settings) -> dict[str, str]:
    """postgresql.conf settings for WAL archiving (archive_mode off when the setting is unset)."""
    if settings.wal_archive_dir is None or settings.database_url:
        return {"archive_mode": "off"}
    root = check_path(settings.wal_archive_dir)
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": quote(archive_command(root)),
        "archive_timeout": str(ARCHIVE_TIMEOUT_SECONDS),
    }


def archive_dirs(settings: Settings) -> list[Path]:
    """Folders the server itself writes to when archiving."""
    if settings.wal_archive_dir is None or settings.database_url:
        return []
    root = check_path(settings.wal_archive_dir)
    return [root, wal_dir(root)]
