"""Tables of hazard categories, hazards and hazard events (created by migration 0001)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gis_service.db.base import Base


class HazardCategory(Base):
    """A hazard category, synced from layers/hazard_categories/*.yaml."""

    __tablename__ = "hazard_categories"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    report_class: Mapped[str] = mapped_column(Text)
    default_department_code: Mapped[str | None] = mapped_column(
        Text, ForeignKey("departments.code")
    )
    default_severity: Mapped[str] = mapped_column(Text)
    sla_hours: Mapped[int] = mapped_column(Integer)
    duplicate_radius_m: Mapped[float] = mapped_column(Float)
    snap_radius_m: Mapped[float] = mapped_column(Float)
    facility_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    standard_class: Mapped[dict[str, Any]] = mapped_column(JSONB)
    time_limits: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Hazard(Base):
    """A reported hazard, with its routing snapshot and workflow timestamps."""

    __tablename__ = "hazards"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_code: Mapped[str] = mapped_column(Text, unique=True)
    category_code: Mapped[str] = mapped_column(Text, ForeignKey("hazard_categories.code"))
    description: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=False
    )
    location_accuracy_m: Mapped[float | None] = mapped_column(REAL)
    address: Mapped[str | None] = mapped_column(Text)
    facility_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("facilities.id"))
    facility_code: Mapped[str | None] = mapped_column(Text)
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    grid_path: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    grid_chain: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    responsible_person_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("people.id"))
    responsible_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    department_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("departments.id"))
    assignee_person_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("people.id"))
    assignee_department_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("departments.id")
    )
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(Text, unique=True)
    idempotency_fingerprint: Mapped[str | None] = mapped_column(Text)
    reporter_principal: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("hazards.id"))
    version: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accept_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(Integer)
    receipt_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    patrol_ref: Mapped[Any | None] = mapped_column(UUID(as_uuid=True))


class HazardEvent(Base):
    """One step in a hazard's history: who moved it, from which state to which, when, why."""

    __tablename__ = "hazard_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("hazards.id"))
    action: Mapped[str] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str | None] = mapped_column(Text)
    actor_person_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("people.id"))
    actor_name: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HazardPhoto(Base):
    """A photo of a report or of one step (created by migration 0004); files on disk."""

    __tablename__ = "hazard_photos"

    id: Mapped[Any] = mapped_column(Uuid, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("hazards.id"))
    event_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("hazard_events.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    content_type: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(Text)
    original_name: Mapped[str | None] = mapped_column(Text)
    had_exif: Mapped[bool] = mapped_column(Boolean)
    had_gps: Mapped[bool] = mapped_column(Boolean)
    uploaded_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Migration 0007: set once `gis-service photos archive` has moved the files.
    archived_to: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
