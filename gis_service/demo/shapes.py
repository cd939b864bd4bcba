"""Geometry helpers of the demo generator: metres and degrees near the district, random
points inside a polygon, and Voronoi tessellations clipped to a parent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

# Metres per degree near the district (34.7°N); good to a fraction of a percent here.
M_PER_DEG_LAT = 110_900.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(34.7))


def metres_to_deg(m: float) -> float:
    """A length in metres as degrees of longitude, the larger of the two at this latitude, so
    a margin of ``m`` metres is at least ``m`` metres in every direction."""
    return m / M_PER_DEG_LON


def sample_points(poly: Polygon | MultiPolygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random points strictly inside ``poly`` (rejection sampling)."""
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        xs = rng.uniform(x0, x1, 4 * n + 16)
        ys = rng.uniform(y0, y1, 4 * n + 16)
        ok = shapely.contains_xy(poly, xs, ys)
        pts = np.column_stack([xs[ok], ys[ok]])
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def voronoi_cells(poly: Polygon | MultiPolygon, sites: np.ndarray) -> list[Any]:
    """Voronoi cells of ``sites`` clipped to ``poly``, in site order."""
    envelope = shapely.buffer(shapely.envelope(poly), 0.01)
    vor = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=envelope, ordered=True)
    return list(shapely.intersection(np.asarray(vor.geoms), poly))


def merge_detached(cells: list[Any]) -> list[Any]:
    """Give each cell's smaller detached parts to the sibling they share most edge with, so a
    concave parent doesn't leave a cell in scattered pieces."""
    cells = list(cells)
    for i in range(len(cells)):
        parts = sorted(shapely.get_parts(cells[i]), key=lambda p: -p.area)
        if len(parts) <= 1:
            continue
        keep = [parts[0]]
        for part in parts[1:]:
            probe = part.buffer(1e-9)
            best, best_len = None, 0.0
            for j, other in enumerate(cells):
                if j == i or not probe.intersects(other):
                    continue
                shared = part.boundary.intersection(other.buffer(1e-9)).length
                if shared > best_len:
                    best, best_len = j, shared
            if best is None:
                keep.append(part)
            else:
                cells[best] = shapely.union(cells[best], part)
        cells[i] = shapely.union_all(keep)
    return cells


def tessellate(
    poly: Polygon | MultiPolygon,
    n: int,
    rng: np.random.Generator,
    anchors: Sequence[tuple[float, float] | None] | None = None,
    iterations: int = 3,
) -> list[Any]:
    """Cut ``poly`` into ``n`` roughly even cells (approximate; made exact later)."""
    if n == 1:
        return [poly]
    sites = sample_points(poly, n, rng)
    fixed = np.zeros(n, dtype=bool)
    for i, anchor in enumerate(anchors or ()):
        if anchor is not None:
            sites[i] = anchor
            fixed[i] = True
    for _ in range(iterations):
        # Lloyd relaxation: move each free site to its cell's centroid for even sizes.
        cells = voronoi_cells(poly, sites)
        cents = shapely.centroid(cells)
        inside = shapely.contains(poly, cents)
        cents = np.where(inside, cents, shapely.point_on_surface(cells))
        moved = shapely.get_coordinates(cents)
        sites = np.where(fixed[:, None], sites, moved)
    return merge_detached(voronoi_cells(poly, sites))


def reading_order(cells: list[Any]) -> list[int]:
    """Indices of ``cells`` north to south in ~300 m bands, west to east within a band."""
    cents = shapely.get_coordinates(shapely.centroid(cells))
    keys = [(-round(y / 0.003), x) for x, y in cents]
    return sorted(range(len(cells)), key=lambda i: keys[i])


def as_multipolygon(geom: Any) -> MultiPolygon:
    """Polygon parts of ``geom`` as a MultiPolygon."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(parts)


def allocate(total: int, weights: Sequence[float], minimum: int) -> list[int]:
    """Split ``total`` into integers ≥ ``minimum`` roughly proportional to ``weights``
    (largest remainder, ties by position, so it is deterministic)."""
    n = len(weights)
    rest = total - n * minimum
    if rest < 0:
        raise ValueError(f"cannot split {total} into {n} parts of at least {minimum}")
    w = np.asarray(weights, dtype=float)
    share = w / w.sum() * rest
    base = np.floor(share).astype(int)
    left = rest - int(base.sum())
    order = sorted(range(n), key=lambda i: (-(share[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return [int(b) + minimum for b in base]
