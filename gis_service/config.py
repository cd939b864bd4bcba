"""The one settings class: every knob comes from GIS_* variables or DATABASE_URL."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # Bounds on the work one request may cause.
    default_limit: int = Field(default=100, ge=1, description="Page size when none is asked.")
    max_limit: int = Field(default=1000, ge=1, description="Larger limits are clamped to this.")
    max_bbox_area_km2: float = Field(
        default=2500.0, gt=0, description="Largest bbox a list or items request may ask for."
    )
    max_batch: int = Field(default=10000, ge=1, description="Most points in one batch locate.")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Request body cap.")

    @cached_property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def embedded(self) -> bool:
        """True when the service must run its own PostgreSQL cluster."""
        return not self.database_url
