"""An embedded PostgreSQL + PostGIS cluster kept under the data folder.

The service starts it when no DATABASE_URL is given, and the tests start a throwaway one
with the very same code. It listens on a Unix socket only (listen_addresses = ''), in a
folder of mode 0700, so only its owner (and root) can connect.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

# A Unix socket path is limited to 107 bytes (sun_path); beyond that we use a short folder.
_MAX_SOCKET_PATH = 100
_SOCKET_NAME = ".s.PGSQL.5432"
_FALLBACK_ROOT = Path("/var/lib/gis-service/clusters")
_INSTALL_HINT = "apt-get install postgresql-15 postgresql-15-postgis-3"
RUNTIME_CONF = "gis-service.runtime.conf"


class ClusterError(RuntimeError):
    """A problem with the embedded cluster that the user can fix; the message says how."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))


def find_pg_bin(preferred: Path | None = None, version: str | None = None) -> Path:
    """Find the folder holding initdb and pg_ctl, preferring a version that has PostGIS."""
    if preferred is not None:
        if (preferred / "pg_ctl").exists():
            return preferred
        raise ClusterError(f"GIS_PG_BIN={preferred} holds no pg_ctl; point it at PostgreSQL's bin.")
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=_version_key,
        reverse=True,
    )
    if version:
        candidates = [p for p in candidates if p.parent.name == version] or candidates
    with_postgis = [c for c in candidates if _postgis_control(c.parent.name).exists()]
    if with_postgis:
        return with_postgis[0]
    if candidates:
        return candidates[0]
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).resolve().parent
    raise ClusterError(
        f"PostgreSQL server programs (initdb, pg_ctl) not found. Install: {_INSTALL_HINT}"
    )


def _postgis_control(major: str) -> Path:
    return Path(f"/usr/share/postgresql/{major}/extension/postgis.control")


@dataclass
class Cluster:
    """A cluster under ``root``: ``root/data``, ``root/run`` and ``root/postgres.log``."""

    root: Path
    db_name: str = "gis"
    pg_bin: Path | None = None
    extra_conf: dict[str, str] = field(default_factory=dict)
    # Settings written to RUNTIME_CONF at every start (WAL archiving, recovery): unlike
    # extra_conf, which initdb writes once, they follow the settings of the process starting it.
    runtime_conf: dict[str, str] = field(default_factory=dict)
    # Folders the server writes to (the WAL archive): made and given to its user at start.
    runtime_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().absolute()

    # -- who runs it ----------------------------------------------------------------------
    @property
    def run_as_root_user(self) -> bool:
        """PostgreSQL refuses to run as root, so root runs it as the ``postgres`` user."""
        return os.geteuid() == 0

    @property
    def _user(self) -> pwd.struct_passwd:
        if not self.run_as_root_user:
            return pwd.getpwuid(os.geteuid())
        try:
            return pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ClusterError(
                f"Running as root needs the 'postgres' system user; install: {_INSTALL_HINT}"
            ) from exc

    def _run(self, args: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        user = self._user
        opts: dict = {"capture_output": True, "text": True, "cwd": str(self.home)}
        if self.run_as_root_user:
            opts.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            opts["env"] = {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name}
        opts.update(kw)
        proc = subprocess.run(args, check=False, **opts)
        if check and proc.returncode != 0:
            raise ClusterError(
                f"{Path(args[0]).name} failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        return proc

    # -- where it lives -------------------------------------------------------------------
    @property
    def home(self) -> Path:
        """The real folder of the cluster (``root`` itself, or where its symlink points)."""
        return self.root.resolve() if self.root.is_symlink() else self.root

    @property
    def pgdata(self) -> Path:
        """PGDATA."""
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.home / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """The folder of the Unix socket; a short one under /tmp if the path would be too long."""
        preferred = self.home / "run"
        if len(str(preferred / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        return Path("/tmp") / f"gis-pg-{digest}"

    @property
    def bin_dir(self) -> Path:
        """PostgreSQL's programs, matching the version the cluster was made with."""
        version_file = self.pgdata / "PG_VERSION"
        version = version_file.read_text().strip() if version_file.exists() else None
        return find_pg_bin(self.pg_bin, version)

    def _reachable_by_user(self, path: Path) -> bool:
        probe = path
        while not probe.exists():
            probe = probe.parent
        user = self._user
        proc = subprocess.run(
            ["test", "-x", str(probe), "-a", "-w", str(probe)],
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            check=False,
            cwd="/",
        )
        return proc.returncode == 0

    def _prepare_home(self) -> None:
        """Make the cluster folder, owned by the server's user and reachable by it."""
        if self.root.exists() or self.root.is_symlink():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if self.run_as_root_user and not self._reachable_by_user(self.root.parent):
            # The checkout may sit under a private home (/root is 0700): keep the cluster where
            # the postgres user can reach it, and leave a symlink where the user looks for it.
            digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
            target = _FALLBACK_ROOT / digest
            if target.exists():
                # The symlink was deleted (say, rm -rf var), which means "start afresh"; keep
                # the old cluster aside rather than silently reusing or destroying it, and
                # stop it first if it still runs (its socket would clash with the new one).
                old = Cluster(target, pg_bin=self.pg_bin)
                if old.initialised and old.status() == "running":
                    old._run(
                        [
                            str(old.bin_dir / "pg_ctl"),
                            "-D",
                            str(old.pgdata),
                            "-m",
                            "fast",
                            "-w",
                            "stop",
                        ]
                    )
                target.rename(target.with_name(f"{digest}.orphaned-{int(time.time())}"))
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(_FALLBACK_ROOT.parent, 0o755)
            os.chmod(_FALLBACK_ROOT, 0o755)
            self.root.symlink_to(target, target_is_directory=True)
        else:
            self.root.mkdir()
        home = self.home
        home.mkdir(exist_ok=True)
        user = self._user
        os.chown(home, user.pw_uid, user.pw_gid)
        os.chmod(home, 0o700)

    def _ensure_socket_dir(self) -> None:
        sock = self.socket_dir
        sock.mkdir(parents=True, exist_ok=True)
        user = self._user
        os.chown(sock, user.pw_uid, user.pw_gid)
        os.chmod(sock, 0o700)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise init/start/stop between processes sharing this cluster."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.root.parent / f".{self.root.name}.lock"
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- life cycle -----------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """True once initdb has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def status(self) -> str:
        """``absent``, ``stopped`` or ``running``."""
        if not self.initialised:
            return "absent"
        proc = self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "status"], False)
        return "running" if proc.returncode == 0 else "stopped"

    def init(self) -> None:
        """Run initdb once, with settings for a local, crash-safe server."""
        self._prepare_home()
        if self.initialised:
            return
        major = self.bin_dir.parent.name
        if major.isdigit() and not _postgis_control(major).exists():
            raise ClusterError(
                f"PostGIS is not installed for PostgreSQL {major}. "
                f"Install it with: apt-get install postgresql-{major}-postgis-3"
            )
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        conf = {
            # Unix socket only; the socket folder is 0700 so trust auth admits only its owner.
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            # Crash safety: kill -9 must lose nothing committed, so these stay at their safe values.
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "shared_buffers": "256MB",
            "work_mem": "32MB",
            "maintenance_work_mem": "256MB",
            "random_page_cost": "1.1",
            # JIT compiles cost more than short spatial queries take.
            "jit": "off",
            "max_connections": "100",
            "timezone": "'UTC'",
            **self.extra_conf,
        }
        lines = "".join(f"{k} = {v}\n" for k, v in conf.items())
        conf_path = self.pgdata / "postgresql.conf"
        with open(conf_path, "a") as fh:
            fh.write("\n# gis-service embedded cluster\n" + lines)

    def write_runtime_conf(self) -> None:
        """Write runtime_conf where postgresql.conf includes it (read at the next start)."""
        conf_path = self.pgdata / "postgresql.conf"
        include = f"include_if_exists = '{RUNTIME_CONF}'\n"
        if include not in conf_path.read_text():
            with open(conf_path, "a") as fh:
                fh.write(include)
        path = self.pgdata / RUNTIME_CONF
        path.write_text("".join(f"{k} = {v}\n" for k, v in self.runtime_conf.items()))
        user = self._user
        os.chown(path, user.pw_uid, user.pw_gid)
        for folder in self.runtime_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, user.pw_uid, user.pw_gid)
            os.chmod(folder, 0o700)
            if self.run_as_root_user and not self._reachable_by_user(folder):
                raise ClusterError(
                    f"The postgres user cannot write to {folder}; choose a folder outside "
                    "private homes (such as /root) for it."
                )

    def start(self) -> bool:
        """Init if needed and start; return False if it was already running (then reuse it)."""
        with self._lock():
            self.init()
            self._ensure_socket_dir()
            if self.status() == "running":
                return False
            self.write_runtime_conf()
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            )
        return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server cleanly; return False if it was not running."""
        with self._lock():
            if self.status() != "running":
                return False
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"]
            )
        return True

    def pid(self) -> int | None:
        """The postmaster's process id, or None."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    # -- databases ------------------------------------------------------------------------
    def dsn(self, db_name: str | None = None) -> str:
        """A libpq DSN for psycopg2."""
        return f"host={self.socket_dir} port=5432 user=postgres dbname={db_name or self.db_name}"

    def url(self, db_name: str | None = None) -> str:
        """A SQLAlchemy URL for a database of this cluster."""
        return (
            f"postgresql+psycopg2://postgres@/{db_name or self.db_name}"
            f"?host={self.socket_dir}&port=5432"
        )

    def ensure_database(self, db_name: str | None = None) -> str:
        """Create the database and the PostGIS extension if missing; return its URL."""
        name = db_name or self.db_name
        conn = psycopg2.connect(self.dsn("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
                if cur.fetchone() is None:
                    cur.execute("SHOW server_version_num")
                    major = int(cur.fetchone()[0]) // 10000
                    raise ClusterError(
                        f"PostGIS is not installed for PostgreSQL {major}. "
                        f"Install it with: apt-get install postgresql-{major}-postgis-3"
                    )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        conn = psycopg2.connect(self.dsn(name))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, db_name: str) -> None:
        """Drop a database (used for throwaway test databases)."""
        conn = psycopg2.connect(self.dsn("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(db_name)
                    )
                )
        finally:
            conn.close()

    def destroy(self) -> None:
        """Stop and delete the whole cluster (for throwaway test clusters)."""
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        home = self.home
        shutil.rmtree(home, ignore_errors=True)
        if self.root.is_symlink():
            self.root.unlink()
        sock = self.socket_dir
        if sock.parent == Path("/tmp"):
            shutil.rmtree(sock, ignore_errors=True)
