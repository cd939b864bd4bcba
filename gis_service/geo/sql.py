"""SQL about geometry shared by the importer and the grids' changes feed."""

from __future__ import annotations

# Metres→degrees is not needed: geometries closer than this (≈1 cm) count as the same, so an
# export (7 decimals) imported back changes nothing.
SAME_GEOMETRY_DEG = 2e-7


def same_geometry(a: str, b: str) -> str:
    """SQL: two geometries equal, or equal to within SAME_GEOMETRY_DEG at every vertex."""
    return (
        f"(ST_AsBinary({a}) = ST_AsBinary({b}) "
        f"OR ST_HausdorffDistance({a}, {b}) <= {SAME_GEOMETRY_DEG})"
    )
