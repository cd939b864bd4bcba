"""``gis-service people …``: find people and their grids from the shell (run as the system)."""

from __future__ import annotations

from typing import Annotated

import typer

from gis_service.console import print_rows, run_on_database

people_app = typer.Typer(help="People and their roles on grids.", no_args_is_help=True)


@people_app.command("find")
def people_find(
    term: Annotated[
        str, typer.Argument(help="A name (or part of one), phone digits, or a grid code.")
    ],
    all_: Annotated[
        bool, typer.Option("--all", help="Include people no longer in service.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the people matching a name, phone or grid, with their ids and grids (use the id
    with `users create --person`)."""
    from gis_service.people import service

    people = run_on_database(service.find, None, term, None if all_ else True)
    rows = [
        {
            "id": p["id"],
            "name": p["name"],
            "mobile": p["mobile_phone"],
            "work_phone": p["work_phone"],
            "grids (code name role)": service.roles_text(p),
            "account": (p["account"] or {}).get("username"),
        }
        for p in people
    ]
    if as_json:
        print_rows(people, [], True)
        return
    print_rows(rows, list(rows[0]) if rows else ["id"], False)
