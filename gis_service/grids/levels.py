"""The levels of the grid hierarchy, coarsest first; mirrors the grid_levels rows of migration
0001 (a test compares them)."""

from __future__ import annotations

from typing import Literal, get_args

Level = Literal["street", "community", "grid", "micro_grid", "special"]
GRID_LEVELS: tuple[str, ...] = get_args(Level)
