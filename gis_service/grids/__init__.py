"""Grids: the street → community → grid → micro-grid hierarchy and special grids."""
