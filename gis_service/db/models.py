"""Imports every domain's models so that Base.metadata knows all tables."""

from gis_service.db.base import Base
from gis_service.facilities import models as facilities  # noqa: F401
from gis_service.grids import models as grids  # noqa: F401
from gis_service.hazards import models as hazards  # noqa: F401
from gis_service.people import models as people  # noqa: F401

metadata = Base.metadata
