"""Streaming replicas of the embedded cluster, made with pg_basebackup -R (PostgreSQL's own
physical replication), on the same machine over Unix sockets, to try replicas and failover.

A replica lives under ``$GIS_DATA_DIR/replicas/NAME`` (a Cluster of its own, with its own
socket folder) and follows the primary through a replication slot named ``gis_NAME``, so
the primary keeps the WAL the replica still needs. Reads reach it through GIS_REPLICA_URLS.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import psycopg2

from gis_service.db.cluster import Cluster, ClusterError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def slot_name(name: str) -> str:
    """The replication slot on the primary that keeps WAL for replica ``name``."""
    return f"gis_{name}"


def replica_cluster(primary: Cluster, data_path: Path, name: str) -> Cluster:
    """The Cluster object of replica ``name`` (it may not exist yet)."""
    if not NAME.match(name):
        raise ClusterError(
            f"Replica name {name!r} must be lower-case letters, digits and _ (up to 31)."
        )
    return Cluster(data_path / "replicas" / name, db_name=primary.db_name, pg_bin=primary.pg_bin)


def list_replicas(primary: Cluster, data_path: Path) -> list[tuple[str, Cluster]]:
    """Every replica made under this data folder, by name."""
    folder = data_path / "replicas"
    if not folder.exists():
        return []
    return [
        (p.name, replica_cluster(primary, data_path, p.name))
        for p in sorted(folder.iterdir())
        if NAME.match(p.name)
    ]


def add_replica(primary: Cluster, data_path: Path, name: str) -> Cluster:
    """Copy the running primary with pg_basebackup -R into a new replica, and start it.

    -R writes standby.signal and primary_conninfo (the primary's socket), -C -S creates the
    replication slot, -X stream copies the WAL written meanwhile, so the replica starts
    consistent and then streams.
    """
    if primary.status() != "running":
        raise ClusterError("The primary is not running; start it first (gis-service pg start).")
    replica = replica_cluster(primary, data_path, name)
    if replica.initialised:
        raise ClusterError(f"Replica {name} already exists in {replica.home}.")
    replica._prepare_home()
    replica._ensure_socket_dir()
    replica._run(
        [
            str(primary.bin_dir / "pg_basebackup"),
            "-D",
            str(replica.pgdata),
            "-h",
            str(primary.socket_dir),
            "-p",
            "5432",
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-C",
            "-S",
            slot_name(name),
            "--checkpoint=fast",
        ]
    )
    conf = {
        # Its own socket folder; everything else (fsync, listen_addresses = '') as the
        # primary's, copied with the data folder.
        "unix_socket_directories": f"'{replica.socket_dir}'",
        # A long read on the replica is not cancelled by the WAL it is replaying, and the
        # primary keeps the rows such a read still sees.
        "hot_standby_feedback": "on",
        "max_standby_streaming_delay": "30s",
    }
    with open(replica.pgdata / "postgresql.conf", "a") as fh:
        fh.write(
            f"\n# gis-service replica {name}\n" + "".join(f"{k} = {v}\n" for k, v in conf.items())
        )
    replica.start()
    return replica


def replica_url(replica: Cluster) -> str:
    """The URL to put in GIS_REPLICA_URLS for this replica."""
    return f"postgresql://postgres@/{replica.db_name}?host={replica.socket_dir}&port=5432"


def promote(replica: Cluster) -> None:
    """Make the replica a primary (after the old primary is gone): pg_ctl promote."""
    if replica.status() != "running":
        raise ClusterError("The replica is not running; start it first.")
    replica._run([str(replica.bin_dir / "pg_ctl"), "-D", str(replica.pgdata), "-w", "promote"])


def remove_replica(primary: Cluster, data_path: Path, name: str) -> None:
    """Stop and delete a replica and drop its slot on the primary (so WAL is not kept)."""
    replica = replica_cluster(primary, data_path, name)
    with contextlib.suppress(ClusterError):
        replica.stop("immediate")
    if primary.status() == "running":
        conn = psycopg2.connect(primary.dsn("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    (slot_name(name),),
                )
        finally:
            conn.close()
    home = replica.home
    shutil.rmtree(home, ignore_errors=True)
    if replica.root.is_symlink():
        replica.root.unlink()
    elif replica.root.exists():
        shutil.rmtree(replica.root, ignore_errors=True)
