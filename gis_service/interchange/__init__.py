"""File interchange: bring your own map (import grids, facilities and people from GeoJSON,
GeoPackage, Shapefile, KML, CSV or XLSX, checked and written in one transaction) and export
it again."""
