"""Who is calling, as FastAPI dependencies: the Principal found from a session cookie, a
bearer token or an API key, and ``require(...)``, the dependency every route declares to say
who may call it (the rules themselves are gis_service.auth.access)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gis_service.auth import ratelimit
from gis_service.auth.access import Access
from gis_service.auth.credentials import authenticate_api_key, authenticate_token
from gis_service.auth.principal import ANONYMOUS, Principal
from gis_service.auth.roles import ROLES
from gis_service.auth.tokens import MAX_SECRET_LENGTH, digest
from gis_service.clock import Clock
from gis_service.errors import Forbidden, Unauthorized
from gis_service.http.deps import (
    ClockDep,
    Conn,
    EngineDep,
    SettingsDep,
    get_clock,
    settings_of,
)

SESSION_COOKIE = "gis_session"
CSRF_COOKIE = "gis_csrf"
CSRF_HEADER = "X-CSRF-Token"
API_KEY_HEADER = "X-API-Key"
API_KEY_FIELD = "api_key"  # query or form field, as Open311 GeoReport v2 clients send it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_ip(request: Request) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For behind a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    trusted = set(settings_of(request).trusted_proxies)
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


async def client_ip_dependency(request: Request) -> str:
    """The caller's address, as a dependency."""
    return client_ip(request)


ClientIp = Annotated[str, Depends(client_ip_dependency)]


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
        raise Forbidden(
            f"A request made with the session cookie must send the {CSRF_HEADER} header with "
            f"the value of the {CSRF_COOKIE} cookie (given at login).",
            code="csrf_failed",
        )


async def current_principal(request: Request) -> Principal:
    """The caller: X-API-Key / api_key, else a Bearer token, else the session cookie
    (with a CSRF check on unsafe methods), else anonymous.

    A key or bearer token that is presented but invalid is 401, never a silent downgrade;
    a stale session cookie just means anonymous (the public map keeps working).
    """
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if presents_credentials(request):
        # Checking credentials reads (and now and then writes) the database through the
        # synchronous engine: off the event loop, on a connection of its own, so that the
        # async routes take none for anonymous callers. Token expiry is judged by the app's
        # clock (the database's, unless a test's).
        clock = await get_clock(request)
        principal = await run_in_threadpool(_resolve_on_own_connection, request, clock)
    else:
        # Most public-map requests carry nothing to check; they skip the thread hand-off.
        principal = ANONYMOUS
    request.state.principal = principal
    return principal


def presents_credentials(request: Request) -> bool:
    """Whether the request carries anything _resolve would look at."""
    return bool(
        request.headers.get(API_KEY_HEADER)
        or request.query_params.get(API_KEY_FIELD)
        or _form_api_key(request)
        or request.headers.get("authorization")
        or request.cookies.get(SESSION_COOKIE)
    )


def _resolve_on_own_connection(request: Request, clock: Clock) -> Principal:
    with request.app.state.engine.connect() as conn:
        return _resolve(request, conn, clock)


def _resolve(request: Request, conn: Connection, clock: Clock) -> Principal:
    key = (
        request.headers.get(API_KEY_HEADER)
        or request.query_params.get(API_KEY_FIELD)
        or _form_api_key(request)
    )
    if key:
        return authenticate_api_key(conn, key.strip(), client_ip(request))
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
        found = authenticate_token(conn, credentials.strip(), "bearer", client_ip(request), clock)
        if found is None:
            raise Unauthorized("The bearer token is not valid, has expired or was revoked.")
        return found[0]
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = authenticate_token(conn, cookie, "session", client_ip(request), clock)
        if found is not None:
            principal, csrf_hash = found
            if request.method not in SAFE_METHODS:
                _check_csrf(request, csrf_hash)
            return principal
    return ANONYMOUS


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


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


@dataclass(frozen=True)
class Acting:
    """What a write needs: its connection, the caller, and their address for the audit row."""

    conn: Connection
    principal: Principal
    ip: str


def acting_as(access: Callable[..., Principal]) -> Any:
    """A named dependency (``Annotated[Acting, …]``) for the write routes ``access`` admits, so
    that each takes one parameter instead of a connection, a principal and an address."""

    async def dependency(conn: Conn, principal: Principal, ip: ClientIp) -> Acting:
        return Acting(conn, principal, ip)

    # Set as an object: FastAPI resolves string annotations in the module's globals, where
    # this call's ``access`` is not.
    dependency.__annotations__["principal"] = Annotated[Principal, Depends(access)]
    return Annotated[Acting, Depends(dependency)]


def limit_anonymous_reports(
    request: Request,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    engine: EngineDep,
    clock: ClockDep,
) -> None:
    """Anonymous hazard reports: at most ``anon_reports_per_hour`` per client address.

    Staff and API keys are not limited here (keys are accountable by name).
    """
    if principal.authenticated:
        return
    ratelimit.enforce(
        engine,
        f"report:{client_ip(request)}",
        settings.anon_reports_per_hour,
        3600,
        what="anonymous hazard reports",
        clock=clock,
    )
