"""Point-in-time recovery of the embedded cluster: base backups, and ``restore --until``.

With GIS_WAL_ARCHIVE_DIR set, the cluster archives every finished WAL segment (walconf.py).
A base backup (pg_basebackup, with the WAL needed to make it consistent) is the starting
point; recovery replays archived WAL, then the WAL still in the old data folder's pg_wal
(not yet archived, PostgreSQL documentation §26.3.4 step 7), up to ``recovery_target_time``,
and promotes. The data folder it replaces is kept aside, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

from gis_service.config import Settings
from gis_service.db.cluster import Cluster, ClusterError
from gis_service.db.engine import cluster_for
from gis_service.ops.backup import Log
from gis_service.ops.files import fsync_dir, tree_size
from gis_service.ops.localtime import parse_local
from gis_service.ops.pgtools import OpsError, run_tool
from gis_service.ops.walconf import base_dir, check_path, quote, restore_command, wal_dir

_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
INFO = "info.json"


def _require(settings: Settings) -> tuple[Cluster, Path]:
    if settings.database_url:
        raise OpsError(
            "Point-in-time recovery covers the embedded cluster; with DATABASE_URL use the "
            "database server's own archiving (or restore a `gis-service backup` archive)."
        )
    if settings.wal_archive_dir is None:
        raise OpsError(
            "Set GIS_WAL_ARCHIVE_DIR (in the environment or .env) to a folder on another disk, "
            "restart the service, and take a base backup: `gis-service pitr base-backup`."
        )
    return cluster_for(settings), check_path(settings.wal_archive_dir)


def _query(cluster: Cluster, statement: str) -> Any:
    conn = psycopg2.connect(cluster.dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()
    finally:
        conn.close()


def base_backups(root: Path) -> list[dict[str, Any]]:
    """Complete base backups, oldest first (a folder counts once its info.json exists)."""
    out = []
    folder = base_dir(root)
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        info = path / INFO
        if path.is_dir() and info.is_file():
            out.append({**json.loads(info.read_text()), "path": str(path)})
    return out


def base_backup(settings: Settings, log: Log = lambda _: None) -> dict[str, Any]:
    """pg_basebackup into <archive>/base/<UTC time>/ (tar format, WAL streamed alongside)."""
    cluster, root = _require(settings)
    try:
        cluster.start()
        cluster.ensure_database()
    except ClusterError as exc:
        raise OpsError(str(exc)) from exc
    mode = _query(cluster, "SHOW archive_mode")[0]
    if mode != "on":
        raise OpsError(
            "WAL archiving is configured but the running server has archive_mode off: restart it "
            "(`gis-service pg stop`, then start the service) and take the base backup again."
        )
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    target = base_dir(root) / stamp
    partial = base_dir(root) / f".{stamp}.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    first_wal = _query(cluster, "SELECT pg_walfile_name(pg_current_wal_lsn())")[0]
    t0 = time.perf_counter()
    log(f"base backup of {cluster.home} into {target} …")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    run_tool(
        [
            cluster.bin_dir / "pg_basebackup",
            "-h",
            cluster.socket_dir,
            "-U",
            "postgres",
            "-D",
            partial,
            "--format=tar",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--compress=client-lz4",
        ],
        env,
        "pg_basebackup",
    )
    # The backup is consistent from its end on; recovery targets must lie after it.
    finished = datetime.now(UTC)
    info = {
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "first_wal": first_wal,
        "bytes": tree_size(partial),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (partial / INFO).write_text(json.dumps(info, indent=1))
    for path in partial.iterdir():
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    partial.rename(target)
    fsync_dir(target.parent)
    return {**info, "path": str(target)}


def status(settings: Settings) -> dict[str, Any]:
    """Archiving on or off, base backups, archived WAL and the recoverable window."""
    cluster, root = _require(settings)
    bases = base_backups(root)
    segments = sorted(p.name for p in wal_dir(root).glob("*.gz")) if wal_dir(root).is_dir() else []
    out: dict[str, Any] = {
        "archive": str(root),
        "base_backups": bases,
        "wal_files": len(segments),
        "wal_bytes": tree_size(wal_dir(root)),
        "recover_from": bases[0]["finished_at"] if bases else None,
    }
    if cluster.status() == "running":
        mode, archived, last_time, failed = _query(
            cluster,
            "SELECT current_setting('archive_mode'), archived_count, last_archived_time, "
            "failed_count FROM pg_stat_archiver",
        )
        out.update(
            archive_mode=mode,
            archived_count=archived,
            last_archived_at=last_time.isoformat() if last_time else None,
            failed_count=failed,
        )
    return out


def prune(settings: Settings, keep: int, log: Log = lambda _: None) -> dict[str, Any]:
    """Keep the newest ``keep`` base backups and the WAL from the oldest kept one on."""
    _, root = _require(settings)
    bases = base_backups(root)
    doomed = bases[: max(0, len(bases) - keep)]
    for base in doomed:
        shutil.rmtree(base["path"])
        log(f"deleted base backup {base['path']}")
    removed = 0
    kept = bases[len(doomed) :]
    if kept:
        oldest = kept[0]["first_wal"]
        for path in wal_dir(root).glob("*.gz"):
            name = path.name[:-3]
            # Segments sort by name within a timeline; history files are always kept.
            if _SEGMENT.match(name[:24]) and name[:24] < oldest and not name.endswith(".history"):
                path.unlink()
                removed += 1
    return {"deleted_base_backups": [b["path"] for b in doomed], "deleted_wal_files": removed}


# ---- recovery ------------------------------------------------------------------------------------
def _chown_tree(path: Path, cluster: Cluster) -> None:
    user = cluster._user
    for dirpath, _, filenames in os.walk(path):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def _extract_base(base: Path, pgdata: Path, cluster: Cluster) -> None:
    """Unpack base.tar(.lz4) and pg_wal.tar(.lz4) into a fresh PGDATA."""
    pgdata.mkdir(mode=0o700)
    for name, dest in (("base.tar", pgdata), ("pg_wal.tar", pgdata / "pg_wal")):
        plain, packed = base / name, base / f"{name}.lz4"
        dest.mkdir(exist_ok=True, mode=0o700)
        if packed.exists():
            with subprocess.Popen(["lz4", "-dc", str(packed)], stdout=subprocess.PIPE) as proc:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    tar.extractall(dest, filter="fully_trusted")
                if proc.wait() != 0:
                    raise OpsError(f"could not decompress {packed}")
        elif plain.exists():
            with tarfile.open(plain, "r:") as tar:
                tar.extractall(dest, filter="fully_trusted")
        else:
            raise OpsError(f"{base} has neither {name} nor {name}.lz4; the base backup is damaged.")
    os.chmod(pgdata, 0o700)
    _chown_tree(pgdata, cluster)


def _copy_unarchived_wal(old_wal: Path, new_wal: Path, cluster: Cluster) -> int:
    """Copy the old cluster's WAL files that recovery may still need (the newest are not
    archived yet); files restored from the base backup are left as they are."""
    n = 0
    if not old_wal.is_dir():
        return 0
    for path in old_wal.iterdir():
        if path.is_file() and (_SEGMENT.match(path.name) or path.name.endswith(".history")):
            dest = new_wal / path.name
            if not dest.exists():
                shutil.copy2(path, dest)
                n += 1
    _chown_tree(new_wal, cluster)
    return n


def _wait_promoted(cluster: Cluster, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.status() != "running":
            raise OpsError("the server stopped during recovery")
        try:
            if _query(cluster, "SELECT pg_is_in_recovery()")[0] is False:
                return
        except psycopg2.OperationalError:
            pass
        time.sleep(0.3)
    raise OpsError(f"recovery did not finish within {timeout:.0f} s")


def _log_tail(cluster: Cluster, lines: int = 12) -> str:
    try:
        return "\n".join(cluster.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def recover(settings: Settings, until: str, log: Log = lambda _: None) -> dict[str, Any]:
    """Recover the embedded cluster to ``until`` (local time of the office unless an offset is
    given); the replaced data folder is kept as pg/data.before-recovery-<time>."""
    cluster, root = _require(settings)
    target = parse_local(until, settings.local_timezone)
    target_utc = target.astimezone(UTC)
    if target_utc > datetime.now(UTC):
        raise OpsError(f"{until} ({target_utc.isoformat()}) is in the future.")
    candidates = [
        b for b in base_backups(root) if datetime.fromisoformat(b["finished_at"]) < target_utc
    ]
    if not candidates:
        raise OpsError(
            f"no base backup finished before {target.isoformat()}; the earliest time this "
            "archive can recover to is shown by `gis-service pitr status` (recover_from)."
        )
    base = Path(candidates[-1]["path"])
    t0 = time.perf_counter()
    if cluster.status() == "running":
        log("stopping the cluster (the service loses its database until recovery ends) …")
    try:
        cluster.stop()
    except ClusterError as exc:
        raise OpsError(str(exc)) from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    pgdata = cluster.pgdata
    aside = pgdata.with_name(f"data.before-recovery-{stamp}")
    pgdata.rename(aside)
    steady = dict(cluster.runtime_conf)
    try:
        log(f"restoring base backup {base.name} …")
        _extract_base(base, pgdata, cluster)
        copied = _copy_unarchived_wal(aside / "pg_wal", pgdata / "pg_wal", cluster)
        (pgdata / "recovery.signal").touch()
        os.chown(pgdata / "recovery.signal", cluster._user.pw_uid, cluster._user.pw_gid)
        recovery = {
            "restore_command": quote(restore_command(root)),
            "recovery_target_time": quote(target_utc.isoformat()),
            "recovery_target_action": "'promote'",
            "recovery_target_timeline": "'latest'",
        }
        cluster.runtime_conf = {**steady, **recovery}
        log(f"replaying WAL up to {target.isoformat()} ({target_utc.isoformat()}) …")
        try:
            cluster.start()
            _wait_promoted(cluster)
        except (ClusterError, OpsError) as exc:
            raise OpsError(f"recovery failed: {exc}\n{_log_tail(cluster)}") from exc
        # Recovery is over: drop its settings so the next start is an ordinary one.
        cluster.runtime_conf = steady
        cluster.write_runtime_conf()
        _query(cluster, "SELECT pg_reload_conf()")
    except BaseException:
        # Put the old data folder back so the office is not left without a database.
        with_failure = pgdata.with_name(f"data.failed-recovery-{stamp}")
        with contextlib.suppress(ClusterError):
            cluster.stop("immediate")
        if pgdata.exists():
            pgdata.rename(with_failure)
        aside.rename(pgdata)
        cluster.runtime_conf = steady
        cluster.start()
        raise
    return {
        "recovered_to": target.isoformat(),
        "recovered_to_utc": target_utc.isoformat(),
        "time_zone": settings.local_timezone,
        "base_backup": str(base),
        "wal_copied_from_old_folder": copied,
        "previous_data_kept_in": str(aside),
        "seconds": round(time.perf_counter() - t0, 2),
        "note": "photos are not rewound; delete the kept folder once you have checked the data",
    }
