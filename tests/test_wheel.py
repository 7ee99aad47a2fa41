"""A built wheel, installed (not editable) into a fresh venv, works without the checkout (issue 14).

SLOW-ISH (marked ``slow``): builds the wheel, creates a venv and installs into it; tens of seconds on
an idle machine. Nothing here is timed: every subprocess gets a generous timeout (``TIMEOUT``) that
only stops a hung command.

The build is offline: ``pip wheel --no-deps --no-build-isolation`` with the build backend already in
the test's venv (``pyproject.toml``'s ``[build-system] requires``). When that venv's setuptools is too
old the module is skipped, saying so; ``SENSORLOG_TEST_BUILD_PYTHON`` names another interpreter that
has the backend, used for the build only.

The fresh venv sees the third-party dependencies of the test's venv through a ``.pth`` file that lists
that venv's site-packages: a directory listed in a ``.pth`` file is put on ``sys.path``, but the
``.pth`` files inside it (among them the editable install's finder) are not processed, so
``import pipelines`` can only find the wheel's copy. The tests check that this holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pipelines.config import PROJECT_DIR, SHIPPED_FOLDERS

pytestmark = [pytest.mark.system, pytest.mark.slow]

TIMEOUT = 1800  # seconds per subprocess: a bound for a hung command, never a measure of speed
# Never copied into the build's source tree: version control, environments, caches, earlier builds.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", ".sensorlog", "__pycache__", "*.pyc",
              ".hypothesis", ".pytest_cache", ".ruff_cache")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _build_python() -> str:
    return os.environ.get("SENSORLOG_TEST_BUILD_PYTHON") or sys.executable


def _backend_problem(python: str) -> str | None:
    """Why ``python`` cannot build the wheel without build isolation, or None when it can."""
    wanted = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["build-system"]["requires"]
    probe = "import importlib.metadata as m, json, sys; print(json.dumps({r: m.version(r) for r in sys.argv[1:]}))"
    names = [Requirement(r).name for r in wanted]
    done = subprocess.run([python, "-c", probe, *names], capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        return f"{python} lacks a build requirement of pyproject.toml ({', '.join(wanted)}): {done.stderr.strip()}"
    have = json.loads(done.stdout)
    for text in wanted:
        req = Requirement(text)
        if not req.specifier.contains(have[req.name], prereleases=True):
            return (f"{python} has {req.name} {have[req.name]}, but pyproject.toml's build needs {text}; "
                    f"`pip wheel --no-build-isolation` cannot build offline (install {text} into that venv, "
                    "or set SENSORLOG_TEST_BUILD_PYTHON to an interpreter that has it)")
    return None


def _site_packages(python: str | Path) -> list[str]:
    code = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=TIMEOUT)
    return list(dict.fromkeys(json.loads(out.stdout)))


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # a working directory outside the checkout
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run([*args], cwd=self.cwd, env=self.env, check=check)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    build_python = _build_python()
    problem = _backend_problem(build_python)
    if problem:
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("wheel")

    # Build from a copy of the working tree, so no earlier build/ (stale modules) or egg-info is reused
    # and the checkout is left as it was.
    source = root / "source"
    shutil.copytree(PROJECT_DIR, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = root / "dist"
    _run([build_python, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(dist)], source)
    wheels = sorted(dist.glob("sensorlog-*.whl"))
    assert len(wheels) == 1, wheels

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root)
    python = venv / "bin" / "python"
    # Install before the dependencies are made visible, so this pip sees no other sensorlog.
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheels[0])], root)
    (Path(_site_packages(python)[0]) / "sensorlog_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in _site_packages(sys.executable))
    )

    cwd = root / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SENSORLOG_")}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "SENSORLOG_HOME": str(root / "home"),
            "COLUMNS": "200"}
    return Installed(wheel=wheels[0], venv=venv, cwd=cwd, env=env)


def test_the_wheel_carries_the_data_folders_templates_and_package_data(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for folder in SHIPPED_FOLDERS:
        top = PROJECT_DIR / folder
        files = [p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
        assert files, folder
        missing = [str(p) for p in files if f"pipelines/_shipped/{folder}/{p.relative_to(top).as_posix()}" not in names]
        assert not missing, f"not in the wheel: {missing}"
    # Everything under a data/, templates/ or locales/ folder of the package (taxonomy, attributions, HTML
    # templates wherever the audit report's template lives, the portal's message catalogs).
    package_data = [
        p for p in (PROJECT_DIR / "pipelines").rglob("*")
        if p.is_file() and {"data", "templates", "locales"} & set(p.relative_to(PROJECT_DIR / "pipelines").parts[:-1])
        and "__pycache__" not in p.parts
    ]
    assert any(p.name == "dtpr_device_taxonomy.json" for p in package_data)
    assert any(p.name == "audit_report.html.j2" for p in package_data)
    assert any(p.name == "en.json" and p.parent.name == "locales" for p in package_data)
    missing = [str(p) for p in package_data if p.relative_to(PROJECT_DIR).as_posix() not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any(name.startswith(("schemas/", "expectations/", "registry/", "dags/", "tests/")) for name in names)


def test_pipelines_is_imported_from_the_fresh_venv_with_its_packaged_folders(installed: Installed) -> None:
    probe = (
        "import json, sys, jsonschema, pipelines\n"
        "from pipelines import config, schemas, registry\n"
        "from pipelines.dev import airflow_runner\n"
        "from pipelines.ingest import validate\n"
        "from pipelines.portal import dcat, i18n\n"
        "print(json.dumps({'pipelines': pipelines.__file__, 'version': pipelines.__version__,\n"
        "  'jsonschema': jsonschema.__file__, 'editable': [m for m in sys.modules if 'editable' in m],\n"
        "  'folders': {n: str(config.resource_dir(n)) for n in config.SHIPPED_FOLDERS},\n"
        "  'used': [str(schemas.SCHEMA_DIR), str(validate.EXPECTATIONS_DIR), str(registry.SCHEMA_FILE),\n"
        "           str(dcat.SCHEMA_DIR), str(airflow_runner.DAGS_DIR), config.Settings.from_env({}).registry,\n"
        "           str(i18n.catalog_path('es'))]}))\n"
    )
    seen = json.loads(installed.run(installed.bin("python"), "-c", probe).stdout)
    venv = installed.venv.resolve()
    assert Path(seen["pipelines"]).resolve().is_relative_to(venv), seen["pipelines"]
    assert not Path(seen["pipelines"]).resolve().is_relative_to(PROJECT_DIR / "pipelines")
    assert seen["editable"] == [], "the editable install's finder was loaded"
    # The dependencies do come from the test's venv, through the .pth file.
    assert any(Path(seen["jsonschema"]).is_relative_to(p) for p in _site_packages(sys.executable))
    version = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["version"]
    assert seen["version"] == version
    for name, folder in seen["folders"].items():
        path = Path(folder).resolve()
        assert path.is_relative_to(venv) and path.parts[-2:] == ("_shipped", name), folder
        assert path.is_dir() and any(path.iterdir()), folder
    for path in seen["used"]:
        assert Path(path).resolve().is_relative_to(venv) and Path(path).exists(), path


def test_sensorlog_registry_checks_a_copy_of_the_sample_registry(installed: Installed) -> None:
    copy = installed.cwd / "my-registry"
    shutil.copytree(PROJECT_DIR / "registry", copy)
    count = len(list(copy.glob("*.yaml")))
    done = installed.run(installed.bin("sensorlog"), "registry", str(copy))
    assert f"ok {count} deployments in {copy}" in done.stdout, done.stdout
    # With no argument it checks the sample registry the package carries.
    done = installed.run(installed.bin("sensorlog"), "registry")
    assert f"ok {count} deployments in " in done.stdout and "_shipped" in done.stdout, done.stdout
    # And it still finds problems (the packaged deployment schema is read): a record without its id.
    broken = copy / "broken.yaml"
    broken.write_text("name: nothing else\n")
    done = installed.run(installed.bin("sensorlog"), "registry", str(copy), check=False)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "broken.yaml: id: expected a value (required field is missing)" in said, said


def test_sensorlog_verify_help(installed: Installed) -> None:
    done = installed.run(installed.bin("sensorlog"), "verify", "--help")
    assert "Usage: sensorlog verify" in done.stdout, done.stdout


def test_sensorlog_version(installed: Installed) -> None:
    done = installed.run(installed.bin("sensorlog"), "--version", check=False)
    if done.returncode != 0 and "No such option" in done.stdout + done.stderr:
        pytest.skip("`sensorlog --version` does not exist yet (it comes with the pipelines/cli/ package)")
    assert done.returncode == 0, (done.stdout, done.stderr)
    version = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["version"]
    assert version in done.stdout, done.stdout
