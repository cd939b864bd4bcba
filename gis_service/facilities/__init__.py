"""Facilities (部件): manholes, chargers, walls, cameras and their types."""
