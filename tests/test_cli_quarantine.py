"""``sensorlog quarantine list|resolve`` over a home with quarantined rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_event, ndjson
from typer.testing import CliRunner

from pipelines import flow, storage
from pipelines.cli import app
from pipelines.config import Settings

pytestmark = pytest.mark.integration


def test_list_then_resolve_then_nothing_open(tmp_path: Path, device_registry: Path):
    (tmp_path / "home").mkdir()
    env = {"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
           "SENSORLOG_REGISTRY": str(device_registry), "SENSORLOG_NOW": "2026-08-01T00:00:00Z",
           "COLUMNS": "200"}
    landed = tmp_path / "landing" / "cams" / "a.ndjson"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(ndjson([make_event("collection", 0), make_event("collection", 1, deployment_id="nope")]))
    flow.run(Settings.from_env(env), workers=1)
    batch = storage.sha256_of(str(landed))[0]
    runner = CliRunner()
    status = runner.invoke(app, ["status"], env=env)
    assert status.exit_code == 0 and "quarantine resolutions: 0 of 1 resolved, 1 open" in status.output

    listed = runner.invoke(app, ["quarantine", "list", "--open"], env=env)
    assert listed.exit_code == 0, listed.output
    assert batch in listed.output and "cams/a.ndjson" in listed.output and "1 open" in listed.output

    both = runner.invoke(app, ["quarantine", "resolve", batch, "--accept-invalid", "--fixed-by", batch], env=env)
    assert both.exit_code == 2 and "exactly one of --fixed-by BATCH and --accept-invalid" in both.output
    wrong = runner.invoke(app, ["quarantine", "resolve", batch, "--line", "1", "--accept-invalid", "--note", "x"],
                          env=env)
    assert wrong.exit_code == 2 and "no quarantined row at line 1; its quarantined lines: 2" in wrong.output
    assert "Traceback" not in wrong.output

    done = runner.invoke(app, ["quarantine", "resolve", batch, "--accept-invalid", "--note", "test camera"], env=env)
    assert done.exit_code == 0 and "every quarantined row of batch" in done.output
    after = runner.invoke(app, ["quarantine", "list", "--open"], env=env)
    assert after.exit_code == 0 and batch not in after.output and "0 open" in after.output
    assert "quarantine resolutions: 1 of 1 resolved, 0 open" in runner.invoke(app, ["status"], env=env).output

    # A correction of the batch: status says its rows are left out of the counts.
    fix = tmp_path / "landing" / "corrections" / batch / "cams" / "a.ndjson"
    fix.parent.mkdir(parents=True)
    fix.write_bytes(ndjson([make_event("collection", 0, records=3)]))
    flow.run(Settings.from_env(env), workers=1)
    corrected = runner.invoke(app, ["status"], env=env).output
    assert "1 batch(es) superseded by a correction" in corrected
