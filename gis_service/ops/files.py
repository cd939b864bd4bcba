"""Durable file writes: fsync a file and its folder, checksum files, take a folder lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Make ``tmp`` appear as ``final`` atomically and durably: fsync, rename, fsync folder."""
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class HashingReader:
    """Wraps a binary file; hashes and counts what is read through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.hash = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        """Read, hashing on the way."""
        data = self.fh.read(size)
        self.hash.update(data)
        self.bytes += len(data)
        return data


@contextlib.contextmanager
def folder_lock(folder: Path, name: str) -> Iterator[None]:
    """An exclusive lock on ``folder/name`` for the time of the block (other processes wait)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tree_size(path: Path) -> int:
    """Bytes of every file under ``path`` (0 when it does not exist)."""
    total = 0
    if not path.exists():
        return 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
