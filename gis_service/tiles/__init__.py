"""Vector tiles (Mapbox Vector Tile, built by PostGIS) and their TileJSON documents."""
