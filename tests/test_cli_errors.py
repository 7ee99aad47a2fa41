"""User errors at the command line: each command, given a realistic mistake, exits with the code the
README's "Exit codes" table documents and says what is wrong in a line or two, never with a Python
traceback. And one error tree: every exception class in ``pipelines`` (outside the spec library
``pipelines/tlog/``) is a ``SensorlogError``."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipelines
from pipelines.errors import FAILURE, GATE, USAGE, SensorlogError, UsageError, reported_as

pytestmark = pytest.mark.integration

SENSORLOG = Path(sys.executable).parent / "sensorlog"  # the console script installed next to this Python


def sensorlog(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``sensorlog ARGS`` in a clean environment whose home is a fresh, empty folder under ``tmp_path``
    (made first: a home that does not exist is an error of its own, the SENSORLOG_HOME cases below)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
             "SENSORLOG_HOME": str(tmp_path / "home"), **env}
    return subprocess.run([str(SENSORLOG), *args], capture_output=True, text=True, env=clean, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, timeout=900)


def broken_registry(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "broken.yaml").write_text("deployment_id: [\n")
    return folder


# (command line, extra environment, documented exit code, what the message must name). Paths in
# "{tmp}" are under the test's own folder; "{registry}" is a registry folder holding a broken file,
# "{file}" a plain file where a folder is expected.
CASES = [
    (["registry", "{registry}"], {}, USAGE, "broken.yaml"),
    (["generate", "--start", "2026-13-01"], {}, USAGE, "--start"),
    (["generate", "--end", "2026-07-02", "--cadence", "hourly"], {}, USAGE, "cadence"),
    (["generate", "--end", "2026-07-03"], {"SENSORLOG_LANDING": "{file}"}, FAILURE, "Not a directory"),
    (["generate", "--start", "2026-07-01", "--end", "2026-07-01"], {}, USAGE, "must be after --start"),
    (["discover"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "registry: "),
    (["stage", "{tmp}/no-such-export.ndjson"], {}, FAILURE, "no-such-export.ndjson"),
    (["stage", "{tmp}/export.ndjson"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["commit", "some-batch"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["commit", "0" * 64], {}, FAILURE, "0" * 64),  # nothing staged under that id: not a success
    (["run"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["run"], {"SENSORLOG_WORKERS": "many"}, USAGE, "SENSORLOG_WORKERS"),
    (["run", "--workers", "many"], {}, USAGE, "--workers"),
    (["run"], {"SENSORLOG_HOME": "{file}"}, USAGE, "is not a folder"),
    (["status"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["status"], {"SENSORLOG_HOME": "{file}"}, USAGE, "is not a folder"),
    (["status"], {"SENSORLOG_HOME": "{tmp}/no-such-home"}, USAGE, "create an empty home there with `sensorlog init`"),
    (["discover"], {"SENSORLOG_HOME": "{tmp}/no-such-home"}, USAGE, "no-such-home"),
    (["demo", "--no-airflow"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["portal", "--lang", "xx"], {}, USAGE, "--lang"),
    (["portal"], {"SENSORLOG_REGISTRY": "{registry}"}, USAGE, "broken.yaml"),
    (["verify", "--log", "{tmp}/no-such-log"], {}, FAILURE, "FAILED"),
    (["verify", "--since", "{tmp}/no-such-checkpoint"], {}, USAGE, "--since"),
    (["prove"], {}, USAGE, "usage:"),
    (["prove", "--event", "no-slash"], {}, FAILURE, "SOURCE/ID"),
    (["check-proof", "{tmp}/no-such.tlog-proof", "--vkey", "log+12345678+AAAA"], {}, USAGE, "no-such.tlog-proof"),
    (["log", "export", "--out", "{tmp}/out"], {}, FAILURE, "no signed log"),
    (["audit", "--as-of", "2026-02-30"], {}, USAGE, "audit: "),
    (["audit", "--deployment", "no-such-deployment", "--no-report"], {}, USAGE, "no-such-deployment"),
    (["audit", "--no-report"], {"SENSORLOG_NOW": "yesterday"}, USAGE, "SENSORLOG_NOW"),
    (["audit", "--log", "{tmp}/no-such-log", "--data", "{tmp}"], {}, USAGE, "no-such-log"),
    (["cosign"], {"SENSORLOG_WITNESSES": "{file}"}, USAGE, "expected '<witness vkey> <submission URL>'"),
    (["witness", "init", "--dir", "{tmp}/w", "--name", "not a key name"], {}, USAGE, "witness init: "),
    (["witness", "add-log", "--dir", "{tmp}/w", "--vkey", "{tmp}/no-such.vkey"], {}, USAGE, "no-such.vkey"),
    (["witness", "cosign", "--dir", "{tmp}/not-a-witness", "{file}"], {}, USAGE, "not a witness directory"),
    (["witness", "serve", "--dir", "{tmp}/not-a-witness"], {}, USAGE, "not a witness directory"),
]


@pytest.mark.parametrize(("args", "env", "code", "named"), CASES, ids=[" ".join(c[0]) + f" [{i}]"
                                                                        for i, c in enumerate(CASES)])
def test_a_user_error_exits_with_its_code_and_says_what_is_wrong(tmp_path, args, env, code, named):
    plain = tmp_path / "plain-file"
    plain.write_text("not a folder, not a witness list\n")
    (tmp_path / "export.ndjson").write_text("")
    places = {"{tmp}": str(tmp_path), "{file}": str(plain)}
    if any("{registry}" in v for v in [*args, *env.values()]):
        places["{registry}"] = str(broken_registry(tmp_path))

    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace(key, value)
        return text

    done = sensorlog(tmp_path, *map(fill, args), **{k: fill(v) for k, v in env.items()})
    said = done.stdout + done.stderr
    assert done.returncode == code, said
    assert "Traceback" not in said
    assert named in " ".join(said.split()), said  # typer's boxes wrap at the terminal width
    message = done.stdout if args[0] == "verify" and code == FAILURE else done.stderr  # a verdict is stdout
    assert 1 <= len(message.strip().splitlines()) <= 8, message  # a few lines, not a stack


def test_version_prints_the_installed_distribution(tmp_path):
    from importlib.metadata import version

    done = sensorlog(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sensorlog {version('sensorlog')}\n"


def test_help_imports_no_command_code():
    """``sensorlog --help`` stays fast: importing the CLI brings no pipeline module that computes."""
    code = ("import sys, pipelines.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('pyarrow', 'duckdb', 'pipelines.flow'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900)
    assert out.stdout.strip() == "[]"


def test_exit_codes_of_the_error_tree():
    from pipelines import publish
    from pipelines.audit import AuditGateFailed
    from pipelines.log import witness
    from pipelines.registry import Problem, RegistryError

    assert SensorlogError("x").exit_code == FAILURE
    assert SensorlogError("x", exit_code=USAGE).exit_code == USAGE and UsageError("x").exit_code == USAGE
    assert AuditGateFailed("2 finding(s)").exit_code == GATE
    problems = [Problem("a.yaml", "name", "a value"), Problem("b.yaml", "kind", "one of …")]
    err = RegistryError(problems)
    assert (err.exit_code, err.diagnostics()) == (
        USAGE, "registry: a.yaml: name: expected a value\nregistry: b.yaml: kind: expected one of …")
    assert publish.NotStaged("batch b: gone").diagnostics() == "not staged: batch b: gone"
    assert witness.Conflict("old size 3", 4).diagnostics() == "refused (HTTP 409, recorded size 4): old size 3"
    assert witness.Inconsistent("fork").diagnostics() == "refused (HTTP 422): fork"
    # An integrity failure is not an AssertionError that `except AssertionError` would swallow.
    assert not issubclass(publish.ConservationError, AssertionError)
    with pytest.raises(SensorlogError, match="^portal: bad --lang$") as caught:
        with reported_as("portal", ValueError, exit_code=USAGE):
            raise ValueError("bad --lang")
    assert caught.value.exit_code == USAGE
    with pytest.raises(KeyError):  # kinds not named pass through unchanged
        with reported_as("portal", ValueError):
            raise KeyError("x")


def test_every_exception_class_in_pipelines_is_a_sensorlog_error():
    """Outside ``pipelines/tlog/`` (the spec library imports nothing from the rest of ``pipelines``),
    whoever catches ``SensorlogError`` catches every error pipelines defines."""
    found = []
    for module in pkgutil.walk_packages(pipelines.__path__, "pipelines."):
        if module.name.startswith("pipelines.tlog") or module.name.endswith(".__main__"):
            continue
        loaded = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == loaded.__name__:
                found.append(cls)
    assert len(found) > 30  # the walk reached the modules
    assert [f"{c.__module__}.{c.__qualname__}" for c in found if not issubclass(c, SensorlogError)] == []
