"""The demo's facilities (部件): points and short lines of every type in layers/, placed
inside micro-grids, with attributes and statuses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import substring

from gis_service.demo.records import DemoFacility
from gis_service.demo.shapes import M_PER_DEG_LAT, M_PER_DEG_LON, metres_to_deg, sample_points
from gis_service.demo.territory import DIVISION_CODE, GRID_SIZE, Node


def facility_types(catalog: Any) -> list[Any]:
    types = getattr(catalog, "facility_types", {}) or {}
    return [types[k] for k in sorted(types)]


def _per_micro_grid(ft: Any) -> float:
    demo = getattr(ft, "demo", None)
    value = getattr(demo, "per_micro_grid", None) if demo is not None else None
    if value is None and isinstance(demo, dict):
        value = demo.get("per_micro_grid")
    return 0.5 if value is None else float(value)


def _line_in(
    inner: Polygon | MultiPolygon, kind: str, rng: np.random.Generator
) -> LineString | None:
    """A short line inside ``inner``: walls and fences follow its edge, pipes run straight."""
    if kind in ("wall", "fence"):
        rings = [p.exterior for p in shapely.get_parts(inner)]
        ring = max(rings, key=lambda r: r.length)
        length_deg = metres_to_deg(float(rng.uniform(15, 45)))
        if ring.length <= length_deg * 1.2:
            return None
        start = float(rng.uniform(0, ring.length - length_deg))
        line = substring(ring, start, start + length_deg)
        line = shapely.set_precision(line, GRID_SIZE)
        return line if isinstance(line, LineString) and line.length > 0 else None
    for _ in range(10):
        ((x, y),) = sample_points(inner, 1, rng)
        length = float(rng.uniform(15, 60))
        angle = float(rng.uniform(0, math.pi))
        dx, dy = (
            length * math.cos(angle) / M_PER_DEG_LON,
            length * math.sin(angle) / M_PER_DEG_LAT,
        )
        line = shapely.set_precision(LineString([(x, y), (x + dx, y + dy)]), GRID_SIZE)
        if isinstance(line, LineString) and line.length > 0 and inner.contains(line):
            return line
    return None


def _line_kind(ft: Any) -> str:
    code = str(getattr(ft, "code", ""))
    name = str(getattr(ft, "name_zh", ""))
    if "wall" in code or "墙" in name:
        return "wall"
    if "fence" in code or "栏" in name:
        return "fence"
    return "pipe"


_FACILITY_STATUSES = ("in_service", "damaged", "under_repair", "planned")
_FACILITY_STATUS_P = (0.88, 0.06, 0.04, 0.02)


def place_facilities(
    micros: list[Node], catalog: Any, rng: np.random.Generator
) -> list[tuple[DemoFacility, Node]]:
    """Facilities of each catalogue type, Poisson per micro-grid, kept ≥ 3 m from its edge."""
    inner = shapely.buffer([m.geom for m in micros], -metres_to_deg(3.0))
    out: list[tuple[DemoFacility, Node]] = []
    for ft in facility_types(catalog):
        rate = _per_micro_grid(ft)
        if rate <= 0:
            continue
        counts = rng.poisson(rate, size=len(micros))
        class_code = str(getattr(ft, "class_code", "0000"))
        type_name = str(getattr(ft, "name_zh", ft.code))
        is_line = getattr(ft, "geometry", "point") == "line"
        placed: list[tuple[Any, Node, int]] = []
        for micro, area, n in zip(micros, inner, counts, strict=True):
            if n == 0 or area.is_empty:
                continue
            if is_line:
                lines = [_line_in(area, _line_kind(ft), rng) for _ in range(int(n))]
                geoms: list[Any] = [g for g in lines if g is not None]
            else:
                # Rounded to the grid precision, which keeps them ≥ 3 m inside the micro-grid.
                geoms = list(shapely.points(np.round(sample_points(area, int(n), rng), 7)))
            placed.extend((g, micro, k) for k, g in enumerate(geoms, start=1))
        codes = [f"{DIVISION_CODE}{class_code}{i:06d}" for i in range(1, len(placed) + 1)]
        statuses = rng.choice(len(_FACILITY_STATUSES), size=len(placed), p=_FACILITY_STATUS_P)
        attributes = _facility_attributes(ft, codes, rng)
        for (geom, micro, k), code, status, attrs in zip(
            placed, codes, statuses, attributes, strict=True
        ):
            facility = DemoFacility(
                code=code,
                type_code=str(ft.code),
                name=f"{micro.name}{k}号{type_name}",
                status=_FACILITY_STATUSES[int(status)],
                geom=geom,
                attributes=attrs,
            )
            out.append((facility, micro))
    return out


# Plausible values for the numeric attributes the catalogue declares, by attribute name:
# (low, high) draws uniformly (integers when both are ints), a list is a choice.
_ATTRIBUTE_VALUES: dict[str, tuple[float, float] | list[float]] = {
    "built_year": (1980, 2020),
    "install_year": (1995, 2025),
    "installed_year": (2010, 2025),
    "diameter_mm": [200, 300, 400, 500, 600],
    "pipe_diameter_mm": [300, 400, 500, 600],
    "size_mm": [600, 700, 800],
    "depth_m": (1.0, 4.0),
    "height_m": (0.9, 3.0),
    "power_kw": [7, 30, 60, 120],
    "ports": (4, 13),
    "connectors": (1, 3),
    "charging_ports": (4, 21),
    "parking_spaces": (10, 61),
    "fire_extinguishers": (1, 5),
    "pieces": (3, 13),
    "seats": (2, 9),
    "stalls": (2, 9),
}


def _facility_attributes(ft: Any, codes: list[str], rng: np.random.Generator) -> list[dict]:
    """Values for the attributes the type declares, for ``codes`` facilities at once (drawn
    column by column, which is much faster); free text other than the component ID is left
    out rather than invented."""
    columns: dict[str, list[Any]] = {}
    n = len(codes)
    specs = getattr(ft, "attributes", {}) or {}
    for name in sorted(specs):
        kind = getattr(specs[name], "type", None)
        values = getattr(specs[name], "values", None)
        known = _ATTRIBUTE_VALUES.get(name)
        if name == "component_id":
            columns[name] = codes
        elif kind == "enum" and values:
            columns[name] = [str(values[i]) for i in rng.integers(len(values), size=n)]
        elif kind == "boolean":
            columns[name] = (rng.random(n) < 0.7).tolist()
        elif kind == "integer":
            if isinstance(known, list):
                columns[name] = [int(known[i]) for i in rng.integers(len(known), size=n)]
            else:
                low, high = known or (1, 11)
                columns[name] = rng.integers(int(low), int(high), size=n).tolist()
        elif kind == "number":
            if isinstance(known, list):
                columns[name] = [float(known[i]) for i in rng.integers(len(known), size=n)]
            else:
                low, high = known or (0.5, 5.0)
                columns[name] = np.round(rng.uniform(low, high, size=n), 1).tolist()
    return [{k: col[i] for k, col in columns.items()} for i in range(n)]
