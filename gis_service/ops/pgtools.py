"""PostgreSQL's own programs (pg_dump, pg_restore, pg_basebackup) pointed at the database
the service uses: the embedded cluster or DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from gis_service.config import Settings
from gis_service.db.cluster import Cluster, ClusterError, find_pg_bin
from gis_service.db.engine import cluster_for, resolve_url


class OpsError(RuntimeError):
    """A backup, restore or recovery problem the operator can act on; the message says how."""


# libpq variables for the URL's query parameters that matter to the tools.
_QUERY_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
}


@dataclass
class Database:
    """Where the data lives: a SQLAlchemy URL and, for the embedded default, its cluster."""

    url: str
    cluster: Cluster | None

    @property
    def label(self) -> str:
        """Where the database is, without a password."""
        if self.cluster is not None:
            return f"embedded cluster {self.cluster.home}"
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def name(self) -> str:
        """The database name."""
        return make_url(self.url).database or ""

    def env(self) -> dict[str, str]:
        """libpq environment for the programs: the password travels here, never in argv."""
        url = make_url(self.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if url.host:
            env["PGHOST"] = url.host
        if url.port:
            env["PGPORT"] = str(url.port)
        if url.username:
            env["PGUSER"] = url.username
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        env["PGDATABASE"] = url.database or ""
        for key, value in url.query.items():
            name = _QUERY_ENV.get(key)
            if name:
                env[name] = value if isinstance(value, str) else value[0]
        # Row checksums and dumps must not depend on the server's time zone.
        env["PGTZ"] = "UTC"
        return env

    def dsn(self, dbname: str | None = None) -> str:
        """A psycopg2 DSN (the same parameters as env())."""
        env = self.env()
        parts = {
            "host": env.get("PGHOST"),
            "port": env.get("PGPORT"),
            "user": env.get("PGUSER"),
            "password": env.get("PGPASSWORD"),
            "dbname": dbname or env.get("PGDATABASE"),
            "sslmode": env.get("PGSSLMODE"),
        }
        return " ".join(f"{k}='{_quote(v)}'" for k, v in parts.items() if v)

    def connect(self, dbname: str | None = None):
        """A psycopg2 connection speaking UTC."""
        conn = psycopg2.connect(self.dsn(dbname), options="-c timezone=UTC")
        return conn

    def server_major(self) -> int:
        """The server's major version (15 for 15.8)."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version_num")
                return int(cur.fetchone()[0]) // 10000
        finally:
            conn.close()

    def bin_dir(self, settings: Settings) -> Path:
        """PostgreSQL's programs matching the server (never older than it)."""
        if self.cluster is not None:
            return self.cluster.bin_dir
        major = self.server_major()
        found = find_pg_bin(settings.pg_bin, str(major))
        if found.parent.name.isdigit() and int(found.parent.name) < major:
            raise OpsError(
                f"The server is PostgreSQL {major} but the newest client programs here are "
                f"{found.parent.name}; install postgresql-client-{major}."
            )
        return found


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def database_for(settings: Settings, start: bool = True) -> Database:
    """The database the service uses; starts the embedded cluster when asked."""
    try:
        url = resolve_url(settings, start=start)
    except ClusterError as exc:
        raise OpsError(str(exc)) from exc
    return Database(url=url, cluster=None if settings.database_url else cluster_for(settings))


def run_tool(args: list[str | Path], env: dict[str, str], what: str) -> str:
    """Run a PostgreSQL program; OpsError with its stderr when it fails."""
    proc = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OpsError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def tool_version(bin_dir: Path, name: str) -> str:
    """'pg_dump (PostgreSQL) 15.8' and the like."""
    return run_tool([bin_dir / name, "--version"], dict(os.environ), name).strip()
