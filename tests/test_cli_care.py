"""The command line's manners (issue 17, CLI care): ``--version`` and ``-h``; a home that does not exist
is an error naming it, never a new empty home, except for the commands that create one; ``status``
totals agree with the line below them; tables never cut an id or a path, piped or at 80 columns;
progress bars show the ETA, rows per second and the file they are on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import DEPLOYMENT, make_event, ndjson
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from pipelines import flow, summary
from pipelines.cli import COMMANDS, GROUPS, _output, app, installed_version
from pipelines.config import PROJECT_DIR, Settings

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(app, args, env=env)


def test_version_and_short_help(tmp_path):
    done = _run(["--version"], {})
    assert done.exit_code == 0 and done.stdout.strip() == f"sensorlog {installed_version()}"
    paths = [[name] for name, _ in COMMANDS]
    paths += [[group, name] for group, typer_app in GROUPS for name in (c.name for c in typer_app.registered_commands)]
    missing = tmp_path / "no-such-home"
    for path in [[], *paths]:
        short = _run([*path, "-h"], {"SENSORLOG_HOME": str(missing)})
        long = _run([*path, "--help"], {"SENSORLOG_HOME": str(missing)})
        assert short.exit_code == 0, (path, short.output)
        assert "Usage: " in short.output and short.output == long.output, path
    assert not missing.exists()  # help needs no home


# Every command that reads a home; each, with a mistyped SENSORLOG_HOME, exits 2 and creates nothing.
READS_A_HOME = [
    ["status"], ["discover"], ["run", "--workers", "1"], ["compact"], ["portal"], ["verify"], ["prove", "--index", "0"],
    ["log", "export", "--out", "{tmp}/out"], ["cosign"], ["audit", "--no-report"], ["stage", "{tmp}/x.ndjson"],
    ["commit", "0" * 64],
]


@pytest.mark.parametrize("args", READS_A_HOME, ids=" ".join)
def test_a_home_that_does_not_exist_is_refused_by_name(tmp_path, args):
    typo = tmp_path / "sensorlgo-home"
    done = _run([a.replace("{tmp}", str(tmp_path)) for a in args], {"SENSORLOG_HOME": str(typo)})
    assert done.exit_code == 2, done.output
    said = " ".join(done.output.split())
    assert f"no sensorlog home at {typo}" in said and "sensorlog init" in said
    assert len(done.output.strip().splitlines()) == 1, done.output
    assert not typo.exists()


def test_init_and_the_commands_that_create_a_home(tmp_path):
    home = tmp_path / "home"
    env = {"SENSORLOG_HOME": str(home), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    made = _run(["init"], env)
    assert made.exit_code == 0, made.output
    assert (home / "landing").is_dir() and f"created {home}" in made.stdout
    again = _run(["init"], env)
    assert again.exit_code == 0 and "already there" in again.stdout and "created" not in again.stdout
    assert _run(["status"], env).exit_code == 0  # an empty home is a home

    other = {**env, "SENSORLOG_HOME": str(tmp_path / "other")}
    assert _run(["--init", "discover"], other).exit_code == 0
    assert (tmp_path / "other" / "landing").is_dir()

    generated = {**env, "SENSORLOG_HOME": str(tmp_path / "city")}
    args = ["generate", "--start", "2026-07-01", "--end", "2026-07-02", "--no-inject"]
    first = _run(args, generated)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "city" / "ground_truth.json").is_file()
    refused = _run(args, generated)
    assert refused.exit_code == 2 and "--force" in refused.output
    assert _run([*args, "--force"], generated).exit_code == 0

    plain = tmp_path / "plain"
    plain.write_text("")
    not_a_folder = _run(["init"], {**env, "SENSORLOG_HOME": str(plain)})
    assert not_a_folder.exit_code == 2 and "not a folder" in not_a_folder.output


def test_registry_needs_no_home_and_makes_none(tmp_path):
    missing = tmp_path / "nothing-here"
    done = _run(["registry"], {"SENSORLOG_HOME": str(missing)})
    assert done.exit_code == 0, done.output
    assert not missing.exists()


@pytest.fixture(scope="module")
def quarantining_home(tmp_path_factory):
    """A home whose landing holds a file with good rows, a row failing a check (its deployment named),
    a row naming no known deployment, an unreadable line, and an empty file (quarantined whole)."""
    root = tmp_path_factory.mktemp("care")
    registry = root / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    env = {"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(registry)}
    landing = root / "home" / "landing" / "vendor"
    landing.mkdir(parents=True)
    good = [make_event(n=n) for n in range(3)]
    bad = [make_event(n=3, records=-5), make_event(n=4, deployment_id="no-such-device")]
    (landing / "2026-07-01.ndjson").write_bytes(ndjson(good + bad) + b'{"id": "broken", \n')
    (landing / "2026-07-02.ndjson").write_bytes(b"")
    settings = Settings.from_env(env)
    flow.run(settings)
    return settings, env


def test_status_totals_come_from_one_count(quarantining_home):
    settings, env = quarantining_home
    done = _run(["status"], env)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    header = next(line.split("\t") for line in lines if line.startswith("deployment\t"))
    total = dict(zip(header, next(line.split("\t") for line in lines if line.startswith("total\t")), strict=True))
    totals = summary.manifest_totals(settings)
    counts = summary.quarantine_counts(settings)
    assert (totals["quarantined"], totals["file_errors"]) == (3, 1)
    assert int(total["quarantined"]) == totals["quarantined"] == counts.rows
    assert counts.files == totals["file_errors"]
    text = " ".join(done.stdout.split())
    assert f"quarantine: {counts.rows} rows ({counts.unattributed} of them" in text
    assert f"+ {totals['quarantined']} quarantined" in text and f"{totals['file_errors']} unreadable files" in text
    assert any(line.startswith("(no deployment)\t") for line in lines)


def _table() -> Table:
    table = Table(title="t", show_footer=True)
    table.add_column("deployment", footer="total", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column("n", justify="right", footer="3")
    table.add_row("streetlight-eastgate-corridor-extension-north", "/srv/sensorlog/homes/riverton/quarantine/files",
                  "3")
    return table


@pytest.mark.parametrize(("terminal", "width"), [(False, 130), (True, 80), (True, 200)])
def test_tables_never_cut_an_id_or_a_path(monkeypatch, terminal, width):
    written = io.StringIO()
    screen = Console(file=written, force_terminal=terminal, width=width, color_system=None)
    monkeypatch.setattr(_output, "console", screen)
    _output.print_table(_table())
    out = written.getvalue()
    for whole in ("streetlight-eastgate-corridor-extension-north", "/srv/sensorlog/homes/riverton/quarantine/files"):
        assert whole in out, out
    boxed = terminal and width == 200
    assert ("│" in out) == boxed, out  # drawn when it fits a terminal, plain tab-separated lines otherwise
    if not boxed:
        assert out.splitlines()[0] == "deployment\twhere\tn" and out.splitlines()[-1] == "total\t\t3"


def test_piped_status_lines_keep_every_id_whole(quarantining_home):
    _, env = quarantining_home
    out = _run(["status"], {**env, "COLUMNS": "80"}).stdout
    ids = {line.split("\t")[0] for line in out.splitlines() if "\t" in line}
    assert {DEPLOYMENT, "no-such-device", "(no deployment)", "total"} <= ids


def test_progress_bars_show_eta_rows_per_second_and_the_current_file(quarantining_home, monkeypatch):
    settings, _ = quarantining_home
    screen = Console(record=True, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(_output, "console", screen)
    manifests = [p for p in Path(settings.manifests).glob("*.json") if "2026-07-01.ndjson" in p.read_text()]
    batch = manifests[0].stem
    with _output.progress_bars(settings) as bars:
        stage = bars("stage", 2)
        stage(str(Path(settings.landing) / "vendor" / "2026-07-01.ndjson"))
        publish = bars("publish", 2)
        publish(batch)
    out = screen.export_text()
    publish_line = [line for line in out.splitlines() if line.startswith("publish")][-1]  # the last redraw
    assert "1/2" in publish_line and "eta" in publish_line and "rows/s" in publish_line, out
    assert "2026-07-01.ndjson" in publish_line  # the batch's landed file, not its id
    stage_line = [line for line in out.splitlines() if line.startswith("stage")][-1]
    assert "2026-07-01.ndjson" in stage_line and "/vendor/" not in stage_line
