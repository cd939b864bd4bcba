"""Hazards (隐患/事件): reports, their routing and the closed loop."""
