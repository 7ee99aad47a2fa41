"""The production shape for real: Airflow 3 on PostgreSQL with the CeleryExecutor and Redis as the
broker (Debian's postgresql and redis-server, started here in temporary folders), a Celery worker
running the tasks. The scheduled sweep of the ingest DAG publishes landed files; nobody triggers it."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest

from pipelines import generate, storage, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.registry import load_registry

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(not PG_BIN or shutil.which("redis-server") is None,
                                reason="needs Debian's postgresql and redis-server (make test installs them)")


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
    proc.wait(timeout=10)


def test_ingest_dag_on_postgres_with_celery_workers(postgres, redis, tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    env_settings = {"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    settings = Settings.from_env(env_settings)
    options = generate.options_for(start=date(2026, 7, 1), end=date(2026, 7, 8), cadence="weekly")
    truth = generate.write_city(load_registry(settings.registry), settings.landing, options)
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
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if len(storage.list_files(settings.manifests, (".json",))) == len(truth.files):
                break
            for proc, _ in procs:
                assert proc.poll() is None, "an Airflow component died: " + "\n".join(
                    (logs / f).read_text(errors="replace")[-1500:] for f in os.listdir(logs))
            time.sleep(2)
        else:
            pytest.fail("the ingest DAG did not publish every landed file within 240 s; worker log:\n"
                        + (logs / "worker.log").read_text(errors="replace")[-3000:])
        totals = summary.manifest_totals(settings)
        assert totals["rows_in"] == truth.events
        assert totals["rows_in"] == totals["published"] + totals["quarantined"] + totals["duplicates"]
        worker_log = (logs / "worker.log").read_text(errors="replace")
        assert "celery@" in worker_log  # the tasks ran on a Celery worker, not in the scheduler
        assert json.loads(storage.read_bytes(storage.list_files(settings.manifests, (".json",))[0]))["batch_id"]
    finally:
        for proc, out in procs:
            stop(proc)
            out.close()


def stop(proc: subprocess.Popen) -> None:
    """End a component and everything it started (its process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
