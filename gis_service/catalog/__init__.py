"""The layer catalog: facility types, hazard categories and departments, declared as YAML in
the top-level layers/ folder, loaded and checked at start-up and synced into PostGIS."""

from gis_service.catalog.loader import load_catalog
from gis_service.catalog.problems import LayerError, LayerProblem
from gis_service.catalog.sync import sync_catalog

__all__ = ["LayerError", "LayerProblem", "load_catalog", "sync_catalog"]
