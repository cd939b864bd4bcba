"""The demo district: a seeded, fictional grid hierarchy over the real 二七区 boundary.

Pure Python (shapely 2 + NumPy), no database. The same seed gives the same grids, names,
codes, people, facilities and hazards; only the timestamps move with ``now``.

The tessellation is exact. Every level is first cut approximately (seeded points, Lloyd
relaxation, Voronoi cells clipped to the parent), then the boundaries of the finest cells are
noded once on a 1e-7° grid (~1 cm) and polygonised into faces. Every grid of every level is
the union of its faces, so siblings share bit-identical edges, children union exactly to their
parent and nothing overlaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from gis_service.demo.facilities import place_facilities
from gis_service.demo.fieldwork import generate_fieldwork
from gis_service.demo.hazards import HAZARD_PREFIX, HISTORY_DAYS, make_hazards
from gis_service.demo.people import People, staff
from gis_service.demo.records import DemoData, DemoGrid
from gis_service.demo.shapes import as_multipolygon
from gis_service.demo.territory import (
    GRID_SIZE,
    build_tree,
    make_exact,
    micro_names_and_attributes,
    place_story,
    special_grids,
)
from gis_service.grids.levels import GRID_LEVELS

# 3: the workflow's own source notes (群众上报) and moves; 4: the working history
# (callbacks, exceptions, 吹哨, partner units) of demo/history.py; 5: households, people
# under care, a month of visits and patrols (demo/fieldwork.py)
GENERATOR_VERSION = "5"

__all__ = [
    "GENERATOR_VERSION",
    "HAZARD_PREFIX",
    "HISTORY_DAYS",
    "DemoData",
    "DemoGrid",
    "generate",
    "iter_levels",
]


def generate(boundary: MultiPolygon, catalog: Any, seed: int, now: datetime) -> DemoData:
    """The demo district for ``boundary``: deterministic for ``seed``, times relative to ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.replace(microsecond=0)
    rng = np.random.default_rng(seed)
    boundary = as_multipolygon(shapely.set_precision(boundary, GRID_SIZE))

    streets = build_tree(boundary, rng)
    make_exact(boundary, streets)
    micro_names_and_attributes(streets, rng)
    story = place_story(streets)

    # Level by level (all streets, then all communities, ...): the order of insertion.
    levels = [streets]
    while levels[-1]:
        levels.append([child for node in levels[-1] for child in node.children])
    nodes = [node for level in levels for node in level]
    assert all(n.geom is not None for n in nodes)
    grids = [
        DemoGrid(
            code=n.code,
            name=n.name,
            level=n.level,
            parent_code=n.parent.code if n.parent else None,
            geom=n.geom,
            attributes=n.attributes,
        )
        for n in nodes
    ]
    micros = [n for n in nodes if n.level == "micro_grid"]
    grids.extend(special_grids(streets, rng))

    people = People(rng)
    assignments = staff(grids, people)
    facilities = place_facilities(micros, catalog, rng)
    hazards = make_hazards(catalog, micros, facilities, people, story, now, rng)
    care = getattr(catalog, "care", None)
    frequencies = {c.code: c.visit_every_days for c in care.categories} if care else {}
    fieldwork = generate_fieldwork(
        [n for n in nodes if n.level == "grid"], people, frequencies, now, seed
    )
    return DemoData(
        seed=seed,
        generated_at=now,
        valid_from=(now - timedelta(days=365)).replace(hour=0, minute=0, second=0),
        grids=grids,
        people=people.people,
        assignments=assignments,
        facilities=[f for f, _ in facilities],
        hazards=hazards,
        fieldwork=fieldwork,
    )


def iter_levels(data: DemoData) -> Iterable[tuple[str, list[DemoGrid]]]:
    """The grids by level, parents before children (the order they must be inserted in)."""
    for level in GRID_LEVELS:
        yield level, [g for g in data.grids if g.level == level]
