"""Who is calling: the Principal, found from a session cookie, a bearer token or an API key,
and ``require(...)``, the dependency every route declares to say who may call it.

Rules of ``require(roles=, scopes=, allow_anonymous=)``:

- anonymous visitors pass only when ``allow_anonymous``; otherwise 401;
- a user passes when their role is in ``roles`` (if given) and, unless the route is open to
  anonymous visitors too, their role grants every scope in ``scopes``; otherwise 403;
- an API key passes when ``roles`` is not given and it holds every scope in ``scopes``
  (keys are scoped explicitly, even on routes anonymous visitors may call); otherwise 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gis_service.auth import sql
from gis_service.auth.roles import ANONYMOUS_SCOPES, ROLE_SCOPES, ROLES
from gis_service.auth.tokens import MAX_SECRET_LENGTH, digest
from gis_service.deps import Conn
from gis_service.errors import ApiError, forbidden, unauthorized

SESSION_COOKIE = "gis_session"
CSRF_COOKIE = "gis_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_KEY_HEADER = "X-API-Key"
API_KEY_FIELD = "api_key"  # query or form field, as Open311 GeoReport v2 clients send it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is written at most this often per token or key, so reads stay read-only.
TOUCH_EVERY_SECONDS = 60

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


def client_ip(request: Request) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For behind a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = set(request.app.state.settings.trusted_proxies)
    if peer not in trusted:
        return peer
    forwarded = [
        p.strip() for p in request.headers.get("x-forwarded-for", "").split(",") if p.strip()
    ]
    # Walk from the right: the nearest hop not ours is the client as our proxies saw it.
    for hop in reversed(forwarded):
        if hop not in trusted:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def _user_agent(request: Request) -> str | None:
    ua = request.headers.get("user-agent")
    return ua[:300] if ua else None


def _scope_fields(row: Any) -> dict[str, Any]:
    path = tuple(int(x) for x in (row.scope_path or ()))
    ids = frozenset(int(x) for x in (row.scope_ids or ()))
    grid_id = row.scope_grid_id if row.scope_grid_id is not None else row.grid_id
    return {"grid_id": grid_id, "grid_path": path, "scope_ids": ids}


def _touch(conn: Connection, statement: Any, row_id: int, ip: str | None) -> None:
    conn.execute(statement, {"id": row_id, "ip": ip, "every": TOUCH_EVERY_SECONDS})


def _stale(last_used_at: datetime | None) -> bool:
    """True when last_used_at is due to be written again (the UPDATE checks once more)."""
    if last_used_at is None:
        return True
    return (datetime.now(UTC) - last_used_at).total_seconds() >= TOUCH_EVERY_SECONDS


def _in_transaction(conn: Connection, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in its own committed transaction when the connection is idle, so the
    route's code (which may ``conn.begin()`` for its write) finds a clean connection."""
    if conn.in_transaction():
        return fn()
    with conn.begin():
        return fn()


def authenticate_api_key(conn: Connection, raw_key: str, request: Request) -> Principal:
    """The principal of an API key; 401 when it is unknown or revoked."""
    if not raw_key or len(raw_key) > MAX_SECRET_LENGTH:
        raise unauthorized("The API key is not valid.")

    def run() -> Principal:
        row = conn.execute(sql.KEY_PRINCIPAL, {"hash": digest(raw_key)}).first()
        if row is None:
            raise unauthorized("The API key is not valid or has been revoked.")
        if _stale(row.last_used_at):
            _touch(conn, sql.TOUCH_KEY, row.id, client_ip(request))
        return Principal(
            kind="api_key",
            id=row.id,
            name=row.name,
            role=None,
            scopes=frozenset(row.scopes),
            person_id=None,
            via="api_key",
            **_scope_fields(row),
        )

    return _in_transaction(conn, run)


def authenticate_token(
    conn: Connection, raw: str, kind: Literal["session", "bearer"], request: Request
) -> tuple[Principal, bytes | None] | None:
    """The user principal of a session or bearer token and its CSRF digest, or None."""
    if not raw or len(raw) > MAX_SECRET_LENGTH:
        return None

    def run() -> tuple[Principal, bytes | None] | None:
        row = conn.execute(sql.TOKEN_PRINCIPAL, {"hash": digest(raw), "kind": kind}).first()
        if row is None:
            return None
        if _stale(row.last_used_at):
            _touch(conn, sql.TOUCH_TOKEN, row.token_id, client_ip(request))
        principal = Principal(
            kind="user",
            id=row.id,
            name=row.display_name,
            role=row.role,
            scopes=ROLE_SCOPES[row.role],
            person_id=row.person_id,
            token_id=row.token_id,
            via=kind,
            **_scope_fields(row),
        )
        return principal, (bytes(row.csrf_hash) if row.csrf_hash is not None else None)

    return _in_transaction(conn, run)


def _form_api_key(request: Request) -> str | None:
    # A route with Form parameters has its form parsed (and cached on the request) before
    # its dependencies run; reading the cache keeps this dependency synchronous.
    form = getattr(request, "_form", None)
    if form is None:
        return None
    value = form.get(API_KEY_FIELD)
    return value if isinstance(value, str) else None


def _check_csrf(request: Request, csrf_hash: bytes | None) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if (
        not sent
        or len(sent) > MAX_SECRET_LENGTH
        or csrf_hash is None
        or not hmac.compare_digest(digest(sent), csrf_hash)
    ):
        raise ApiError(
            403,
            "csrf_failed",
            f"A request made with the session cookie must send the {CSRF_HEADER} header with "
            f"the value of the {CSRF_COOKIE} cookie (given at login).",
        )


async def current_principal(request: Request, conn: Conn) -> Principal:
    """The caller: X-API-Key / api_key, else a Bearer token, else the session cookie
    (with a CSRF check on unsafe methods), else anonymous.

    A key or bearer token that is presented but invalid is 401, never a silent downgrade;
    a stale session cookie just means anonymous (the public map keeps working).
    """
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if _presents_credentials(request):
        # Checking credentials reads the database: do it off the event loop.
        principal = await run_in_threadpool(_resolve, request, conn)
    else:
        # Most public-map requests carry nothing to check; they skip the thread hand-off.
        principal = ANONYMOUS
    request.state.principal = principal
    return principal


def _presents_credentials(request: Request) -> bool:
    """Whether the request carries anything _resolve would look at."""
    return bool(
        request.headers.get(API_KEY_HEADER)
        or request.query_params.get(API_KEY_FIELD)
        or _form_api_key(request)
        or request.headers.get("authorization")
        or request.cookies.get(SESSION_COOKIE)
    )


def _resolve(request: Request, conn: Connection) -> Principal:
    key = (
        request.headers.get(API_KEY_HEADER)
        or request.query_params.get(API_KEY_FIELD)
        or _form_api_key(request)
    )
    if key:
        return authenticate_api_key(conn, key.strip(), request)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise unauthorized("The Authorization header must be 'Bearer <token>'.")
        found = authenticate_token(conn, credentials.strip(), "bearer", request)
        if found is None:
            raise unauthorized("The bearer token is not valid, has expired or was revoked.")
        return found[0]
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = authenticate_token(conn, cookie, "session", request)
        if found is not None:
            principal, csrf_hash = found
            if request.method not in SAFE_METHODS:
                _check_csrf(request, csrf_hash)
            return principal
    return ANONYMOUS


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


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
        from gis_service.auth.roles import ROLE_NAMES_ZH

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
            raise unauthorized(
                "Log in first (POST /api/v1/auth/login), or send 'Authorization: Bearer <token>' "
                "or an X-API-Key header."
            )
        if principal.kind == "user":
            if principal.role is not None and self.user_allowed(principal.role):
                return principal
            raise forbidden(
                f"Your role ({principal.role}) may not do this. {self.sentence()}",
                allowed=self.who(),
            )
        if self.key_allowed(principal.scopes):
            return principal
        missing = sorted((self.scopes or frozenset()) - principal.scopes)
        raise forbidden(
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


def require(
    *,
    roles: set[str] | frozenset[str] | None = None,
    scopes: set[str] | frozenset[str] | None = None,
    allow_anonymous: bool = False,
) -> Callable[..., Principal]:
    """A dependency returning the Principal when it may call the route (401/403 if not)."""
    unknown = set(roles or ()) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    access = Access(
        frozenset(roles) if roles is not None else None,
        frozenset(scopes) if scopes else None,
        allow_anonymous,
    )

    # async: the check is pure computation, and FastAPI would run a sync dependency in the
    # thread pool, a hand-off on every request that costs more than the check.
    async def dependency(principal: CurrentPrincipal) -> Principal:
        return access.check(principal)

    dependency.gis_access = access  # type: ignore[attr-defined]  # read by the docs and tests
    dependency.__name__ = "require_" + "_".join(access.who()).replace("-", "_")
    return dependency


def credentials_not_needed() -> Callable[..., None]:
    """A declaration for routes anyone may call that never look at credentials (login):
    the caller's cookie or token is not even resolved, so a stale one cannot get in the way."""

    async def dependency() -> None:
        return None

    dependency.gis_access = Access(allow_anonymous=True)  # type: ignore[attr-defined]
    return dependency


# The declarations most routes use.
PUBLIC_READ = require(scopes={"read"}, allow_anonymous=True)  # public map data
ANYONE = require(allow_anonymous=True)  # anyone at all; stricter route checks add to it
ADMIN_ONLY = require(roles={"admin"})
