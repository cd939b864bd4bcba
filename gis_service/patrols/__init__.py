"""Patrols (巡查): tracks recorded on the phone (GPS points with times) or uploaded as GPX,
stored as lines with their times, and counted per grid (patrols, distance, time, micro-grids
passed); hazards reported during a patrol link to it."""
