"""``python -m gis_service`` runs the command line."""

from gis_service.cli import app

app()
