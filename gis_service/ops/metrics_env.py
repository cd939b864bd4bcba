"""Where the workers of one ``serve`` keep their metric files (prometheus_client's
multiprocess mode). Kept apart from metrics.py: the variable must be set before
prometheus_client is first imported, which picks its value store at import time."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(run_dir: Path) -> Path:
    """A fresh folder for this serve's workers, exported as PROMETHEUS_MULTIPROC_DIR; folders of
    serves no longer running are removed (their files would be summed with ours)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("metrics-*"):
        pid = old.name.removeprefix("metrics-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    folder = run_dir / f"metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder
