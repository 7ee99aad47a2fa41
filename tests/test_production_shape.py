"""The production shape for real: Airflow 3 on PostgreSQL with the CeleryExecutor and Redis as the
broker (Debian's postgresql and redis-server, started here in temporary folders), a Celery worker
running the tasks. The scheduled sweep of the ingest DAG publishes landed files; nobody triggers it."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest
from conftest import event_manifests
from processes import stop_group
from waiting import wait_for_state

from pipelines import storage, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.registry import load_registry

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not PG_BIN or shutil.which("redis-server") is None,
                       reason="needs Debian's postgresql and redis-server (make test installs them)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, a developer usually not.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres():
    # Its own folder outside pytest's (root-only) tmp tree, so the postgres user can reach it.
    base = Path(tempfile.mkdtemp(prefix="sensorlog-pg-"))
    data, sock = base / "pg", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        for path in (base, sock):
            shutil.chown(path, "postgres")
    port = free_port()
    bin_dir = Path(PG_BIN[-1])
    subprocess.run(as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
                   check=True, capture_output=True)
    subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"),
                                "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    subprocess.run(as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "airflow"]), check=True, capture_output=True)
    yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow"
    subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                   capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def redis():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_ingest_dag_on_postgres_with_celery_workers(postgres, redis, tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    env_settings = {"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    settings = Settings.from_env(env_settings)
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 8), cadence="weekly")
    truth = synthetic.write_city(load_registry(settings.registry), settings.landing, options)
    api_port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ, **env_settings,
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres,
        "AIRFLOW__CELERY__BROKER_URL": redis,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.replace("+psycopg2", ""),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Airflow's own clocks, generous so a loaded machine is slow, not failed: a task may wait in
        # the Celery queue (default 600 s) and a DAG file may take to import (30 s / 50 s by default).
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "7200",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "900",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        "PATH": str(bin_dir) + os.pathsep + os.environ.get("PATH", ""),
    }
    airflow = str(bin_dir / "airflow")
    migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    logs, procs = root / "logs", []
    logs.mkdir()
    for name, args in (("api-server", ["api-server", "--port", str(api_port)]), ("scheduler", ["scheduler"]),
                       ("dag-processor", ["dag-processor"]), ("worker", ["celery", "worker"])):
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process below
        procs.append((subprocess.Popen([airflow, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True), out))
    try:
        published = lambda: len(event_manifests(settings))  # noqa: E731

        def died() -> str | None:
            for proc, _ in procs:
                if proc.poll() is not None:
                    return f"an Airflow component died (exit {proc.returncode}):\n" + "\n".join(
                        (logs / f).read_text(errors="replace")[-1500:] for f in os.listdir(logs))
            return None

        def still_running() -> str:
            return (f"{published()} of {len(truth.files)} landed files published\n"
                    + unfinished_tasks(postgres) + "\nworker log:\n"
                    + (logs / "worker.log").read_text(errors="replace")[-3000:])

        # Waits for the state (every landed file published), for as long as the worker makes progress.
        wait_for_state(lambda: published() == len(truth.files), "the ingest DAG to publish every landed file",
                       progress=published, died=died, still_running=still_running)
        totals = summary.manifest_totals(settings)
        assert totals["rows_in"] == truth.events
        assert totals["rows_in"] == totals["published"] + totals["quarantined"] + totals["duplicates"]
        worker_log = (logs / "worker.log").read_text(errors="replace")
        assert "celery@" in worker_log  # the tasks ran on a Celery worker, not in the scheduler
        assert json.loads(storage.read_bytes(storage.list_files(settings.manifests, (".json",))[0]))["batch_id"]
    finally:
        for proc, out in procs:
            stop_group(proc)
            out.close()


def unfinished_tasks(dsn: str) -> str:
    """Task instances not yet done, from Airflow's metadata DB (for a failure message)."""
    try:
        import psycopg2

        with psycopg2.connect(dsn.replace("postgresql+psycopg2", "postgresql")) as db, db.cursor() as cur:
            cur.execute("SELECT dag_id, task_id, map_index, state FROM task_instance "
                        "WHERE state IS NULL OR state NOT IN ('success', 'skipped') "
                        "ORDER BY dag_id, task_id, map_index")
            rows = cur.fetchall()
    except Exception as exc:  # noqa: BLE001 - a diagnostic must never hide the real failure
        return f"(could not read task states: {exc})"
    return "unfinished task instances:\n" + ("\n".join(" ".join(map(str, r)) for r in rows) or "(none)")


