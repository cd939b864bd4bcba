"""``gis-service backup``: one consistent, self-describing archive of everything the office keeps.

The archive is a plain tar file holding, in this order:

- ``db.dump``: the database in pg_dump's custom format;
- ``layers/…``: the facility-type and hazard-category catalogue in force;
- ``photos/…`` and ``photo-archive/…``: the photo files, with ``photos.sha256`` listing each
  one's checksum (``sha256sum -c`` reads it);
- ``manifest.json`` last: versions, every table's row count and checksum, every member's size
  and SHA-256.

Consistency: the row counts and checksums are computed in the very snapshot pg_dump dumps
(``pg_export_snapshot``), so the manifest describes exactly the dump. Photos are copied after
the snapshot; files are write-once, so every photo the dump knows is there (the manifest
names any that is not).

Durability: the archive is written under a hidden ``.partial`` name, fsynced, and only then
renamed to ``gis-backup-<UTC time>.tar`` (and the folder fsynced). A backup killed at any
point leaves at most a ``.partial`` file, which is never taken for an archive and is removed
by the next backup into the same folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg2 import sql as pgsql
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

from gis_service import __version__
from gis_service.config import Settings
from gis_service.ops import sql
from gis_service.ops.files import HashingReader, folder_lock, publish
from gis_service.ops.pgtools import Database, OpsError, database_for, tool_version

FORMAT = "gis-service-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "db.dump"
PHOTO_SUMS = "photos.sha256"
LOCK = ".gis-backup.lock"
# Only names like this are archives; anything else in the folder (a .partial) is not.
ARCHIVE_RE = re.compile(r"^gis-backup-(\d{8}T\d{6}Z)(-[a-z0-9][a-z0-9-]*)?\.tar$")

Log = Callable[[str], None]


def photo_roots(settings: Settings) -> list[tuple[str, Path]]:
    """(name in the archive, folder on disk) of the photo folders."""
    return [("photos", settings.photos_path), ("photo-archive", settings.photo_archive_path)]


def table_stats(cur: Any) -> dict[str, dict[str, Any]]:
    """Row count and checksum of every table of ours, keyed 'schema.table'."""
    cur.execute(sql.USER_TABLES)
    out: dict[str, dict[str, Any]] = {}
    for schema, name in cur.fetchall():
        query = pgsql.SQL(sql.TABLE_CHECKSUM).format(table=pgsql.Identifier(schema, name))
        cur.execute(query)
        rows, checksum = cur.fetchone()
        out[f"{schema}.{name}"] = {"rows": int(rows), "checksum": checksum}
    return out


def server_facts(cur: Any) -> dict[str, Any]:
    """PostgreSQL and PostGIS versions and the schema revision."""
    cur.execute(sql.HAS_ALEMBIC)
    has_alembic = cur.fetchone()[0]
    cur.execute(sql.SERVER_FACTS if has_alembic else sql.SERVER_FACTS_NO_ALEMBIC)
    pg, postgis, revision = cur.fetchone()
    return {"postgresql": pg, "postgis": postgis, "schema_revision": revision}


def _photo_rows(cur: Any) -> list[tuple[int, str, str | None]]:
    cur.execute("SELECT to_regclass('public.hazard_photos') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute(sql.HAS_PHOTO_ARCHIVE_COLUMN)
    cur.execute(sql.PHOTO_ROWS if cur.fetchone()[0] else sql.PHOTO_ROWS_OLD)
    return list(cur.fetchall())


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root``, sorted, so two archives of the same data list the same order."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600  # photos' originals keep EXIF and GPS: private to the backup's owner
    return info


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        reader = HashingReader(fh)
        tar.addfile(_tarinfo(name, st.st_size, st.st_mtime), reader)  # type: ignore[arg-type]
    return {"bytes": reader.bytes, "sha256": reader.hash.hexdigest()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    import hashlib

    tar.addfile(_tarinfo(name, len(data), time.time()), io.BytesIO(data))
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def archive_name(when: datetime, reason: str | None = None) -> str:
    """gis-backup-20261201T093000Z[-reason].tar"""
    suffix = ""
    if reason:
        suffix = "-" + re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")
    return f"gis-backup-{when:%Y%m%dT%H%M%SZ}{suffix}.tar"


def list_archives(folder: Path) -> list[Path]:
    """Complete archives in ``folder``, oldest first (the name carries the UTC time)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if ARCHIVE_RE.match(p.name) and p.is_file()]
    return sorted(found, key=lambda p: (ARCHIVE_RE.match(p.name).group(1), p.name))  # type: ignore[union-attr]


def prune(folder: Path, keep: int, log: Log = lambda _: None) -> list[Path]:
    """Delete all but the newest ``keep`` archives in ``folder``; return the deleted ones."""
    if keep < 1:
        raise OpsError("--keep must be at least 1: the newest backup is never deleted.")
    with folder_lock(folder, LOCK):
        archives = list_archives(folder)
        doomed = archives[: max(0, len(archives) - keep)]
        for path in doomed:
            path.unlink()
            log(f"deleted old backup {path.name}")
    return doomed


def _remove_partials(folder: Path, log: Log) -> None:
    """Leftovers of killed backups (we hold the folder's lock, so none is in progress)."""
    for path in folder.glob(".gis-backup-*.partial"):
        path.unlink(missing_ok=True)
        log(f"removed the leftover of an interrupted backup: {path.name}")


def _dump_and_describe(
    db: Database, settings: Settings, dump_path: Path
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[int, str, str | None]], dict[str, float]]:
    """pg_dump and the manifest's table statistics, both in one exported snapshot."""
    timings: dict[str, float] = {}
    bin_dir = db.bin_dir(settings)
    conn = db.connect()
    try:
        conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            t0 = time.perf_counter()
            # The snapshot lives as long as this transaction: pg_dump imports it at start.
            proc = subprocess.Popen(
                [
                    str(bin_dir / "pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={dump_path}",
                ],
                env=db.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                facts = server_facts(cur)
                tables = table_stats(cur)
                photos = _photo_rows(cur)
                timings["checksums"] = time.perf_counter() - t0
            finally:
                _, err = proc.communicate()
            timings["pg_dump"] = time.perf_counter() - t0
            if proc.returncode != 0:
                raise OpsError(f"pg_dump failed ({proc.returncode}): {err.strip()[-2000:]}")
        conn.rollback()
    finally:
        conn.close()
    facts["pg_dump"] = tool_version(bin_dir, "pg_dump")
    return facts, tables, photos, timings


def backup(
    settings: Settings,
    to: Path | None = None,
    keep: int | None = None,
    reason: str | None = None,
    log: Log = lambda _: None,
) -> dict[str, Any]:
    """Write one archive into ``to`` (default: the backup folder); return its description."""
    if keep is not None and keep < 1:
        raise OpsError("--keep must be at least 1: the newest backup is never deleted.")
    db = database_for(settings)
    folder = (to or settings.backups_path).expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with folder_lock(folder, LOCK):
        _remove_partials(folder, log)
        created = datetime.now(UTC)
        name = archive_name(created, reason)
        while (folder / name).exists():  # two backups in one second
            created = datetime.fromtimestamp(created.timestamp() + 1, UTC)
            name = archive_name(created, reason)
        final = folder / name
        tmp = folder / f".{name}.partial"
        dump_tmp = folder / f".{name}.dump.partial"
        try:
            log(f"dumping {db.label} …")
            facts, tables, photo_rows, timings = _dump_and_describe(db, settings, dump_tmp)
            t1 = time.perf_counter()
            files: dict[str, dict[str, Any]] = {}
            sums: list[str] = []
            photo_bytes = 0
            present_dirs: set[str] = set()
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                files[DUMP] = _add_file(tar, dump_tmp, DUMP)
                dump_tmp.unlink()
                layers = settings.layers_dir
                for path in _walk(layers):
                    rel = path.relative_to(layers).as_posix()
                    files[f"layers/{rel}"] = _add_file(tar, path, f"layers/{rel}")
                for prefix, root in photo_roots(settings):
                    for path in _walk(root):
                        rel = f"{prefix}/{path.relative_to(root).as_posix()}"
                        try:
                            entry = _add_file(tar, path, rel)
                        except FileNotFoundError:
                            continue  # moved by a concurrent archive run: it is in the other root
                        sums.append(f"{entry['sha256']}  {rel}")
                        photo_bytes += entry["bytes"]
                        present_dirs.add(rel.rsplit("/", 1)[0])
                files[PHOTO_SUMS] = _add_bytes(tar, PHOTO_SUMS, ("\n".join(sums) + "\n").encode())
                missing = [
                    f"{h}/{pid}"
                    for h, pid, archived in photo_rows
                    if f"photos/{h}/{pid}" not in present_dirs
                    and not (archived and f"photo-archive/{h}/{pid}" in present_dirs)
                ]
                timings["archive"] = time.perf_counter() - t1
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created_at": created.isoformat().replace("+00:00", "Z"),
                    "reason": reason,
                    "service_version": __version__,
                    "database": {"source": db.label, "name": db.name, **facts},
                    "tables": tables,
                    "files": files,
                    "photos": {
                        "files": len(sums),
                        "bytes": photo_bytes,
                        "rows": len(photo_rows),
                        "missing": len(missing),
                        "missing_sample": missing[:20],
                    },
                    "layers_dir": str(settings.layers_dir),
                    "timings": {k: round(v, 3) for k, v in timings.items()},
                }
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
            if settings.backup_pause_before_publish:
                time.sleep(settings.backup_pause_before_publish)
            publish(tmp, final)
        finally:
            dump_tmp.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
    size = final.stat().st_size
    result = {
        "archive": str(final),
        "bytes": size,
        "seconds": round(time.perf_counter() - t_start, 2),
        "tables": len(tables),
        "rows": sum(t["rows"] for t in tables.values()),
        "photos": len(sums),
        "photos_missing": len(missing),
        "schema_revision": facts["schema_revision"],
        "timings": manifest["timings"],
    }
    if missing:
        log(f"warning: {len(missing)} photo(s) known to the database have no files on disk")
    if keep:
        result["pruned"] = [p.name for p in prune(folder, keep, log)]
    return result


# ---- reading archives ------------------------------------------------------------------------
def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest of a complete archive; OpsError for anything else."""
    if not archive.is_file():
        raise OpsError(f"{archive} does not exist or is not a file.")
    if archive.name.endswith(".partial"):
        raise OpsError(f"{archive.name} is the leftover of an interrupted backup, not an archive.")
    try:
        with tarfile.open(archive, "r:") as tar:
            member = None
            for m in tar:  # the manifest is the last member: scan to it
                if m.name == MANIFEST:
                    member = m
            if member is None:
                raise OpsError(
                    f"{archive.name} has no manifest: it is incomplete (an interrupted backup?)."
                )
            fh = tar.extractfile(member)
            manifest = json.loads(fh.read())  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise OpsError(f"{archive.name} is not a readable backup archive: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise OpsError(f"{archive.name} is not a gis-service backup.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise OpsError(
            f"{archive.name} was written by a newer gis-service (format "
            f"{manifest.get('format_version')}); restore it with that release."
        )
    return manifest


def photo_sums(data: bytes) -> dict[str, str]:
    """Parse photos.sha256 (``<sha256>  <path>`` lines)."""
    out = {}
    for line in data.decode().splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            out[name] = digest
    return out


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of bytes, hex."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def expected_members(archive: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Every member's expected SHA-256: the manifest's files plus the photos' list."""
    out = {name: f["sha256"] for name, f in manifest["files"].items()}
    with tarfile.open(archive, "r:") as tar:
        member = tar.getmember(PHOTO_SUMS)
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    if sha256_bytes(data) != out[PHOTO_SUMS]:
        raise OpsError(f"{archive.name}: {PHOTO_SUMS} does not match the manifest.")
    out.update(photo_sums(data))
    return out


def verify(archive: Path) -> dict[str, Any]:
    """Check every member of an archive against its checksum; OpsError on the first fault."""
    manifest = read_manifest(archive)
    expected = expected_members(archive, manifest)
    seen = set()
    t0 = time.perf_counter()
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            if member.name in (MANIFEST, PHOTO_SUMS):
                continue
            want = expected.get(member.name)
            if want is None:
                raise OpsError(f"{archive.name}: member {member.name} is not in the manifest.")
            reader = HashingReader(tar.extractfile(member))  # type: ignore[arg-type]
            while reader.read(1024 * 1024):
                pass
            if reader.hash.hexdigest() != want:
                raise OpsError(f"{archive.name}: {member.name} is damaged (checksum differs).")
            seen.add(member.name)
    missing = sorted(set(expected) - seen - {PHOTO_SUMS})
    if missing:
        raise OpsError(f"{archive.name} lacks {len(missing)} member(s), e.g. {missing[:3]}.")
    return {
        "archive": str(archive),
        "created_at": manifest["created_at"],
        "members": len(seen),
        "tables": len(manifest["tables"]),
        "rows": sum(t["rows"] for t in manifest["tables"].values()),
        "photos": manifest["photos"]["files"],
        "schema_revision": manifest["database"]["schema_revision"],
        "seconds": round(time.perf_counter() - t0, 2),
    }
