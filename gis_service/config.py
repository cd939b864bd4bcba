"""The one settings class: every knob comes from GIS_* variables or DATABASE_URL."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration, read from the environment (and an optional .env file)."""

    model_config = SettingsConfigDict(
        env_prefix="GIS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "GIS_DATABASE_URL"),
        description="SQLAlchemy URL of an existing PostGIS database; unset = embedded cluster.",
    )
    replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Streaming replicas that hot reads may use, comma-separated URLs "
        "(gis-service pg replica add prints one); empty = every read on the primary.",
    )
    replica_max_lag_seconds: float = Field(
        default=5.0, gt=0, description="A replica further behind the primary is skipped."
    )
    read_pool_size: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Connections per worker for hot reads, per server (plus up to half as many "
        "for statements kept on one generic plan).",
    )
    fast_paths: bool = Field(
        default=True,
        description="Serve plain locate, facility-page and tile requests past FastAPI's "
        "dependency solving (same answers, less CPU); off: every request takes its route.",
    )
    data_dir: Path = Field(default=Path("./var"), description="Where the embedded cluster lives.")
    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    layers_dir: Path = Field(
        default=PROJECT_ROOT / "layers", description="Facility-type and hazard-category YAML."
    )
    demo_data_dir: Path = Field(
        default=PROJECT_ROOT / "data", description="Demo boundary and its provenance."
    )
    pg_bin: Path | None = Field(
        default=None, description="Folder with initdb/pg_ctl; found automatically when unset."
    )
    db_name: str = Field(default="gis", description="Database name in the embedded cluster.")
    load_demo: bool = Field(default=True, description="Load the demo district on first start.")
    demo_seed: int = Field(default=20241122, description="Seed of the demo generator.")
    log_level: str = Field(default="info", description="uvicorn log level.")
    workers: int | None = Field(
        default=None, ge=1, le=64, description="Worker processes; unset = the number of cores."
    )

    # Bounds on the work one request may cause.
    default_limit: int = Field(default=100, ge=1, description="Page size when none is asked.")
    max_limit: int = Field(default=1000, ge=1, description="Larger limits are clamped to this.")
    max_batch: int = Field(default=10000, ge=1, description="Most points in one batch locate.")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Request body cap.")

    # Imports and exports (issue 7).
    import_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="Largest file POST /api/v1/imports takes."
    )
    import_pause_before_commit: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="Testing only: seconds an import waits before it commits (the killed-"
        "import test stops it there).",
    )

    # The web map at /map (issue 4).
    basemap: Literal["none", "osm", "amap", "tianditu", "custom"] = Field(
        default="none",
        description="Basemap the map opens with: none (district outline only; works offline), "
        "osm, amap (GCJ-02: every layer is shifted to match), tianditu (needs "
        "GIS_TIANDITU_KEY) or custom (GIS_BASEMAP_URL).",
    )
    basemap_choices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["none", "osm", "amap", "tianditu", "custom"],
        description="Basemaps offered in the layer switcher, comma-separated; tianditu is "
        "offered only with a key and custom only with a URL.",
    )
    tianditu_key: str | None = Field(default=None, description="Tianditu (天地图) browser key.")
    basemap_url: str | None = Field(
        default=None,
        description="Custom XYZ tile URL template ({z}/{x}/{y}, optional {s}), e.g. an "
        "intranet tile server.",
    )
    basemap_datum: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="Datum of the custom basemap: gcj02 for a mirror of AMap tiles.",
    )
    basemap_attribution: str = Field(
        default="自定义底图", description="Attribution shown for the custom basemap."
    )
    osm_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="OpenStreetMap tile URL template (point it at a mirror on an intranet).",
    )
    amap_url: str = Field(
        default="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
        "&style=8&x={x}&y={y}&z={z}",
        description="AMap (高德) tile URL template; {s} runs over 1-4.",
    )
    map_title: str = Field(default="网格化基层治理地图", description="Title of the web map.")

    # Hazard reports and the closed loop.
    local_timezone: str = Field(
        default="Asia/Shanghai", description="Time zone of public hazard codes (YH + local date)."
    )
    hazard_reopen_days: int = Field(
        default=30, ge=0, description="Days after closing within which a hazard may be reopened."
    )
    callback_rework_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="Days after 结案 within which an unsatisfied callback (不满意) may send the "
        "case back for rework (返工).",
    )
    photo_max_count: int = Field(default=5, ge=1, le=50, description="Photos per report or step.")
    photo_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest photo file accepted, in bytes."
    )
    photo_max_pixels: int = Field(
        default=60_000_000, ge=10_000, description="Largest photo accepted, in pixels."
    )
    photo_thumb_px: int = Field(default=320, ge=32, le=2048, description="Thumbnail long side.")
    photo_public_px: int = Field(
        default=2048, ge=256, le=8192, description="Long side of a photo's public copy."
    )
    photo_max_decoded_pixels: int = Field(
        default=24_000_000,
        ge=10_000,
        description="Most pixels one photo may decode to (JPEGs decode at a reduced scale, "
        "PNG and WebP in full): bounds the memory a photo takes.",
    )
    photo_max_request_pixels: int = Field(
        default=60_000_000,
        ge=10_000,
        description="Most pixels the photos of one request may decode to, together.",
    )

    # Field work (issue 14): visits, patrols and work done offline.
    field_max_age_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description="Oldest recorded time accepted for work a phone kept offline, in days.",
    )
    patrol_max_points: int = Field(
        default=20_000, ge=10, description="Most GPS points in one patrol track."
    )

    # Accounts and sessions (issue 5).
    session_ttl_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="Lifetime of a login session (cookie)."
    )
    bearer_ttl_days: float = Field(
        default=30.0, gt=0, le=366, description="Default lifetime of a bearer token."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark the session and CSRF cookies Secure (set true behind HTTPS).",
    )
    # argon2id's cost. The defaults are RFC 9106 §4's second recommended option (t=3, 64 MiB,
    # p=4, argon2-cffi's "low memory" profile). Read once per process; a stored hash made with
    # other values is re-made with these at the user's next login.
    password_time_cost: int = Field(
        default=3, ge=1, le=20, description="argon2id passes over the memory per password hash."
    )
    password_memory_kib: int = Field(
        default=65536, ge=64, le=4 * 1024 * 1024, description="argon2id memory per hash, KiB."
    )
    password_parallelism: int = Field(
        default=4, ge=1, le=8, description="argon2id lanes per password hash."
    )
    login_slowdown_after: int = Field(
        default=3, ge=1, description="Failed logins before each further try must wait."
    )
    login_delay_seconds: float = Field(
        default=2.0, ge=0, description="First wait after the slowdown starts; doubles per failure."
    )
    login_max_failures: int = Field(
        default=10, ge=1, description="Failed logins in a row that lock the account."
    )
    login_lock_minutes: float = Field(
        default=15.0, gt=0, description="How long a locked account stays locked."
    )
    login_ip_per_minute: int = Field(
        default=30, ge=1, description="Login attempts one client address may make per minute."
    )
    anon_reports_per_hour: int = Field(
        default=10, ge=0, description="Hazard reports one anonymous address may submit per hour."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS, comma-separated (e.g. https://map.example.cn); "
        "empty = no cross-origin access.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For is believed, "
        "comma-separated; empty = the socket peer is the client.",
    )

    # Operations: backups, point-in-time recovery, metrics, logs, hygiene (issue 16).
    backup_dir: Path | None = Field(
        default=None,
        description="Where `gis-service backup` writes archives; default <data>/backups (put it "
        "on another disk).",
    )
    backup_before_upgrade: bool = Field(
        default=True,
        description="Back up automatically before `serve` or `db upgrade` migrates a database "
        "that has data.",
    )
    backup_pause_before_publish: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="Testing only: seconds a backup waits, fully written, before it renames its "
        "archive to the final name (the kill -9 test stops it there).",
    )
    wal_archive_dir: Path | None = Field(
        default=None,
        description="Turn on WAL archiving of the embedded cluster into this folder (base "
        "backups under base/, WAL under wal/) for `restore --until`.",
    )
    photo_archive_dir: Path | None = Field(
        default=None,
        description="Where `gis-service photos archive` moves old photos; default "
        "<data>/photo-archive.",
    )
    metrics_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs that may read /metrics without credentials, "
        "comma-separated (e.g. 127.0.0.1/32,10.0.0.0/8); admins and API keys with scope "
        "metrics may always.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON (one object a line) or plain text."
    )

    @field_validator(
        "cors_origins", "trusted_proxies", "replica_urls", "metrics_allow", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept ``a,b`` from the environment as well as a list."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("basemap_choices", mode="before")
    @classmethod
    def _basemap_list(cls, value: object) -> object:
        """Accept ``none,amap`` from the environment; refuse unknown basemaps."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        known = ("none", "osm", "amap", "tianditu", "custom")
        if isinstance(value, list):
            unknown = [v for v in value if v not in known]
            if unknown:
                raise ValueError(f"unknown basemap(s) {unknown}; choose from {', '.join(known)}")
        return value

    @cached_property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def photos_path(self) -> Path:
        """Where hazard photos are stored."""
        return self.data_path / "photos"

    @property
    def backups_path(self) -> Path:
        """Where backups go unless --to says otherwise."""
        return (self.backup_dir or self.data_path / "backups").expanduser().absolute()

    @property
    def photo_archive_path(self) -> Path:
        """Where archived photos go."""
        return (self.photo_archive_dir or self.data_path / "photo-archive").expanduser().absolute()

    @property
    def embedded(self) -> bool:
        """True when the service must run its own PostgreSQL cluster."""
        return not self.database_url
