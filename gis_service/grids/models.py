"""Tables of the grid hierarchy (created by migration 0001)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, ForeignKey, SmallInteger, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_service.db.base import Base


class GridLevel(Base):
    """A level of the hierarchy: street, community, grid, micro_grid, or special."""

    __tablename__ = "grid_levels"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger, unique=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    territorial: Mapped[bool] = mapped_column(Boolean)


class Grid(Base):
    """One version of a grid polygon; a redrawn boundary ends the row (valid_to)."""

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text, ForeignKey("grid_levels.code"))
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    path: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GridPart(Base):
    """A ST_Subdivide piece of a grid, kept by trigger, for fast point lookups."""

    __tablename__ = "grid_parts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grids.id"))
    rank: Mapped[int] = mapped_column(SmallInteger)
    geom: Mapped[Any] = mapped_column(
        Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False
    )
