"""The caller of one request: a user, an API key or an anonymous visitor, with the grid
subtree they may act on. A plain value: services take it, HTTP finds it (auth.deps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from gis_service.auth.roles import ANONYMOUS_SCOPES

PrincipalKind = Literal["anonymous", "user", "api_key"]


@dataclass(frozen=True)
class Principal:
    """The caller of one request, with the grid subtree they may act on."""

    kind: PrincipalKind
    id: int | None
    name: str
    role: str | None
    scopes: frozenset[str]
    grid_id: int | None
    grid_path: tuple[int, ...]
    person_id: int | None
    # Every version id of the scope root's code: a redrawn grid keeps its code, not its id.
    scope_ids: frozenset[int] = field(default_factory=frozenset)
    # The session or bearer token row behind a user principal (logout revokes it).
    token_id: int | None = None
    via: Literal["session", "bearer", "api_key"] | None = None

    @property
    def authenticated(self) -> bool:
        """True for a user or an API key."""
        return self.kind != "anonymous"

    @property
    def is_admin(self) -> bool:
        """True for a user with the admin role."""
        return self.kind == "user" and self.role == "admin"

    @property
    def whole_territory(self) -> bool:
        """True when the scope has no root (admin, or a key not bound to a subtree)."""
        return self.authenticated and (self.is_admin or self.grid_id is None)

    def has(self, scope: str) -> bool:
        """True when the principal holds ``scope``."""
        return scope in self.scopes

    def in_scope(self, grid_path: Sequence[int] | None) -> bool:
        """True when a grid path (street first) lies in this principal's subtree.

        Admins and unbound keys cover everything; anonymous visitors have no scope at all.
        """
        if not self.authenticated:
            return False
        if self.whole_territory:
            return True
        if not grid_path:
            return False
        roots = self.scope_ids or frozenset({self.grid_id})
        return any(g in roots for g in grid_path)

    def can(self, scope: str, grid_path: Sequence[int] | None) -> bool:
        """True when the principal holds ``scope`` and the object lies in its subtree."""
        return self.has(scope) and self.in_scope(grid_path)

    def can_work_on(
        self, grid_path: Sequence[int] | None, assignee_person_id: int | None, scope: str = "write"
    ) -> bool:
        """Scope ``scope`` on a hazard: inside the subtree, or assigned to this person."""
        if not self.has(scope):
            return False
        if self.in_scope(grid_path):
            return True
        return self.person_id is not None and assignee_person_id == self.person_id

    def scope_filter(self) -> list[int] | None:
        """Bound parameter for ``grid_path && CAST(:scope AS bigint[])``; None = everything."""
        if self.whole_territory:
            return None
        return sorted(self.scope_ids or ({self.grid_id} if self.grid_id else set()))

    def audit_name(self) -> str:
        """How the audit log names this principal."""
        return self.name

    def tag(self) -> str:
        """How a write records its caller: 'user:12', 'api_key:3' or 'anonymous'."""
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


ANONYMOUS = Principal(
    kind="anonymous",
    id=None,
    name="匿名",
    role=None,
    scopes=ANONYMOUS_SCOPES,
    grid_id=None,
    grid_path=(),
    person_id=None,
)
