"""A worker killed mid-batch (SIGKILL, no cleanup) and the retry: conservation, idempotence and the
log's integrity hold afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date

import pyarrow.parquet as pq
import pytest
from waiting import wait_for_state

from pipelines import flow, storage, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.log import writer
from pipelines.registry import load_registry

pytestmark = pytest.mark.system


def _processes_of(home: str) -> list[int]:
    """Live processes (not zombies) whose environment names ``home`` as SENSORLOG_HOME."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and f"SENSORLOG_HOME={home}".encode() in environ:
            found.append(int(entry))
    return found


def test_sigkill_during_publish_then_retry(tmp_path):
    env = {"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    settings = Settings.from_env(env)
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 29), cadence="weekly")
    truth = synthetic.write_city(load_registry(settings.registry), settings.landing, options)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    published = lambda: len(storage.list_files(settings.manifests, (".json",)))  # noqa: E731
    # Wait for the state (three batches published), however slow the machine; the run exiting first
    # means the city is too small to kill it mid-way.
    wait_for_state(lambda: published() >= 3, "three batches to be published before the kill", poll=0.05,
                   progress=published,
                   died=lambda: None if proc.poll() is None else "the run finished before it could be killed; "
                   "make the city bigger",
                   still_running=lambda: f"`sensorlog run` (pid {proc.pid}), {published()} manifests so far")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Its staging workers (one per core) notice their parent is gone and exit, rather than staging on
    # orphaned beside the retry.
    wait_for_state(lambda: not _processes_of(env["SENSORLOG_HOME"]), "the killed run's staging workers to exit",
                   progress=lambda: len(_processes_of(env["SENSORLOG_HOME"])),
                   still_running=lambda: f"processes of the killed run: {_processes_of(env['SENSORLOG_HOME'])}")
    done_before = len(storage.list_files(settings.manifests, (".json",)))
    assert 3 <= done_before < len(truth.files)

    flow.run(settings)  # the retry
    totals = summary.manifest_totals(settings)
    assert totals["batches"] == len(truth.files)
    assert totals["rows_in"] == totals["published"] + totals["quarantined"] + totals["duplicates"]
    assert totals["rows_in"] == truth.events  # every event of every readable file is accounted for
    leaves = sorted(i for f in storage.list_files(settings.published, (".parquet",))
                    for i in pq.read_table(f, columns=["leaf_index"]).column(0).to_pylist())
    assert len(leaves) == totals["published"] + totals["declarations"] == len(set(leaves))
    checkpoint = writer.latest_checkpoint(settings)
    assert checkpoint.size == totals["leaves"]  # every row (events, declarations) + one leaf per manifest
    assert set(leaves) <= set(range(checkpoint.size))
    assert flow.discover(settings) == []
    before = checkpoint
    flow.run(settings)  # and once more: nothing changes
    assert writer.latest_checkpoint(settings) == before
    # a half-written file left by the kill is hidden and never ends in .parquet: readers only see
    # the files the manifests list
    listed = {storage.join(settings.published, out["path"])
              for m in storage.list_files(settings.manifests, (".json",))
              for out in json.loads(storage.read_bytes(m))["outputs"]}
    assert set(storage.list_files(settings.published, (".parquet",))) == listed
