"""What an import runs with: its options, the progress callback, and COPY of prepared rows
into a staging table (CSV through psycopg2, reporting how much was read)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from psycopg2.extensions import cursor as Cursor

from gis_service.auth.principal import Principal
from gis_service.interchange.mapping import FieldMapping

Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: nothing."""


@dataclass
class ImportOptions:
    """What to import and how."""

    layer: str
    check: bool = False
    update: bool = False
    fix: bool = False
    crs: str | None = None
    source_layer: str | None = None
    encoding: str | None = None
    mapping: FieldMapping | None = None
    valid_from: datetime | None = None
    retire_missing: bool = False
    actor: str | None = None
    source_name: str | None = None
    pause_before_commit: float = 0.0
    # Who imports: the audit row names them; their subtree bounds every row the import
    # creates, changes or retires (None: the whole territory, e.g. the CLI on the server).
    principal: Principal | None = None
    ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> list[int] | None:
        """Ids of the caller's scope root (all versions), or None for the whole territory."""
        if self.principal is None:
            return None
        return self.principal.scope_filter()

    def as_json(self) -> str:
        """The options worth recording with the run."""
        return json.dumps(
            {
                "check": self.check,
                "update": self.update,
                "fix": self.fix,
                "crs": self.crs,
                "layer": self.source_layer,
                "retire_missing": self.retire_missing,
                "mapping": None
                if self.mapping is None
                else {"columns": self.mapping.columns, "defaults": self.mapping.defaults},
            },
            ensure_ascii=False,
        )


class _ProgressReader(io.RawIOBase):
    """A file-like view of a text buffer that reports how much COPY has read."""

    def __init__(self, data: bytes, progress: Progress, stage: str) -> None:
        self._buf = io.BytesIO(data)
        self._total = len(data)
        self._progress = progress
        self._stage = stage

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._buf.read(size)
        self._progress(self._stage, self._buf.tell(), self._total)
        return chunk


def copy_rows(
    cur: Cursor,
    statement: str,
    rows: Iterable[tuple],
    progress: Progress,
    lead: np.ndarray | None = None,
) -> None:
    """COPY rows as CSV; None becomes an unquoted empty field, which COPY reads as NULL.
    ``lead``, a first column of hex geometries (None or NaN: NULL), goes ahead of each row as
    it is:
    hex needs no quoting, and the csv module scanned its ~20 MB (100,000 polygons) one
    character at a time, ~0.7 s."""
    lines: list[str] = []
    csv.writer(_Lines(lines), lineterminator="\n").writerows(rows)
    if lead is not None:
        lines = [
            f"{h},{line}" if isinstance(h, str) else f",{line}"
            for h, line in zip(lead, lines, strict=True)
        ]
    data = "".join(lines).encode("utf-8")
    cur.copy_expert(statement, _ProgressReader(data, progress, "stage"), size=1 << 20)


class _Lines:
    """A csv writer's target that keeps each row's line."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def columns(frame: pd.DataFrame, names: list[str]) -> Iterable[tuple]:
    arrays = []
    for n in names:
        col = frame[n].to_numpy(dtype=object, copy=True)
        # pandas may have turned None into NaN (string columns): COPY must see NULL.
        col[pd.isna(col)] = None
        arrays.append(col)
    return zip(*arrays, strict=True)
