"""Who may call a route, as data: the rules ``require(...)`` enforces (gis_service.auth.deps),
the OpenAPI document shows and the permission matrix test checks.

- anonymous visitors pass only when ``allow_anonymous``; otherwise 401;
- a user passes when their role is in ``roles`` (if given) and, unless the route is open to
  anonymous visitors too, their role grants every scope in ``scopes``; otherwise 403;
- an API key passes when ``roles`` is not given and it holds every scope in ``scopes``
  (keys are scoped explicitly, even on routes anonymous visitors may call); otherwise 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLE_NAMES_ZH, ROLE_SCOPES, ROLES
from gis_service.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Access:
    """Who may call a route: what ``require(...)`` enforces and the docs show."""

    roles: frozenset[str] | None = None
    scopes: frozenset[str] | None = None
    allow_anonymous: bool = False

    def user_allowed(self, role: str) -> bool:
        """True when a user of ``role`` passes."""
        if self.roles is not None and role not in self.roles:
            return False
        return self.allow_anonymous or not self.scopes or self.scopes <= ROLE_SCOPES[role]

    def key_allowed(self, key_scopes: Iterable[str] | None = None) -> bool:
        """True when an API key with ``key_scopes`` (None = the right ones) passes."""
        if self.roles is not None:
            return False
        if key_scopes is None or not self.scopes:
            return True
        return self.scopes <= frozenset(key_scopes)

    def who(self) -> list[str]:
        """The callers, as listed in the OpenAPI ``x-roles`` of the route."""
        out = ["anonymous"] if self.allow_anonymous else []
        out += [r for r in ROLES if self.user_allowed(r)]
        if self.key_allowed():
            out.append("api_key")
        return out

    def sentence(self) -> str:
        """'Who may call: …' for the route's description."""
        parts = []
        if self.allow_anonymous:
            parts.append("anyone, including anonymous visitors")
        roles = [r for r in ROLES if self.user_allowed(r)]
        if roles and not self.allow_anonymous:
            if len(roles) == len(ROLES):
                parts.append("any logged-in user")
            else:
                parts.append(
                    "users with role " + ", ".join(f"{r} ({ROLE_NAMES_ZH[r]})" for r in roles)
                )
        if self.key_allowed():
            scopes = ", ".join(sorted(self.scopes or ())) or "any scope"
            parts.append(f"API keys with scope {scopes}")
        return "Who may call: " + ("; ".join(parts) or "nobody") + "."

    def check(self, principal: Principal) -> Principal:
        """The principal when it passes; 401 or 403 when not."""
        if principal.kind == "anonymous":
            if self.allow_anonymous:
                return principal
            raise Unauthorized(
                "Log in first (POST /api/v1/auth/login), or send 'Authorization: Bearer <token>' "
                "or an X-API-Key header."
            )
        if principal.kind == "user":
            if principal.role is not None and self.user_allowed(principal.role):
                return principal
            raise Forbidden(
                f"Your role ({principal.role}) may not do this. {self.sentence()}",
                allowed=self.who(),
            )
        if self.key_allowed(principal.scopes):
            return principal
        missing = sorted((self.scopes or frozenset()) - principal.scopes)
        raise Forbidden(
            f"This API key may not do this. {self.sentence()}",
            allowed=self.who(),
            missing_scopes=missing,
        )

    def merge(self, other: Access) -> Access:
        """Both must pass (a router-level and a route-level declaration)."""
        roles = (
            other.roles
            if self.roles is None
            else self.roles
            if other.roles is None
            else self.roles & other.roles
        )
        scopes = (self.scopes or frozenset()) | (other.scopes or frozenset())
        return Access(roles, scopes or None, self.allow_anonymous and other.allow_anonymous)
