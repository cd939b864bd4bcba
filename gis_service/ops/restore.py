"""``gis-service restore ARCHIVE``: bring a backup back and prove it came back whole.

Steps: read the manifest; refuse a database (or photo folder) that holds data unless
``force``; extract every member into a staging folder checking its SHA-256; pg_restore the
dump; recompute every table's row count and checksum and compare them with the manifest;
only then move the photos into place (what was there is kept aside, never deleted).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from psycopg2 import sql as pgsql

from gis_service.config import Settings
from gis_service.ops import sql
from gis_service.ops.backup import (
    DUMP,
    MANIFEST,
    PHOTO_SUMS,
    Log,
    expected_members,
    photo_roots,
    read_manifest,
    table_stats,
)
from gis_service.ops.files import CHUNK, fsync_dir, sha256_file
from gis_service.ops.pgtools import Database, OpsError, database_for, run_tool


def user_tables(db: Database) -> list[str]:
    """The tables of ours in the database (empty list: an empty database)."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.USER_TABLES)
            return [f"{s}.{t}" for s, t in cur.fetchall()]
    finally:
        conn.close()


def _non_empty(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _safe_path(staging: Path, name: str) -> Path:
    """Where a member goes; refuses absolute names and '..' (a crafted archive)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise OpsError(f"archive member {name!r} has an unsafe path; refusing the archive.")
    return staging.joinpath(*parts)


def _extract(archive: Path, manifest: dict[str, Any], staging: Path) -> int:
    """Extract every member into ``staging``, checking each SHA-256; return the count."""
    import hashlib

    expected = expected_members(archive, manifest)
    seen: set[str] = set()
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            if member.name in (MANIFEST, PHOTO_SUMS):
                continue
            want = expected.get(member.name)
            if want is None or not member.isfile():
                raise OpsError(f"{archive.name}: member {member.name} is not in the manifest.")
            target = _safe_path(staging, member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            src = tar.extractfile(member)
            with open(target, "wb") as out:
                while chunk := src.read(CHUNK):  # type: ignore[union-attr]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != want:
                raise OpsError(f"{archive.name}: {member.name} is damaged (checksum differs).")
            seen.add(member.name)
    missing = sorted(set(expected) - seen - {PHOTO_SUMS})
    if missing:
        raise OpsError(f"{archive.name} lacks {len(missing)} member(s), e.g. {missing[:3]}.")
    return len(seen)


def _wipe(db: Database, settings: Settings) -> None:
    """Empty the target database (``--force``)."""
    if db.cluster is not None:
        db.cluster.drop_database(db.name)
        db.cluster.ensure_database(db.name)
        return
    conn = db.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' "
                "AND nspname NOT IN ('information_schema', 'public')"
            )
            for (schema,) in cur.fetchall():
                cur.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))
            cur.execute("DROP SCHEMA public CASCADE")
            cur.execute("CREATE SCHEMA public")
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    finally:
        conn.close()


def _pg_restore(db: Database, settings: Settings, dump: Path, staging: Path) -> None:
    bin_dir = db.bin_dir(settings)
    env = db.env()
    toc = run_tool([bin_dir / "pg_restore", "--list", dump], env, "pg_restore --list")
    # Comments on extensions need their owner (a superuser) and carry nothing of ours.
    kept = [line for line in toc.splitlines() if " COMMENT - EXTENSION " not in line]
    listing = staging / "restore.list"
    listing.write_text("\n".join(kept) + "\n")
    jobs = max(1, min(4, os.cpu_count() or 1))
    run_tool(
        [
            bin_dir / "pg_restore",
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            f"--jobs={jobs}",
            f"--use-list={listing}",
            f"--dbname={env['PGDATABASE']}",
            dump,
        ],
        env,
        "pg_restore",
    )
    conn = db.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE")  # fresh statistics: the planner knows nothing after a restore
    finally:
        conn.close()


def _compare(db: Database, manifest: dict[str, Any]) -> dict[str, Any]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            actual = table_stats(cur)
    finally:
        conn.close()
    expected = manifest["tables"]
    wrong = {
        name: {"expected": want, "found": actual.get(name)}
        for name, want in expected.items()
        if actual.get(name) != want
    }
    extra = sorted(set(actual) - set(expected))
    if wrong or extra:
        raise OpsError(
            f"the restored database differs from the manifest in {len(wrong)} table(s) "
            f"{sorted(wrong)[:5]}{' and has extra tables ' + str(extra[:5]) if extra else ''}; "
            "do not use it (restore again with --force from another archive)."
        )
    return actual


def _place(src: Path, dst: Path, stamp: str, log: Log) -> None:
    """Move a restored folder into place; keep whatever was there aside."""
    if dst.exists():
        if not _non_empty(dst):
            dst.rmdir()
        else:
            aside = dst.with_name(f"{dst.name}.before-restore-{stamp}")
            dst.rename(aside)
            log(f"kept the previous {dst.name} folder as {aside}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))
    fsync_dir(dst.parent)


def _same_tree(a: Path, b: Path) -> bool:
    def listing(root: Path) -> dict[str, str]:
        if not root.is_dir():
            return {}
        return {
            p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file()
        }

    return listing(a) == listing(b)


def restore(
    settings: Settings, archive: Path, force: bool = False, log: Log = lambda _: None
) -> dict[str, Any]:
    """Restore ``archive`` into the service's database and data folder; verify it."""
    t_start = time.perf_counter()
    archive = archive.expanduser().absolute()
    manifest = read_manifest(archive)
    db = database_for(settings)
    present = user_tables(db)
    if present and not force:
        raise OpsError(
            f"{db.label} (database {db.name}) is not empty: it has {len(present)} tables, "
            f"e.g. {present[:3]}. Restore into an empty data folder or database, or add "
            "--force to replace it (its data will be dropped)."
        )
    for _, folder in photo_roots(settings):
        if manifest["photos"]["files"] and _non_empty(folder) and not force:
            raise OpsError(
                f"{folder} already holds files; restore into an empty data folder or add "
                "--force (the folder is kept aside, not deleted)."
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    staging = settings.data_path / f".restore-{stamp}"
    staging.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, 0o700)
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        log(f"checking and extracting {archive.name} …")
        members = _extract(archive, manifest, staging)
        timings["extract"] = time.perf_counter() - t0
        if present:
            log(f"--force: dropping the {len(present)} tables of {db.name}")
            _wipe(db, settings)
        t1 = time.perf_counter()
        log(f"restoring the database into {db.label} …")
        _pg_restore(db, settings, staging / DUMP, staging)
        timings["pg_restore"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        actual = _compare(db, manifest)
        timings["verify"] = time.perf_counter() - t2
        for prefix, folder in photo_roots(settings):
            if (staging / prefix).is_dir():
                _place(staging / prefix, folder, stamp, log)
        layers_note = "same as the layers/ in force"
        if not _same_tree(staging / "layers", settings.layers_dir):
            kept = settings.data_path / f"layers-from-backup-{stamp}"
            shutil.move(str(staging / "layers"), str(kept))
            layers_note = (
                f"differs from {settings.layers_dir}; the archived catalogue is in {kept} "
                f"(run with GIS_LAYERS_DIR={kept} to use it)"
            )
            log(f"layers/: {layers_note}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "archive": str(archive),
        "database": db.label,
        "created_at": manifest["created_at"],
        "members": members,
        "tables": len(actual),
        "rows": sum(t["rows"] for t in actual.values()),
        "photos": manifest["photos"]["files"],
        "schema_revision": manifest["database"]["schema_revision"],
        "layers": layers_note,
        "seconds": round(time.perf_counter() - t_start, 2),
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
