"""``gis-service users …`` and ``gis-service keys …``: accounts and API keys from the shell.

Commands run as the system (audit principal "system") on the server, so they work before any
admin exists: ``gis-service users create admin --role admin`` makes the first one.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from gis_service.auth.roles import KEY_SCOPES, ROLES
from gis_service.console import fail
from gis_service.errors import DomainError

users_app = typer.Typer(help="User accounts: create, list, disable, unlock.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys for other systems: create, list, revoke.", no_args_is_help=True
)


def _connect():
    """A connection to a migrated database (the embedded cluster is started if needed)."""
    from sqlalchemy import inspect

    from gis_service.config import Settings
    from gis_service.db import migrate
    from gis_service.db.cluster import ClusterError
    from gis_service.db.engine import make_engine, resolve_url

    try:
        engine = make_engine(resolve_url(Settings(), start=True), pool_size=1)
    except ClusterError as exc:
        fail(str(exc))
    if not inspect(engine).has_table("users"):
        typer.echo("the database has no users table yet: applying migrations first", err=True)
        migrate.upgrade(engine)
    return engine.connect()


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    with _connect() as conn:
        try:
            return fn(conn, *args, **kwargs)
        except DomainError as exc:
            fail(exc.message)


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, default=_json_default, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("(none)")
        return

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if hasattr(value, "strftime"):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)

    table = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in table:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name: lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "viewer",
    grid: Annotated[
        str | None,
        typer.Option(help="Id or code of the grid whose subtree is the scope (not for admin)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name (default: username).")] = None,
    person: Annotated[
        int | None, typer.Option(help="Id of the user's people row (hazards are assigned to it).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Create a user; prompts for the password (at least 10 characters)."""
    from gis_service.auth import admin

    if role not in ROLES:
        fail(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    password = _read_password(password_stdin)
    user = _run(
        admin.create_user,
        None,
        username=username,
        display_name=name or username,
        password=password,
        role=role,
        grid=grid,
        person_id=person,
    )
    scope = f"grid {user['grid_code']} ({user['grid_name']})" if user["grid_id"] else "everything"
    typer.echo(f"created user {user['username']} (id {user['id']}), role {role}, scope {scope}")


@users_app.command("list")
def users_list(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include disabled users.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users with role, scope grid, state and last login."""
    from gis_service.auth import admin

    rows = _run(admin.list_users, role, None if all_ else True, 10000, 0)
    columns = ["id", "username", "display_name", "role", "grid_code", "active", "last_login_at"]
    _print_rows(rows, columns, as_json)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Disable a user and end all their sessions and tokens."""
    from gis_service.auth import admin

    user = _run(admin.set_active, None, username, False, None)
    typer.echo(f"disabled user {user['username']}; their sessions and tokens are revoked")


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Re-enable a disabled user."""
    from gis_service.auth import admin

    user = _run(admin.set_active, None, username, True, None)
    typer.echo(f"enabled user {user['username']}")


@users_app.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Clear a lock after too many failed logins."""
    from gis_service.auth import admin

    user = _run(admin.unlock, None, username, None)
    typer.echo(f"unlocked user {user['username']}")


@users_app.command("set-password")
def users_set_password(
    username: Annotated[str, typer.Argument(help="Username or id.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Set a new password; ends the user's sessions and tokens and clears any lock."""
    from gis_service.auth import admin

    password = _read_password(password_stdin)
    user = _run(admin.set_password, None, username, password, None)
    typer.echo(f"password of {user['username']} changed; their sessions and tokens are revoked")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. '12345 热线平台'.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help=f"A scope (repeat for more): {', '.join(KEY_SCOPES)}."),
    ] = None,
    grid: Annotated[
        str | None, typer.Option(help="Id or code of a grid: limit the key to its subtree.")
    ] = None,
) -> None:
    """Create an API key and print it ONCE (only its SHA-256 digest is stored)."""
    from gis_service.auth import admin

    key, secret = _run(admin.create_key, None, name=name, scopes=scope or ["read"], grid=grid)
    scope_words = f"grid {key['grid_code']}" if key["grid_id"] else "the whole territory"
    typer.echo(
        f"created API key {key['id']} ({key['prefix']}) '{key['name']}', scopes "
        f"{','.join(key['scopes'])}, on {scope_words}"
    )
    typer.echo("the key (shown only now; send it as the X-API-Key header):")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List API keys: prefix, scopes, subtree, when last used (never the secret)."""
    from gis_service.auth import admin

    rows = _run(admin.list_keys, all_, 10000, 0)
    columns = ["id", "prefix", "name", "scopes", "grid_code", "revoked_at", "last_used_at"]
    _print_rows(rows, columns, as_json)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or prefix (gsk_xxxxxxxx).")],
) -> None:
    """Revoke an API key at once."""
    from gis_service.auth import admin

    row = _run(admin.revoke_key, None, key, None)
    typer.echo(f"revoked API key {row['id']} ({row['prefix']}) '{row['name']}'")
