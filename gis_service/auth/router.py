"""Thin HTTP routes: log in and out, bearer tokens, and the admin's users, keys and audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from gis_service.auth import admin, ratelimit, schemas, service
from gis_service.auth.deps import (
    ADMIN_ONLY,
    CSRF_COOKIE,
    SESSION_COOKIE,
    acting_as,
    client_ip,
    credentials_not_needed,
    require,
)
from gis_service.auth.grants import MANAGER_ROLES
from gis_service.auth.principal import Principal
from gis_service.auth.roles import ROLES
from gis_service.catalog.schemas import X_DECLARED
from gis_service.clock import Clock
from gis_service.config import Settings
from gis_service.errors import DomainError, Forbidden, Unauthorized
from gis_service.http.deps import (
    ClockDep,
    Conn,
    EngineDep,
    Instant,
    SettingsDep,
    id_path,
    id_query,
    reject_unknown_query,
)
from gis_service.http.errors import LOG_IN_FIRST, error_docs
from gis_service.plaintext import TEXT_PATTERN

router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])

Id = Annotated[int, id_path()]
Admin = Annotated[Principal, Depends(ADMIN_ONLY)]
Anyone = require(allow_anonymous=True)
LoggedIn = require(roles=set(ROLES))


_LOGIN_ERRORS = error_docs(
    (401, "login_failed", "Wrong username or password."),
    (403, "account_disabled", "This account is disabled."),
    (423, "account_locked", "Locked after too many failed logins."),
    (429, "too_many_requests", "Too many tries: wait (Retry-After) and try again."),
)
_ADMIN_ERRORS = error_docs(
    LOG_IN_FIRST,
    (403, "forbidden", "Admins only."),
)
# The pages of the admin lists (users, keys, audit).
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _limit_logins(request: Request, settings: Settings, engine: Engine, clock: Clock) -> None:
    ratelimit.enforce(
        engine,
        f"login:{client_ip(request)}",
        settings.login_ip_per_minute,
        60,
        what="login attempts",
        clock=clock,
    )


def _set_session_cookies(
    response: Response, settings: Settings, token: str, csrf: str, max_age: int
) -> None:
    # HttpOnly: page scripts cannot read the session; SameSite=Lax: other sites' forms do
    # not carry it; the CSRF cookie is readable on purpose (double submit via X-CSRF-Token).
    common = {"path": "/", "secure": settings.cookie_secure, "samesite": "lax", "max_age": max_age}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)


def _clear_session_cookies(response: Response, settings: Settings) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", secure=settings.cookie_secure, httponly=name == SESSION_COOKIE
        )


@router.post(
    "/auth/login",
    tags=["auth"],
    response_model=schemas.LoginResponse,
    responses=_LOGIN_ERRORS,
    summary="Log in: session cookie and CSRF token",
    dependencies=[Depends(credentials_not_needed())],
)
def login(
    body: schemas.LoginRequest,
    request: Request,
    response: Response,
    conn: Conn,
    settings: SettingsDep,
    engine: EngineDep,
    clock: ClockDep,
) -> schemas.LoginResponse:
    """Check the password and start a session: sets the HttpOnly ``gis_session`` cookie and
    the ``gis_csrf`` cookie. Writes made with the cookie must send the CSRF token in the
    ``X-CSRF-Token`` header. Repeated failures are slowed down (429), then lock the account
    for a while (423)."""
    _limit_logins(request, settings, engine, clock)
    issued = service.login(
        conn,
        settings,
        body.username,
        body.password,
        kind="session",
        ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:300] or None,
        clock=clock,
    )
    assert issued.csrf_token is not None
    max_age = int((issued.expires_at - issued.created_at).total_seconds())
    _set_session_cookies(response, settings, issued.token, issued.csrf_token, max_age)
    response.headers["Cache-Control"] = "no-store"
    return schemas.LoginResponse(
        user=schemas.UserOut(**issued.user),
        csrf_token=issued.csrf_token,
        expires_at=issued.expires_at,
    )


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=204,
    summary="Log out: end this session or bearer token",
    response_class=Response,
)
def logout(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(Anyone)],
) -> Response:
    """Revoke the session (or bearer token) this request was made with and clear the
    cookies. Calling it when not logged in does nothing."""
    if principal.kind == "user" and principal.token_id is not None:
        service.revoke_token(conn, principal, principal.token_id, client_ip(request))
    response = Response(status_code=204)
    _clear_session_cookies(response, settings)
    return response


@router.get("/auth/me", tags=["auth"], response_model=schemas.Me, summary="Who am I")
def me(principal: Annotated[Principal, Depends(Anyone)]) -> schemas.Me:
    """The caller as the service sees them: anonymous, a user with role and scope, or an API
    key with its scopes."""
    return schemas.Me(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        scopes=sorted(principal.scopes),
        grid_id=principal.grid_id,
        grid_path=list(principal.grid_path),
        person_id=principal.person_id,
        via=principal.via,
    )


@router.post(
    "/auth/tokens",
    tags=["auth"],
    status_code=201,
    response_model=schemas.TokenCreated,
    responses=_LOGIN_ERRORS,
    summary="Create a bearer token",
)
def create_token(
    body: schemas.TokenRequest,
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    engine: EngineDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(Anyone)],
) -> schemas.TokenCreated:
    """A revocable bearer token for scripts and apps: either send ``username`` and
    ``password`` (counted like logins), or call while logged in. The token is shown once."""
    ttl = body.ttl_days * 86400 if body.ttl_days else None
    ip = client_ip(request)
    ua = (request.headers.get("user-agent") or "")[:300] or None
    if body.username is not None and body.password is not None:
        _limit_logins(request, settings, engine, clock)
        issued = service.login(
            conn,
            settings,
            body.username,
            body.password,
            kind="bearer",
            token_name=body.name,
            ttl_seconds=ttl,
            ip=ip,
            user_agent=ua,
            clock=clock,
        )
    elif principal.kind == "user":
        issued = service.create_bearer_for(
            conn,
            settings,
            principal,
            name=body.name,
            ttl_seconds=ttl,
            ip=ip,
            user_agent=ua,
            clock=clock,
        )
    elif principal.kind == "api_key":
        raise Forbidden("An API key cannot create user tokens.")
    else:
        raise Unauthorized("Send username and password, or call this while logged in.")
    return schemas.TokenCreated(
        id=issued.id,
        token=issued.token,
        name=body.name,
        created_at=issued.created_at,
        expires_at=issued.expires_at,
        user=schemas.UserOut(**issued.user),
    )


@router.get(
    "/auth/tokens",
    tags=["auth"],
    response_model=list[schemas.TokenOut],
    responses=_ADMIN_ERRORS,
    summary="My sessions and bearer tokens",
)
def list_tokens(
    conn: Conn,
    principal: Annotated[Principal, Depends(LoggedIn)],
    clock: ClockDep,
    include_revoked: Annotated[bool, Query(description="Also revoked and expired ones.")] = False,
) -> list[schemas.TokenOut]:
    """The caller's sessions and tokens, newest first (never the secrets)."""
    assert principal.id is not None
    rows = service.list_tokens(conn, principal.id, include_revoked, clock)
    return [schemas.TokenOut(**r) for r in rows]


@router.delete(
    "/auth/tokens/{token_id}",
    tags=["auth"],
    response_model=schemas.Revoked,
    responses=_ADMIN_ERRORS,
    summary="Revoke a bearer token or session",
)
def revoke_token(
    token_id: Id,
    request: Request,
    conn: Conn,
    principal: Annotated[Principal, Depends(LoggedIn)],
) -> schemas.Revoked:
    """Revoke one of your tokens at once (an admin may revoke anyone's). Another user's token
    id is answered 404, as if it did not exist."""
    return schemas.Revoked(**service.revoke_token(conn, principal, token_id, client_ip(request)))


# ---- users and keys (admins everywhere, street staff in their subtree) --------------------
MANAGERS = require(roles=MANAGER_ROLES)
Manager = Annotated[Principal, Depends(MANAGERS)]
Managing = acting_as(MANAGERS)
_MANAGE_ERRORS = error_docs(
    LOG_IN_FIRST,
    (403, "forbidden", "Admins and street staff only."),
    (403, "role_too_high", "A role above your own."),
    (403, "scope_too_wide", "A scope wider than your own."),
    (404, "not_found", "No such account or key in your scope."),
    (409, "conflict", "The username is taken."),
    (409, "person_already_linked", "The person has an account already."),
    (409, "own_account", "You cannot change your own role, scope or state."),
    (422, "invalid_parameter", "A field is invalid."),
    (422, "person_outside_scope", "The person does not belong to the account's scope."),
)


def _managed(
    method: str, path: str, model: Any, summary: str, status_code: int | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A route of the account and key administration: its tag and errors declared once."""
    return router.api_route(
        path,
        methods=[method],
        status_code=status_code,
        tags=["admin"],
        response_model=model,
        responses=_MANAGE_ERRORS,
        summary=summary,
    )


def _user_out(user: dict[str, Any]) -> schemas.UserOut:
    return schemas.UserOut(**user)


@_managed("GET", "/users", schemas.UserList, "List accounts")
def list_users(
    conn: Conn,
    principal: Manager,
    role: Annotated[schemas.Role | None, Query(description="Only this role.")] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or disabled.")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Part of the username or a name.",
            json_schema_extra={X_DECLARED: {"pattern": TEXT_PATTERN}},  # clean_text's rule
        ),
    ] = None,
    # min_length: an empty grid= named no grid and failed an assertion (500, schemathesis)
    grid: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Accounts scoped in this grid's subtree (its id or code).",
            json_schema_extra={X_DECLARED: {"pattern": TEXT_PATTERN}},  # resolve_grid's rule
        ),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> schemas.UserList:
    """Accounts of your subtree (all of them for admins) by username, with role, scope grid,
    linked person, lock state and last login."""
    rows = admin.list_users(conn, role, active, limit, offset, principal=principal, q=q, grid=grid)
    return schemas.UserList(users=[_user_out(r) for r in rows], limit=limit, offset=offset)


@_managed("POST", "/users", schemas.UserOut, "Create an account", 201)
def create_user(body: schemas.UserCreate, act: Managing) -> schemas.UserOut:
    """A new account with a role no higher than yours, scoped to a grid of your subtree, and
    optionally linked to a person who belongs to that scope; the password is stored as an
    argon2 hash."""
    user = admin.create_user(
        act.conn,
        act.principal,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        role=body.role,
        grid=body.grid,
        person_id=body.person_id,
        ip=act.ip,
        reason=body.reason,
    )
    return _user_out(user)


@_managed("GET", "/users/{user_id}", schemas.UserOut, "One account")
def get_user(user_id: Id, conn: Conn, principal: Manager) -> schemas.UserOut:
    """One account of your subtree."""
    return _user_out(admin.get_managed_user(conn, principal, user_id))


@_managed("PATCH", "/users/{user_id}", schemas.UserOut, "Change an account")
def update_user(user_id: Id, body: schemas.UserPatch, act: Managing) -> schemas.UserOut:
    """Display name, role, scope grid or linked person (null unlinks). The new role and scope
    may not exceed yours; nobody changes their own role or scope."""
    user = admin.update_user(act.conn, act.principal, user_id, body.changes(), act.ip, body.reason)
    return _user_out(user)


@_managed(
    "POST", "/users/{user_id}/password", schemas.PasswordResetOut, "Reset an account's password"
)
def reset_password(user_id: Id, body: schemas.PasswordReset, act: Managing) -> JSONResponse:
    """Sets the password given, or makes a temporary one and returns it (once); unlocks the
    account and ends all its sessions and tokens."""
    user, made = admin.reset_password(
        act.conn, act.principal, user_id, body.password, act.ip, body.reason
    )
    out = schemas.PasswordResetOut(user=_user_out(user), password=made)
    return JSONResponse(out.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


def _user_action(action: str, summary: str, doc: str) -> None:
    def handler(
        user_id: Id, act: Managing, body: schemas.UserAction | None = None
    ) -> schemas.UserOut:
        conn, principal, ip = act.conn, act.principal, act.ip
        reason = body.reason if body else None
        if action == "unlock":
            user = admin.unlock(conn, principal, user_id, ip, reason)
        else:
            user = admin.set_active(conn, principal, user_id, action == "enable", ip, reason)
        return _user_out(user)

    handler.__doc__ = doc
    handler.__name__ = f"{action}_user"
    _managed("POST", f"/users/{{user_id}}/{action}", schemas.UserOut, summary)(handler)


_user_action(
    "disable", "Disable an account", "Disable the account and end all its sessions and tokens."
)
_user_action("enable", "Enable an account", "Re-enable a disabled account.")
_user_action("unlock", "Unlock an account", "Clear the failed-login count and the lock.")


@_managed("GET", "/keys", schemas.KeyList, "List API keys")
def list_keys(
    conn: Conn,
    principal: Manager,
    include_revoked: Annotated[bool, Query(description="Also revoked keys.")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> schemas.KeyList:
    """Keys of your subtree (all of them for admins) with their scopes, subtree and when each
    was last used (never the secret)."""
    rows = admin.list_keys(conn, include_revoked, limit, offset, principal=principal)
    return schemas.KeyList(keys=[schemas.KeyOut(**r) for r in rows], limit=limit, offset=offset)


@_managed("POST", "/keys", schemas.KeyCreated, "Create an API key", 201)
def create_key(body: schemas.KeyCreate, act: Managing) -> JSONResponse:
    """A key for another system (12345 hotline, 一网通办, a mini program), with scopes you hold
    and bound to a grid of your subtree (admins may leave it unbound). The secret is in this
    response only; the service stores its SHA-256 digest."""
    key, secret = admin.create_key(
        act.conn,
        act.principal,
        name=body.name,
        scopes=list(body.scopes),
        grid=body.grid,
        ip=act.ip,
        reason=body.reason,
    )
    out = schemas.KeyCreated(**key, key=secret)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


@_managed("DELETE", "/keys/{key_id}", schemas.KeyOut, "Revoke an API key")
def revoke_key(key_id: Id, act: Managing) -> schemas.KeyOut:
    """Revoke at once; requests with the key get 401 from now on."""
    return schemas.KeyOut(**admin.revoke_key(act.conn, act.principal, key_id, act.ip))


# ---- audit (admin) -----------------------------------------------------------------------
@router.get(
    "/audit",
    tags=["admin"],
    response_model=schemas.AuditPage,
    responses=_ADMIN_ERRORS,
    summary="The audit log",
)
def list_audit(
    conn: Conn,
    _: Admin,
    grid: Annotated[int | None, id_query("Writes in this grid's subtree.")] = None,
    object_type: Annotated[
        str | None, Query(max_length=64, description="hazard, user, api_key, …")
    ] = None,
    object_id: Annotated[str | None, Query(max_length=64, description="The object's id.")] = None,
    user: Annotated[
        str | None, Query(max_length=64, description="Writes by this user (id or username).")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="e.g. create, dispatch.")
    ] = None,
    since: Annotated[Instant | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Before (ISO 8601).")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> schemas.AuditPage:
    """Every write with who made it, before and after, when and from which address; newest
    first."""
    user_id: int | None = None
    if user:
        try:
            user_id = admin.find_user(conn, user)["id"]
        except DomainError:
            return schemas.AuditPage(entries=[], limit=limit, offset=offset)
    rows = admin.list_audit(
        conn,
        grid=grid,
        object_type=object_type,
        object_id=object_id,
        user_id=user_id,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return schemas.AuditPage(
        entries=[schemas.AuditEntry(**r) for r in rows], limit=limit, offset=offset
    )
