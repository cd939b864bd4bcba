"""Open311 GeoReport v2 at /open311/v2: hazard categories as services, hazards as requests."""
