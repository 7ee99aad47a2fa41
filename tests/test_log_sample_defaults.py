"""No silent defaults in the log: publishing for a registry that is not the sample city's, under the
sample's log origin, warns (the origin is signed into every checkpoint and cannot change later)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from audit_kit import deployment, settings_for

from pipelines import flow
from pipelines.config import DEMO_LOG_ORIGIN, PROJECT_DIR, Settings

pytestmark = pytest.mark.integration

ORIGIN_WARNING = "the log origin is still the sample city's"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and ORIGIN_WARNING in r.getMessage()]


def test_another_citys_registry_under_the_sample_origin_warns_once_per_run(tmp_path, caplog):
    settings = settings_for(tmp_path, [deployment("zz-elsewhere-counter", {"counts": "P30D"})])
    assert settings.log_origin == DEMO_LOG_ORIGIN
    with caplog.at_level(logging.WARNING, logger="pipelines.flow"):
        totals = flow.commit_batches(settings, [])
    assert totals["failed"] == []
    [warning] = _warnings(caplog)
    assert DEMO_LOG_ORIGIN in warning and "SENSORLOG_LOG_ORIGIN" in warning


def test_a_configured_origin_or_the_sample_registry_does_not_warn(tmp_path, caplog):
    elsewhere = settings_for(tmp_path / "a", [deployment("zz-elsewhere-counter", {"counts": "P30D"})])
    configured = Settings.from_env({"SENSORLOG_HOME": elsewhere.home, "SENSORLOG_REGISTRY": elsewhere.registry,
                                    "SENSORLOG_LOG_ORIGIN": "transparency.elsewhere.example/sensors"})
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("alpr-harbor-boulevard.yaml", "aq-riverside-park.yaml"):  # part of the sample is the sample
        shutil.copy(PROJECT_DIR / "registry" / name, sample / name)
    demo = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "demo"), "SENSORLOG_REGISTRY": str(sample)})
    with caplog.at_level(logging.WARNING, logger="pipelines.flow"):
        flow.commit_batches(configured, [])
        flow.commit_batches(demo, [])
    assert _warnings(caplog) == []


def test_sensorlog_run_prints_the_warning_on_stderr(tmp_path):
    settings = settings_for(tmp_path, [deployment("zz-elsewhere-counter", {"counts": "P30D"})])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSORLOG_")}
    env |= {"SENSORLOG_HOME": settings.home, "SENSORLOG_REGISTRY": settings.registry}
    Path(settings.home).mkdir(parents=True, exist_ok=True)  # sensorlog run refuses a home that does not exist
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--workers", "1"], env=env,
                          cwd=Path(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ORIGIN_WARNING in done.stderr and "Traceback" not in done.stderr
