"""Roles, the scopes each role grants, and the scopes an API key may carry."""

from __future__ import annotations

# Mirrors the CHECK constraint of migration 0003_auth, most powerful first.
ROLES: tuple[str, ...] = (
    "admin",
    "street_staff",
    "community_staff",
    "grid_leader",
    "field_staff",
    "viewer",
)
STAFF_ROLES: frozenset[str] = frozenset(ROLES) - {"viewer"}
ROLE_NAMES_ZH: dict[str, str] = {
    "admin": "系统管理员",
    "street_staff": "街道工作人员",
    "community_staff": "社区工作人员",
    "grid_leader": "网格长",
    "field_staff": "网格员",
    "viewer": "只读用户",
}

# What each scope lets a caller do; users get scopes from their role, keys carry them.
SCOPES: dict[str, str] = {
    "read": "read the public map data (everyone has it, anonymous visitors too)",
    "read_private": "read private fields (mobile phones, reporter details) inside the scope",
    "report": "submit hazard reports",
    "open311": "use the Open311 GeoReport v2 endpoints",
    "write": "work on hazards inside the scope (start, resolve, comment)",
    "dispatch": "accept, reject, dispatch, verify, close and escalate hazards inside the scope",
    "export": "export data of the scope",
    "import": "import grids, facilities and people",
    "metrics": "read /metrics (Prometheus); addresses in GIS_METRICS_ALLOW need no key",
    "admin": "manage users, API keys and read the audit log",
}
# Scopes an API key may be given (admin is for people only).
KEY_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "admin")

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "street_staff": frozenset(
        {"read", "read_private", "report", "write", "dispatch", "export", "import"}
    ),
    "community_staff": frozenset({"read", "read_private", "report", "write", "dispatch"}),
    "grid_leader": frozenset({"read", "read_private", "report", "write"}),
    "field_staff": frozenset({"read", "read_private", "report", "write"}),
    "viewer": frozenset({"read", "read_private"}),
}
ANONYMOUS_SCOPES: frozenset[str] = frozenset({"read", "report"})
