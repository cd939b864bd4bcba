"""Tables of people, grid assignments and departments (migrations 0001 and 0008)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, SmallInteger, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_service.db.base import Base


class Person(Base):
    """A grid leader, member, building head or other responsible person."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    work_phone: Mapped[str | None] = mapped_column(Text)
    mobile_phone: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean)
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    party_member: Mapped[bool] = mapped_column(Boolean)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssignmentRole(Base):
    """A role held on grids (网格长, 微网格员, 楼栋长, …): layers/assignment_roles.yaml."""

    __tablename__ = "assignment_roles"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    rank: Mapped[int] = mapped_column(SmallInteger)
    leader: Mapped[bool] = mapped_column(Boolean)
    levels: Mapped[list[str]] = mapped_column(ARRAY(Text))
    primary_for: Mapped[list[str]] = mapped_column(ARRAY(Text))
    active: Mapped[bool] = mapped_column(Boolean)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GridAssignment(Base):
    """A person's role on a grid for a time range; one primary per grid at a time."""

    __tablename__ = "grid_assignments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grids.id"))
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(Text, ForeignKey("assignment_roles.code"))
    is_primary: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Department(Base):
    """A department hazards can be dispatched to (e.g. 郑州市市政设施事务中心)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
