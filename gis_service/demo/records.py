"""The data the demo generator hands to the loader: grids, people, assignments,
facilities, hazards and their events, as plain records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from shapely.geometry import LineString, MultiPolygon, Point

from gis_service.demo.fieldwork import FieldWork


@dataclass
class DemoGrid:
    """One grid of any level (street, community, grid, micro_grid, special)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: MultiPolygon
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoPerson:
    """A fictional person; ``key`` links assignments, hazards and events to them."""

    key: str
    name: str
    work_phone: str
    mobile_phone: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoAssignment:
    """A person's role on a grid."""

    grid_code: str
    person_key: str
    role: str
    is_primary: bool


@dataclass
class DemoFacility:
    """A facility (部件): a point or a short line inside one micro-grid."""

    code: str
    type_code: str
    name: str
    status: str
    geom: Point | LineString
    attributes: dict[str, Any] = field(default_factory=dict)


class DemoEvent(NamedTuple):
    """One step of a hazard's workflow."""

    action: str
    from_status: str | None
    to_status: str | None
    at: datetime
    actor_person_key: str | None
    note: str
    actor_name: str | None = None


@dataclass
class DemoHazard:
    """A hazard report with timestamps and events consistent with its status."""

    public_code: str
    category_code: str
    description: str
    severity: str
    status: str
    source: str
    lon: float
    lat: float
    facility_code: str | None
    reporter_name: str | None
    reporter_phone: str | None
    reported_at: datetime
    accepted_at: datetime | None = None
    dispatched_at: datetime | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    assignee_person_key: str | None = None
    assignee_department_code: str | None = None
    address: str | None = None
    location_accuracy_m: float | None = None
    micro_grid_code: str | None = None
    events: list[DemoEvent] = field(default_factory=list)

    @property
    def updated_at(self) -> datetime:
        """The time of the last event."""
        return self.events[-1].at if self.events else self.reported_at


@dataclass
class DemoData:
    """Everything the demo district holds."""

    seed: int
    generated_at: datetime
    valid_from: datetime
    grids: list[DemoGrid]
    people: list[DemoPerson]
    assignments: list[DemoAssignment]
    facilities: list[DemoFacility]
    hazards: list[DemoHazard]
    fieldwork: FieldWork = field(default_factory=lambda: FieldWork([], []))

    def counts(self) -> dict[str, int]:
        """Row counts by kind, as recorded in service_meta."""
        levels = defaultdict(int)
        for g in self.grids:
            levels[g.level] += 1
        return {
            "streets": levels["street"],
            "communities": levels["community"],
            "grids": levels["grid"],
            "micro_grids": levels["micro_grid"],
            "special_grids": levels["special"],
            "people": len(self.people),
            "assignments": len(self.assignments),
            "facilities": len(self.facilities),
            "hazards": len(self.hazards),
            "hazard_events": sum(len(h.events) for h in self.hazards),
            **self.fieldwork.counts(),
        }
