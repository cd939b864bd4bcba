"""Who may manage which accounts and keys, and what they may grant: pure rules, no database.

Admins manage everything; street staff manage the accounts and keys of their own subtree.
Nobody grants a role above their own, a scope (grid subtree) wider than their own, or an API
key scope they do not hold themselves; an account outside one's subtree, or of a higher role,
cannot be touched. ``principal`` None is the system (a command run on the server).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLE_NAMES_ZH, ROLES
from gis_service.errors import Conflict, Forbidden, NotFound

# The roles that manage accounts (the 账号 screen); admin is everywhere, street staff in scope.
MANAGER_ROLES: frozenset[str] = frozenset({"admin", "street_staff"})
_RANK = {role: i for i, role in enumerate(ROLES)}  # 0 is the most powerful


def _system_or_admin(principal: Principal | None) -> bool:
    return principal is None or principal.is_admin


def role_allowed(principal: Principal | None, role: str) -> None:
    """403 when ``role`` is above the caller's own."""
    if _system_or_admin(principal):
        return
    assert principal is not None
    if principal.role is None or _RANK[role] < _RANK[principal.role]:
        raise Forbidden(
            f"You cannot give the role {role} ({ROLE_NAMES_ZH[role]}): it is above your own "
            f"({principal.role}).",
            code="role_too_high",
            role=role,
        )


def scope_allowed(principal: Principal | None, grid_path: Sequence[int] | None) -> None:
    """403 when a grid subtree (None: the whole territory) is wider than the caller's."""
    if _system_or_admin(principal):
        return
    assert principal is not None
    if grid_path is None or not principal.in_scope(grid_path):
        raise Forbidden(
            "You cannot give a scope wider than your own: choose a grid inside your subtree.",
            code="scope_too_wide",
        )


def key_scopes_allowed(principal: Principal | None, scopes: Iterable[str]) -> None:
    """403 when a key would carry a scope the caller does not hold."""
    if _system_or_admin(principal):
        return
    assert principal is not None
    missing = sorted(set(scopes) - principal.scopes)
    if missing:
        raise Forbidden(
            f"You cannot give a key the scope(s) {', '.join(missing)}: you do not hold them.",
            code="scope_too_wide",
            missing_scopes=missing,
        )


def manageable(principal: Principal | None, target: dict[str, Any], what: str) -> None:
    """404 for an account or key outside the caller's subtree; 403 for one of a higher role."""
    if _system_or_admin(principal):
        return
    assert principal is not None
    path = target.get("grid_path")
    if not path or not principal.in_scope(path):
        raise NotFound(
            f"{what.capitalize()} {target['id']} does not exist or is outside your scope.",
            id=target["id"],
        )
    role = target.get("role")
    if role is not None and principal.role is not None and _RANK[role] < _RANK[principal.role]:
        raise Forbidden(
            f"The {what} {target['id']} has the role {role}, above your own; ask an admin.",
            code="role_too_high",
        )


def not_self(principal: Principal | None, user_id: int, what: str) -> None:
    """409 when a manager would change their own role, scope or state."""
    if principal is not None and principal.kind == "user" and principal.id == user_id:
        raise Conflict(
            f"You cannot change your own {what}; ask another administrator.", code="own_account"
        )
