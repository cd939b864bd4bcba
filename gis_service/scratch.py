"""Scratch folders of imports and exports, under ``<data>/tmp``.

An upload or an export file must sit on disk while GDAL reads or writes it. Each gets a
folder named after the process that made it, removed when the work ends, fails or the
response has been sent; a process that was killed leaves its folders behind, and the next
start removes every folder whose process is gone (a worker never removes a live sibling's).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gis_service.config import Settings

_OWNED = re.compile(r"^[a-z]+-(\d+)-")
# A file name kept from an upload: its last component, at most this long (a name beyond the
# file system's limit of 255 bytes used to fail with a 500).
MAX_NAME_CHARS = 100


def root(settings: Settings) -> Path:
    """Where scratch folders live."""
    return settings.data_path / "tmp"


def new_folder(settings: Settings, kind: str) -> Path:
    """A fresh scratch folder for ``kind`` (import, export); the caller removes it."""
    base = root(settings)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=base))


@contextmanager
def folder(settings: Settings, kind: str) -> Iterator[Path]:
    """A scratch folder removed when the block ends, however it ends."""
    path = new_folder(settings, kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean(settings: Settings) -> int:
    """Remove the folders of processes that no longer run; how many were removed."""
    base = root(settings)
    if not base.is_dir():
        return 0
    removed = 0
    for entry in base.iterdir():
        owner = _OWNED.match(entry.name)
        if owner is None or _alive(int(owner.group(1))):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def safe_name(raw: str | None, default: str = "upload") -> str:
    """An uploaded file's name, fit to create in a scratch folder: its last path component,
    never '.', '..' or hidden, at most MAX_NAME_CHARS characters with its extension kept."""
    name = Path((raw or "").replace("\\", "/")).name.strip().lstrip(".")
    if not name:
        return default
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:20] if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(ext) - 1] + (f".{ext}" if ext else "")
    return name
