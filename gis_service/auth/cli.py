"""``gis-service users …`` and ``gis-service keys …``: accounts and API keys from the shell.

Commands run as the system (audit principal "system") on the server, so they work before any
admin exists: ``gis-service users create admin --role admin`` makes the first one.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from gis_service.auth.roles import KEY_SCOPES, ROLES
from gis_service.console import fail, print_rows, run_on_database

users_app = typer.Typer(
    help="User accounts: create, update, list, disable, unlock.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="API keys for other systems: create, list, revoke.", no_args_is_help=True
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _person_of(conn: Any, ref: str, grid: str | None, user_id: int | None = None) -> int:
    """The person ``ref`` (an id, or a name within the grid's subtree), checked for the
    account: they exist, belong to the grid's subtree and have no other account."""
    from gis_service.auth import admin
    from gis_service.people.service import resolve_person

    person_id = resolve_person(conn, None, ref, grid)
    admin.check_account_person(conn, None, person_id, grid, user_id)
    return person_id


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
        str | None,
        typer.Option(
            help="The person the account belongs to (hazards are assigned to them): their id "
            "from `gis-service people find`, or their exact name within the grid's subtree."
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Create a user; prompts for the password (at least 10 characters)."""
    from gis_service.auth import admin

    if role not in ROLES:
        fail(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    # The person is checked before the password is asked for: a wrong one fails at once.
    person_id = run_on_database(_person_of, person, grid) if person is not None else None
    password = _read_password(password_stdin)
    user = run_on_database(
        admin.create_user,
        None,
        username=username,
        display_name=name or username,
        password=password,
        role=role,
        grid=grid,
        person_id=person_id,
    )
    scope = f"grid {user['grid_code']} ({user['grid_name']})" if user["grid_id"] else "everything"
    linked = f", person {user['person_id']} ({user['person_name']})" if user["person_id"] else ""
    typer.echo(
        f"created user {user['username']} (id {user['id']}), role {role}, scope {scope}{linked}"
    )


@users_app.command("update")
def users_update(
    username: Annotated[str, typer.Argument(help="Username or id.")],
    role: Annotated[str | None, typer.Option(help=f"New role: {', '.join(ROLES)}.")] = None,
    grid: Annotated[str | None, typer.Option(help="New scope grid (id or code).")] = None,
    person: Annotated[
        str | None,
        typer.Option(help="Link this person (id, or exact name in the scope); 'none' unlinks."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="New display name.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
) -> None:
    """Change a user's role, scope grid, linked person or display name."""
    from gis_service.auth import admin

    changes: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            fail(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        changes["role"] = role
    if grid is not None:
        changes["grid"] = grid
    if name is not None:
        changes["display_name"] = name
    if not changes and person is None:
        fail("nothing to change: give --role, --grid, --person or --name")

    def update(conn: Any) -> dict[str, Any]:
        if person is not None:
            if person.strip().lower() == "none":
                changes["person_id"] = None
            else:
                user = admin.find_user(conn, username)
                scope = grid if grid is not None else user["grid_id"]
                changes["person_id"] = _person_of(conn, person, scope, user["id"])
        return admin.update_user(conn, None, username, changes, None, reason)

    user = run_on_database(update)
    scope = f"grid {user['grid_code']} ({user['grid_name']})" if user["grid_id"] else "everything"
    linked = f"person {user['person_id']} ({user['person_name']})" if user["person_id"] else "none"
    typer.echo(
        f"updated user {user['username']}: role {user['role']}, scope {scope}, "
        f"display name {user['display_name']}, person {linked}"
    )


@users_app.command("list")
def users_list(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include disabled users.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users with role, scope grid, state and last login."""
    from gis_service.auth import admin

    rows = run_on_database(admin.list_users, role, None if all_ else True, 10000, 0)
    columns = ["id", "username", "display_name", "role", "grid_code", "active", "last_login_at"]
    print_rows(rows, columns, as_json)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Disable a user and end all their sessions and tokens."""
    from gis_service.auth import admin

    user = run_on_database(admin.set_active, None, username, False, None)
    typer.echo(f"disabled user {user['username']}; their sessions and tokens are revoked")


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Re-enable a disabled user."""
    from gis_service.auth import admin

    user = run_on_database(admin.set_active, None, username, True, None)
    typer.echo(f"enabled user {user['username']}")


@users_app.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="Username or id.")]) -> None:
    """Clear a lock after too many failed logins."""
    from gis_service.auth import admin

    user = run_on_database(admin.unlock, None, username, None)
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
    user = run_on_database(admin.set_password, None, username, password, None)
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

    key, secret = run_on_database(
        admin.create_key, None, name=name, scopes=scope or ["read"], grid=grid
    )
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

    rows = run_on_database(admin.list_keys, all_, 10000, 0)
    columns = ["id", "prefix", "name", "scopes", "grid_code", "revoked_at", "last_used_at"]
    print_rows(rows, columns, as_json)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or prefix (gsk_xxxxxxxx).")],
) -> None:
    """Revoke an API key at once."""
    from gis_service.auth import admin

    row = run_on_database(admin.revoke_key, None, key, None)
    typer.echo(f"revoked API key {row['id']} ({row['prefix']}) '{row['name']}'")
