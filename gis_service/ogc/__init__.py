"""OGC API – Features (Part 1 Core/GeoJSON/OpenAPI 3.0, Part 3 CQL2-text filters) under /ogc."""
