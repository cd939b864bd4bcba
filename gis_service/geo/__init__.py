"""Geodesy helpers shared by every domain: Chinese datums, bboxes and points."""
