"""One search box for the map and the workbench: hazard codes, grids, addresses, people."""
