"""The command-line side of file interchange: ``gis-service import …`` and
``gis-service export …``."""

from __future__ import annotations

import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from gis_service.config import Settings
from gis_service.console import fail, instant_option, prepared_database

import_app = typer.Typer(
    help="Import grids, facilities, people or people under care from GeoJSON, GeoPackage, "
    "zipped Shapefile, KML, CSV or XLSX (one transaction: all or nothing).",
    no_args_is_help=True,
)
export_app = typer.Typer(
    help="Export grids, facilities or hazards to GPKG, GeoJSON, zipped Shapefile, CSV or XLSX.",
    no_args_is_help=True,
)


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on a terminal (stderr); a no-op callback elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {
        "read": "reading the file",
        "validate": "checking rows",
        "stage": "copying to PostGIS",
        "check": "checking in SQL",
        "write": "writing",
        "commit": "committing",
    }
    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        yield update


def _run(layer: str, file: Path, **kw) -> None:
    from gis_service.interchange.load import ImportOptions, run_import
    from gis_service.interchange.mapping import MappingError, build_mapping, load_mapping_file

    try:
        mapping = build_mapping(
            layer, kw.pop("field"), kw.pop("default"), load_mapping_file(kw.pop("mapping"))
        )
    except MappingError as exc:
        fail(str(exc))
    as_json = kw.pop("as_json")
    progress = kw.pop("progress")
    settings = Settings()
    prepared = prepared_database()
    opts = ImportOptions(
        layer=layer,
        mapping=mapping,
        valid_from=instant_option(kw.pop("valid_from"), "--valid-from"),
        actor=kw.pop("actor"),
        pause_before_commit=settings.import_pause_before_commit,
        **kw,
    )
    with _progress_bar(progress and not as_json) as bar:
        report = run_import(prepared.engine, file, opts, bar)
    prepared.engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(report.text())
    if report.status == "refused":
        raise typer.Exit(1)


FileArg = Annotated[Path, typer.Argument(help="The file: .geojson .gpkg .zip .shp .kml .csv .xlsx")]
CheckOpt = Annotated[
    bool, typer.Option("--check", help="Dry run: print the report, write nothing.")
]
UpdateOpt = Annotated[
    bool, typer.Option("--update", help="Existing codes: change only what differs.")
]
FixOpt = Annotated[
    bool, typer.Option("--fix", help="Repair invalid geometry with ST_MakeValid (else reported).")
]
CrsOpt = Annotated[
    str | None,
    typer.Option(
        help="Coordinate system of a file that has none (or to override it): EPSG:4490, "
        "EPSG:4326, EPSG:3857, EPSG:4547 (CGCS2000 GK CM 114°E), gcj02 (AMap), bd09 (Baidu)."
    ),
]
LayerOpt = Annotated[
    str | None, typer.Option("--layer", help="Layer (GPKG, KML) or sheet (XLSX) to read.")
]
EncodingOpt = Annotated[
    str | None, typer.Option(help="Text encoding of a Shapefile or CSV, e.g. GBK.")
]
MappingOpt = Annotated[Path | None, typer.Option(help="YAML: field: column (and defaults:, crs:).")]
FieldOpt = Annotated[
    list[str] | None, typer.Option("--field", help="FIELD=COLUMN, repeatable: --field code=BM")
]
DefaultOpt = Annotated[
    list[str] | None,
    typer.Option("--default", help="FIELD=VALUE for every row, e.g. --default level=micro_grid"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
ProgressOpt = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal.")
]
ActorOpt = Annotated[str | None, typer.Option(help="Who imports (recorded with the run).")]


@import_app.command("grids")
def import_grids(
    file: FileArg,
    check: CheckOpt = False,
    update: UpdateOpt = False,
    fix: FixOpt = False,
    crs: CrsOpt = None,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    field: FieldOpt = None,
    default: DefaultOpt = None,
    valid_from: Annotated[
        str | None,
        typer.Option(help="When new and redrawn grids take effect (date or ISO time; now)."),
    ] = None,
    retire_missing: Annotated[
        bool,
        typer.Option(
            "--retire-missing",
            help="End current grids under the file's parents that the file no longer lists.",
        ),
    ] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Import grids (code, name, level, parent code, leader name and phone); a redrawn grid
    ends its old version (kept as history) when imported with --update."""
    _run(
        "grids",
        file,
        check=check,
        update=update,
        fix=fix,
        crs=crs,
        source_layer=layer,
        encoding=encoding,
        mapping=mapping,
        field=field,
        default=default,
        valid_from=valid_from,
        retire_missing=retire_missing,
        actor=actor,
        as_json=as_json,
        progress=progress,
    )


@import_app.command("facilities")
def import_facilities(
    file: FileArg,
    check: CheckOpt = False,
    update: UpdateOpt = False,
    fix: FixOpt = False,
    crs: CrsOpt = None,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    field: FieldOpt = None,
    default: DefaultOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Import facilities (部件): code, type (code or Chinese name), name, status."""
    _run(
        "facilities",
        file,
        check=check,
        update=update,
        fix=fix,
        crs=crs,
        source_layer=layer,
        encoding=encoding,
        mapping=mapping,
        field=field,
        default=default,
        valid_from=None,
        actor=actor,
        as_json=as_json,
        progress=progress,
    )


@import_app.command("people")
def import_people(
    file: FileArg,
    check: CheckOpt = False,
    update: UpdateOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    field: FieldOpt = None,
    default: DefaultOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Import people and their roles on grids (name, phone, mobile, grid code, role, primary)."""
    _run(
        "people",
        file,
        check=check,
        update=update,
        source_layer=layer,
        encoding=encoding,
        mapping=mapping,
        field=field,
        default=default,
        valid_from=None,
        actor=actor,
        as_json=as_json,
        progress=progress,
    )


@import_app.command("care")
def import_care(
    file: FileArg,
    check: CheckOpt = False,
    update: UpdateOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    field: FieldOpt = None,
    default: DefaultOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Import a community's ledger of people under care (七必访台账): household code, address,
    grid code, name, category (类别; several with 、), gender, birth year, phone, note."""
    _run(
        "care",
        file,
        check=check,
        update=update,
        source_layer=layer,
        encoding=encoding,
        mapping=mapping,
        field=field,
        default=default,
        valid_from=None,
        actor=actor,
        as_json=as_json,
        progress=progress,
    )


def _export(layer: str, out: Path | None, fmt: str, root: str | None, crs: str) -> None:
    from gis_service.interchange.export import ExportCrs, ExportFormat, ExportLayer, export_layer

    try:
        fmt_e, crs_e = ExportFormat(fmt), ExportCrs(crs)
    except ValueError as exc:
        fail(f"{exc}; formats: gpkg geojson shp csv xlsx; crs: wgs84 cgcs2000 gcj02")
    prepared = prepared_database()
    with prepared.engine.connect() as conn:
        try:
            result = export_layer(conn, ExportLayer(layer), fmt_e, root, crs_e)
        except LookupError as exc:
            fail(str(exc))
    prepared.engine.dispose()
    target = out or Path(result.filename)
    if target.is_dir():
        target = target / result.filename
    shutil.move(str(result.path), target)
    shutil.rmtree(result.path.parent, ignore_errors=True)
    for w in result.warnings:
        typer.secho(f"warning: {w}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{result.count} {layer} → {target} ({fmt_e.value}, {result.crs})")


OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="File or folder to write (default: here).")
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="gpkg, geojson, shp, csv, xlsx")]
RootOpt = Annotated[str | None, typer.Option(help="Grid code: export only its subtree.")]
ExportCrsOpt = Annotated[str, typer.Option(help="wgs84, cgcs2000 (EPSG:4490) or gcj02.")]


@export_app.command("grids")
def export_grids(
    out: OutOpt = None,
    format: FormatOpt = "gpkg",
    root: RootOpt = None,
    crs: ExportCrsOpt = "wgs84",
) -> None:
    """Export the current grids (with parent code and leader)."""
    _export("grids", out, format, root, crs)


@export_app.command("facilities")
def export_facilities(
    out: OutOpt = None,
    format: FormatOpt = "gpkg",
    root: RootOpt = None,
    crs: ExportCrsOpt = "wgs84",
) -> None:
    """Export facilities (those inside the subtree's root grid with --root)."""
    _export("facilities", out, format, root, crs)


@export_app.command("hazards")
def export_hazards(
    out: OutOpt = None,
    format: FormatOpt = "gpkg",
    root: RootOpt = None,
    crs: ExportCrsOpt = "wgs84",
) -> None:
    """Export hazards (with their grid chain as reported)."""
    _export("hazards", out, format, root, crs)
