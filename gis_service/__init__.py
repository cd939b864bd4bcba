"""gis-service: grid-governance map service on PostGIS."""

__version__ = "0.1.0"
