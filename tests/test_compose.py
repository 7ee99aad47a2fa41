"""The production-shaped docker-compose.yml, checked without a Docker engine: its structure here, and
`docker-compose config` (Debian's package) when installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from pipelines.config import PROJECT_DIR

pytestmark = pytest.mark.system

COMPOSE = PROJECT_DIR / "docker-compose.yml"
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_of_the_production_shape(compose):
    services = compose["services"]
    assert set(services) >= {*AIRFLOW, "postgres", "redis", "minio", "minio-init", "airflow-init"}
    for name in AIRFLOW:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "./:/opt/sensorlog" in services[name]["volumes"]  # the project mounted
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    for name in (*AIRFLOW, "postgres", "redis", "minio"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb" in services["minio-init"]["entrypoint"]


def test_no_secrets_in_the_file():
    text = COMPOSE.read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|FERNET|ACCESS_KEY)[A-Z_]*:\s*\S", line):
            assert "${" in line, f"literal secret in docker-compose.yml: {line.strip()}"
    example = (PROJECT_DIR / ".env.example").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)\}", text))  # $${X} is escaped for the container shell
    declared = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert used <= declared, f"variables used but not in .env.example: {sorted(used - declared)}"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_config_accepts_it(tmp_path):
    # A user's checkout: the compose file next to a .env made from the example.
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(PROJECT_DIR / ".env.example", tmp_path / ".env")
    out = subprocess.run(["docker-compose", "config", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
