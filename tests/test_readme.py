"""The README's command table and layout, kept true to the code: every command the CLI offers is in the
table and nothing else is, every option the table names is in that command's ``--help``, and every path
the layout names exists."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import PROJECT_DIR

pytestmark = pytest.mark.integration

README = (PROJECT_DIR / "README.md").read_text()
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"the README has no '## {title}' section"
    return match.group(1)


def _cli_commands() -> dict[tuple[str, ...], object]:
    """Every command and group ``sensorlog --help`` (and each group's ``--help``) offers, by path."""
    found = {}

    def walk(group, prefix: tuple[str, ...]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            if not command.hidden:
                found[(*prefix, name)] = command
                walk(command, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return found


def _documented() -> list[tuple[tuple[str, ...], set[str]]]:
    """(command path, options named) for each ``sensorlog …`` in the first column of the command table;
    ``witness init|add-log`` names two commands, ``sensorlog --version`` the root's option. Options the
    second column names in backticks (``generate``'s) belong to the row's commands too."""
    commands = _cli_commands()
    rows = [line for line in _section("Command line").splitlines() if line.startswith("| `sensorlog")]
    assert rows, "no command table in the README's 'Command line' section"
    documented = []
    for row in rows:
        first, second = re.split(r"(?<!\\)\|", row)[1:3]
        described = set(OPTION.findall(" ".join(re.findall(r"`([^`]*)`", second))))
        for span in re.findall(r"`([^`]*)`", first):
            words = span.replace("\\|", "|").split()
            assert words[0] == "sensorlog", span
            paths, rest = [()], words[1:]
            while rest and all((*paths[0], name) in commands for name in rest[0].split("|")):
                paths = [(*path, name) for path in paths for name in rest.pop(0).split("|")]
            options = set(OPTION.findall(" ".join(rest))) | described
            documented += [(path, options) for path in paths]
    return documented


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_table_lists_exactly_the_commands_the_cli_offers():
    documented = {path[:n] for path, _ in _documented() for n in range(1, len(path) + 1)}
    assert documented == set(_cli_commands())


@pytest.mark.parametrize("path, options", _documented(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_option_in_the_command_table_is_in_that_commands_help(path, options):
    offered = set(OPTION.findall(_help(path)))
    assert options - offered == set(), f"sensorlog {' '.join(path)} --help does not offer these"


def test_the_layout_names_only_paths_that_exist():
    block = re.search(r"```\n(.*?)```", _section("Layout"), re.S)
    assert block, "no layout block in the README's 'Layout' section"
    entries = re.findall(r"^(\S+)", block.group(1), re.M)
    assert "pipelines/" in entries
    for entry in entries:
        assert (PROJECT_DIR / entry).exists(), f"the README's layout names {entry}, which does not exist"
    modules = re.search(r"^pipelines/\s+[^(]*\(([^)]*)\)", block.group(1), re.S | re.M)
    assert modules, "the layout's pipelines/ line names no modules"
    for name in re.split(r",\s*", modules.group(1).strip()):
        path = PROJECT_DIR / "pipelines" / name
        exists = path.is_dir() if name.endswith("/") else path.with_suffix(".py").is_file()
        assert exists, f"the README's layout names pipelines/{name}, which does not exist"
