"""Drive the DAGs with Airflow itself, as a subprocess (``airflow dags test``) against a SQLite
metadata DB under ``SENSORLOG_HOME``. ``pipelines`` never imports Airflow; it only runs its CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipelines import lineage
from pipelines.config import PROJECT_DIR, Settings, environment, resource_dir
from pipelines.errors import SensorlogError

DAGS_DIR = resource_dir("dags")


def airflow_home(settings: Settings) -> Path:
    return Path(settings.state) / "airflow"


def airflow_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an Airflow child process: ``base`` (default: this process's environment)
    plus Airflow's home, DAG folder and metadata DB, and this ``SENSORLOG_HOME``."""
    home = airflow_home(settings)
    env = dict(environment(base))
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
            # Airflow's default is 30 s per DAG file: a loaded machine importing pyarrow, DuckDB and GX
            # can take longer, and a slow import must not look like a broken DAG.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": env.get("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600"),
            "SENSORLOG_HOME": settings.home,
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_DIR), env.get("PYTHONPATH", "")) if p),
        }
    )
    env.update(lineage.openlineage_env(settings, env))  # run events to <home>/lineage/ unless env says where
    return env


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")


def migrate(settings: Settings, log: Path) -> None:
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    lineage.prepare(settings)
    _run([_airflow(), "db", "migrate"], settings, log)


def dags_test(
    settings: Settings,
    dag_id: str,
    log: Path,
    poll: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    conf: dict | None = None,
) -> None:
    """Run one DAG run to completion in-process under Airflow; ``poll`` is called while it runs;
    ``env`` adds variables for the run (e.g. ``SENSORLOG_NOW``, ``SENSORLOG_AUDIT_FAIL_ON``); ``conf``
    is the run's params (``{"files": [...], "reprocess": true}``), validated by the DAG's schemas."""
    params = ["-c", json.dumps(conf)] if conf else []
    _run([_airflow(), "dags", "test", dag_id, *params], settings, log, poll, env)


def reserialize(settings: Settings, log: Path, env: dict[str, str] | None = None) -> None:
    """Parse every DAG file into the metadata DB (``airflow dags reserialize``), so Asset schedules are
    known before a DAG run emits Asset events (``dags test`` alone only records the DAG it runs).
    ``env`` must match the later runs' where it sets an Asset's URI (``SENSORLOG_PORTAL_OUT``): an Asset
    parsed again under its name with another URI stays inactive until a scheduler retires the old one,
    and a task naming it fails."""
    _run([_airflow(), "dags", "reserialize"], settings, log, env=env)


class AirflowFailed(SensorlogError, RuntimeError):
    pass


def _run(
    cmd: list[str],
    settings: Settings,
    log: Path,
    poll: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env={**airflow_env(settings), **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
        while proc.poll() is None:
            if poll:
                poll()
            time.sleep(0.5)
    if poll:
        poll()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise AirflowFailed(
            f"{' '.join(cmd[1:])} failed (exit {proc.returncode}); see {log}\n" + "\n".join(tail)
        )
    if "state=failed" in log.read_text(errors="replace")[-20000:]:
        raise AirflowFailed(f"{' '.join(cmd[1:])}: a task failed; see {log}")
