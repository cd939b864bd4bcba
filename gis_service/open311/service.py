"""Open311 GeoReport v2 documents: services, service definitions, requests, errors, in
JSON and XML, from the hazard catalog and the hazards table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row

from gis_service.catalog.schemas import (
    REPORT_CLASS_NAMES_ZH,
    SEVERITY_NAMES_ZH,
    Catalog,
    HazardCategoryDef,
)
from gis_service.hazards.states import CLOSED_STATUSES, OPEN_STATUSES, STATUS_NAMES_ZH
from gis_service.open311 import sql
from gis_service.text import printable

FORMATS = ("json", "xml")
# Child element names of the XML lists, as the GeoReport v2 examples spell them.
_ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


# ---- rendering --------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value))  # XML 1.0 §2.2: no escape exists for these


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    el = ET.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _append(el, k, v)
    elif isinstance(value, list):
        for item in value:
            _append(el, _ITEM_TAGS.get(tag, "item"), item)
    else:
        el.text = _text(value)


def xml_document(root: str, value: Any) -> bytes:
    """``value`` (a list or a mapping) as a GeoReport v2 XML document under ``root``."""
    el = ET.Element(root)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _append(el, k, v)
    else:
        for item in value:
            _append(el, _ITEM_TAGS[root], item)
    return ET.tostring(el, encoding="utf-8", xml_declaration=True)


def error_list(status: int, description: str) -> list[dict[str, Any]]:
    """The spec's error list: [{code, description}] (XML: <errors><error>…)."""
    return [{"code": status, "description": description}]


# ---- services ---------------------------------------------------------------------------------
def _categories(catalog: Catalog) -> list[HazardCategoryDef]:
    return [catalog.hazard_categories[k] for k in sorted(catalog.hazard_categories)]


def service_list(catalog: Catalog) -> list[dict[str, Any]]:
    """Every hazard category as an Open311 service."""
    return [
        {
            "service_code": c.code,
            "service_name": c.name_zh,
            "description": c.description_zh or c.name_en,
            "metadata": True,
            "type": "realtime",
            "keywords": ", ".join([c.name_en, c.report_class]),
            "group": REPORT_CLASS_NAMES_ZH[c.report_class],
        }
        for c in _categories(catalog)
    ]


def service_definition(cat: HazardCategoryDef) -> dict[str, Any]:
    """The attributes a request of this service may carry (attribute[code]=value)."""
    attributes: list[dict[str, Any]] = [
        {
            "variable": True,
            "code": "severity",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": f"严重程度 Severity; default {cat.default_severity}.",
            "order": 1,
            "description": "严重程度 How serious is it?",
            "values": [{"key": k, "name": v} for k, v in SEVERITY_NAMES_ZH.items()],
        },
        {
            "variable": True,
            "code": "accuracy_m",
            "datatype": "number",
            "required": False,
            "datatype_description": "GPS accuracy radius in metres.",
            "order": 2,
            "description": "定位精度（米） GPS accuracy",
            "values": [],
        },
    ]
    if cat.facility_types:
        attributes.append(
            {
                "variable": True,
                "code": "facility_code",
                "datatype": "string",
                "required": False,
                "datatype_description": "The facility (部件) code; when absent the nearest "
                f"facility within {cat.snap_radius_m:g} m is taken.",
                "order": 3,
                "description": "部件编码 Facility code",
                "values": [],
            }
        )
    return {"service_code": cat.code, "attributes": attributes}


# ---- requests ---------------------------------------------------------------------------------
def open_or_closed(status: str) -> str:
    """Our state as Open311's: open or closed."""
    return "closed" if status in CLOSED_STATUSES else "open"


def statuses_for(raw: str | None) -> list[str] | None:
    """Our states behind Open311's status filter (open, closed, comma list); ValueError if bad."""
    if raw is None or raw == "":
        return None
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip().lower()
        if item == "open":
            out += OPEN_STATUSES
        elif item == "closed":
            out += CLOSED_STATUSES
        else:
            raise ValueError(f"status must be open or closed, not {item!r}")
    return out


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


def _notes(row: Row) -> str:
    name = STATUS_NAMES_ZH.get(row.status, row.status)
    if row.duplicate_of:
        return f"{name}：重复件，见 {row.duplicate_of} (duplicate of {row.duplicate_of})"
    return f"{name} ({row.status})"


def _agency(row: Row) -> str | None:
    """The department handling it, else the person, else the grid leader it was routed to."""
    if row.assignee_department:
        return row.assignee_department
    if row.assignee_name:
        return row.assignee_name
    if row.responsible_name:
        role = f"（{row.responsible_role}）" if row.responsible_role else ""
        return f"{row.responsible_name}{role}"
    return row.department


def request_document(row: Row, base_url: str, tz: ZoneInfo) -> dict[str, Any]:
    """One hazard as an Open311 service request."""
    media = (
        f"{base_url.rstrip('/')}/api/v1/hazards/{row.id}/photos/{row.photo_id}"
        if row.photo_id
        else None
    )
    return {
        "service_request_id": row.public_code,
        "status": open_or_closed(row.status),
        "status_notes": _notes(row),
        "service_name": row.service_name,
        "service_code": row.category_code,
        "description": row.description,
        "agency_responsible": _agency(row),
        "service_notice": None,
        "requested_datetime": _iso(row.reported_at, tz),
        "updated_datetime": _iso(row.updated_at, tz),
        "expected_datetime": _iso(row.due_at, tz),
        "address": row.address,
        "address_id": None,
        "zipcode": None,
        "lat": round(row.lat, 7),
        "long": round(row.lon, 7),
        "media_url": media,
    }


def find_requests(
    conn: Connection,
    *,
    codes: Sequence[str] | None,
    services: Sequence[str] | None,
    statuses: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[Row]:
    """Hazards matching the Open311 filters, newest first."""
    return conn.execute(
        sql.REQUESTS,
        {
            "codes": list(codes) if codes else None,
            "services": list(services) if services else None,
            "statuses": list(statuses) if statuses else None,
            "start": start,
            "end": end,
            "limit": limit,
        },
    ).all()


def request_by_token(conn: Connection, token: str) -> Row | None:
    """The request created with an Open311 token (id and public code), or None."""
    return conn.execute(sql.REQUEST_BY_TOKEN, {"token": token}).first()


def request_code(conn: Connection, hazard_id: int) -> str:
    """The public code (service_request_id) of a hazard."""
    return conn.execute(sql.REQUEST_CODE, {"id": hazard_id}).scalar_one()
