"""Running the service for years: backup, restore, point-in-time recovery, upgrades,
metrics, the doctor and photo hygiene. No HTTP here (the routes live in router.py)."""
