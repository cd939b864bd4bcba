"""Bring your own map: import and export grids, facilities and people; coverage checks,
redrawn boundaries with history, the changes feed and hazard reassignment."""
