"""``gis-service grids check|changes|reassign``: the grids' lifecycle from the shell."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gis_service.console import fail, instant_option, prepared_database
from gis_service.grids.changes import changes
from gis_service.grids.coverage import Tolerances, check_coverage
from gis_service.grids.reassign import reassign

grids_app = typer.Typer(
    help="Grid maintenance: coverage check, changes feed, hazard reassignment.",
    no_args_is_help=True,
)
RootOpt = Annotated[str | None, typer.Option(help="Grid code: only its subtree.")]
ActorOpt = Annotated[str | None, typer.Option(help="Who reassigns (named in each hazard event).")]


@grids_app.command("check")
def grids_check(
    root: RootOpt = None,
    sliver_m2: Annotated[float, typer.Option(help="Slivers: pieces smaller than this.")] = 10.0,
    sliver_width_m: Annotated[
        float, typer.Option(help="Slivers: pieces thinner than this (2·area/perimeter).")
    ] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print GeoJSON findings.")] = False,
) -> None:
    """Coverage check: gaps, sibling overlaps, children outside their parent, slivers and
    grids with no leader (exit code 1 when anything is found)."""
    prepared = prepared_database()
    with prepared.engine.connect() as conn:
        try:
            body = check_coverage(
                conn, root, Tolerances(sliver_m2=sliver_m2, sliver_width_m=sliver_width_m)
            )
        except LookupError as exc:
            fail(str(exc))
    prepared.engine.dispose()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False))
    else:
        for f in body["features"][:200]:
            p = f["properties"]
            typer.echo(f"{p['kind']:<15} {p['area_m2']:>14,.1f} m²  {p['message']} → {p['fix']}")
        counts = ", ".join(f"{k}: {n}" for k, n in body["counts"].items())
        state = "clean" if body["clean"] else "NOT clean"
        typer.echo(
            f"{body['grids_checked']} grids checked under {root or 'all'}: {state} ({counts})"
        )
    if not body["clean"]:
        raise typer.Exit(1)


@grids_app.command("changes")
def grids_changes(
    since: Annotated[str, typer.Option(help="Date or ISO time.")],
    until: Annotated[str | None, typer.Option(help="Date or ISO time (exclusive).")] = None,
    root: RootOpt = None,
    level: Annotated[str | None, typer.Option(help="Only this level.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Grids added, redrawn (with the fields that changed) or retired since a date."""
    start = instant_option(since, "--since")
    assert start is not None
    prepared = prepared_database()
    with prepared.engine.connect() as conn:
        body = changes(conn, start, instant_option(until, "--until"), root, level)
    prepared.engine.dispose()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    for c in body["changes"]:
        fields = f" ({', '.join(c['fields'])})" if c["fields"] else ""
        typer.echo(
            f"{c['at'][:19]}  {c['change']:<8} {c['level']:<10} {c['code']} {c['name']}{fields}"
        )
    typer.echo(f"{body['count']} change(s) since {since}: {body['counts']}")


@grids_app.command("reassign")
def grids_reassign(
    root: RootOpt = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Move them (default: only show what would move).")
    ] = False,
    hazard: Annotated[
        list[str] | None, typer.Option("--hazard", help="Only this hazard code (repeatable).")
    ] = None,
    actor: ActorOpt = "gis-service",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open hazards that now lie in another grid after a redraw: shown first; --apply moves
    them, each move recorded as a hazard event with the old and new grid chain."""
    prepared = prepared_database()
    with prepared.engine.begin() as conn:
        body = reassign(conn, root, apply=apply, codes=hazard, actor=actor or "gis-service")
    prepared.engine.dispose()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))
        return
    for h in body["hazards"]:
        typer.echo(
            f"{h['kind']:<8} {h['public_code']:<22} {h['status']:<12} "
            f"{h['old_code'] or '-'} ({h['old_person'] or '-'}) → "
            f"{h['new_code'] or 'no grid'} ({h['new_person'] or '-'})"
        )
    verb = f"moved {body['applied']}" if apply else "dry run, nothing moved (add --apply)"
    typer.echo(f"{len(body['hazards'])} open hazard(s) to reassign {body['counts']}: {verb}")
