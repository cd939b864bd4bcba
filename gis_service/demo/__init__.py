"""The demo district: fictional grids, people, facilities and hazards over the real 二七区."""

from gis_service.demo.generator import GENERATOR_VERSION, DemoData, generate
from gis_service.demo.loader import DemoError, load_demo, read_boundary

__all__ = ["GENERATOR_VERSION", "DemoData", "DemoError", "generate", "load_demo", "read_boundary"]
