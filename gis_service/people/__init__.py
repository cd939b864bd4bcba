"""People, their roles on grids, and departments."""
