"""Alembic, driven from Python: upgrade, downgrade and status."""

from __future__ import annotations

import importlib.util
import io
from types import ModuleType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from gis_service.config import PROJECT_ROOT


def revision_module(name: str) -> ModuleType:
    """The module of migrations/versions/<name>.py, loaded by path (the folder is no package):
    a revision that builds on an earlier one's SQL templates reads them from there."""
    path = PROJECT_ROOT / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"revision_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to this engine's URL."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"), stdout=io.StringIO())
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["url"] = engine.url.render_as_string(hide_password=False)
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply revisions up to ``revision``."""
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Revert revisions down to ``revision``."""
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    """The revision(s) the database is at, comma-joined, or None when it has none."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def head(engine: Engine) -> str | None:
    """The newest revision(s) in migrations/, comma-joined."""
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    return ",".join(sorted(heads)) or None
