"""The command line: --help everywhere, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gis_service.cli import app

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    """Every command and sub-command of the CLI, found by walking the click tree."""
    import typer

    out: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        out.append(path)
        # Typer ships its own click, so test for a group by its sub-commands.
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _all_commands()


def test_the_issue_commands_exist() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for required in (
        "serve",
        "db upgrade",
        "db downgrade",
        "db status",
        "demo load",
        "demo generate",
        "layers check",
        "pg start",
        "pg stop",
        "pg status",
        "users create",
        "users update",
        "people find",
        "users list",
        "users disable",
        "keys create",
        "keys revoke",
        "import grids",
        "import facilities",
        "import people",
        "export grids",
        "grids check",
        "grids changes",
        "grids reassign",
    ):
        assert required in names, required


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_layers_check_ok() -> None:
    result = runner.invoke(app, ["layers", "check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_layers_check_names_file_and_field(tmp_path: Path) -> None:
    import shutil

    from gis_service.config import PROJECT_ROOT

    shutil.copytree(PROJECT_ROOT / "layers", tmp_path / "layers")
    victim = sorted((tmp_path / "layers" / "hazard_categories").glob("*.yaml"))[0]
    victim.write_text(
        victim.read_text().replace("duplicate_radius_m:", "duplicate_radius_m: far\nx_:")
    )
    result = runner.invoke(app, ["layers", "check", str(tmp_path / "layers")])
    assert result.exit_code == 1
    assert victim.name in result.output
    assert "duplicate_radius_m" in result.output


def test_pg_commands_refuse_when_database_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@localhost/none")
    result = runner.invoke(app, ["pg", "start"])
    assert result.exit_code == 1
    assert "DATABASE_URL is set" in result.output


@pytest.mark.parametrize(
    "cmd",
    [
        ["users", "list"],
        ["keys", "list"],
        ["db", "status"],
        ["demo", "load"],
        ["grids", "changes", "--since", "2020-01-01"],
    ],
    ids=" ".join,
)
def test_commands_do_not_invent_a_database(
    cmd: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run away from the server's GIS_DATA_DIR, a command used to create and migrate a second,
    empty cluster and answer from it ('(none)'); an admin created there could never log in
    (issue 11, finding 14). Only serve and pg start create one; the others say where they
    looked and how to point them at the right one."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GIS_DATABASE_URL", raising=False)
    monkeypatch.setenv("GIS_DATA_DIR", str(tmp_path / "elsewhere"))
    result = runner.invoke(app, cmd)
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert str(tmp_path / "elsewhere" / "pg") in message
    assert "GIS_DATA_DIR" in message and "DATABASE_URL" in message
    assert not (tmp_path / "elsewhere" / "pg").exists()


def test_pg_status_says_where_the_files_are(
    pg_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg status names the real folder of the cluster's files: as root, when PostgreSQL cannot
    enter the data folder's parent, pg/ is a symlink to /var/lib/gis-service/clusters/…, and a
    backup must copy that folder. The test's cluster stands in, behind such a symlink."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "pg").symlink_to(pg_cluster.root, target_is_directory=True)
    monkeypatch.setenv("GIS_DATA_DIR", str(data))
    result = runner.invoke(app, ["pg", "status"])
    assert result.exit_code == 0, result.output
    assert f"folder:  {data / 'pg'}" in result.output
    assert f"files:   {pg_cluster.root.resolve()}" in result.output
    assert f"data:    {pg_cluster.root.resolve() / 'data'}" in result.output
