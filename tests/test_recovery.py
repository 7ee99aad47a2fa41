"""Recovery without a human: a staged batch that is missing, cut short, edited or short of a row is
staged again from the landed bytes; a refused batch leaves nothing a ``published/**/*.parquet`` reader
can see; a writer killed between moving a committed batch's files into place is rolled forward."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import make_event, ndjson
from typer.testing import CliRunner

from pipelines import cli, flow, layout, publish, storage
from pipelines.config import Settings
from pipelines.ingest.stage import staged_files
from pipelines.records import Manifest

pytestmark = pytest.mark.integration

EVENTS = [
    make_event(n=0), make_event(n=1), make_event(n=2),
    make_event("access", n=3), make_event("deletion", n=4), make_event("lifecycle", n=5),
]


@pytest.fixture
def env(tmp_path, device_registry) -> dict[str, str]:
    return {
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(device_registry),
    }


@pytest.fixture
def s(env) -> Settings:
    return Settings.from_env(env)


def land(settings: Settings, name: str, events: list[dict]) -> str:
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ndjson(events))
    return str(path)


def visible(settings: Settings) -> list[tuple[str, str, int]]:
    """(event_type, event_id, records) of every event row a reader of ``published/**/*.parquet`` sees."""
    glob = storage.join(settings.published, "**", "*.parquet")
    try:
        rows = duckdb.sql(
            f"SELECT event_type, event_id, records FROM read_parquet('{glob}', hive_partitioning = true,"
            " union_by_name = true) WHERE event_type <> 'declaration'"  # the registry, logged first
        ).fetchall()
    except duckdb.IOException:  # no file matches the glob
        return []
    return sorted(rows, key=lambda r: (r[0], r[1]))


def landed_rows(events: list[dict]) -> list[tuple[str, str, int]]:
    out = [(e["type"].rsplit(".", 1)[1], e["id"], e["data"].get("records")) for e in events]
    return sorted(out, key=lambda r: (r[0], r[1]))


def verify_passes(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli.app, ["verify"], env=env)
    assert result.exit_code == 0, result.output


def assert_published_once(settings: Settings, env: dict[str, str], events: list[dict]) -> None:
    assert visible(settings) == landed_rows(events)
    listed = {storage.join(settings.published, out["path"])
              for m in storage.list_files(settings.manifests, (".json",))
              for out in json.loads(storage.read_bytes(m))["outputs"]}
    assert set(storage.list_files(settings.published, (".parquet",))) == listed
    assert not storage.list_files(layout.pending_root(settings.published))
    assert not storage.list_files(layout.pending_root(settings.quarantine))
    verify_passes(env)


def staged_path(settings: Settings, batch: str, table: str) -> Path:
    return next(path for name, _, path in staged_files(settings, batch) if name == table)


def test_a_truncated_staged_file_is_staged_again_and_published(s, env, caplog):
    uri = land(s, "a.ndjson", EVENTS)
    [batch] = flow.stage_files(s, [uri])
    path = staged_path(s, batch, "collection")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # not Parquet any more
    totals = flow.commit_batches(s, [batch])
    assert (totals["published"], totals["rows_in"]) == (len(EVENTS), len(EVENTS))
    assert "SHA-256 differs" in caplog.text and "staging it again" in caplog.text
    assert_published_once(s, env, EVENTS)
    assert not Path(layout.staging_dir(s, batch)).exists()


def test_a_missing_or_unreadable_staged_batch_is_staged_again(s, env):
    first, second = land(s, "a.ndjson", EVENTS[:3]), land(s, "b.ndjson", EVENTS[3:])
    batches = flow.stage_files(s, [first, second])
    shutil.rmtree(layout.staging_dir(s, batches[0]))  # gone: found again in landing by its hash
    (Path(layout.staging_dir(s, batches[1])) / "stage.json").write_text('{"batch_id": ')
    totals = flow.commit_batches(s, batches)
    assert (totals["batches"], totals["published"]) == (2, len(EVENTS))
    assert_published_once(s, env, EVENTS)


def test_a_staged_row_edited_after_staging_is_refused_and_the_landed_row_published(s, env, caplog):
    uri = land(s, "a.ndjson", EVENTS)
    [batch] = flow.stage_files(s, [uri])
    path = staged_path(s, batch, "collection")
    table = pq.read_table(path)  # valid Parquet, one value changed, the staged leaf hash kept
    records = table.column("records")
    edited = pc.if_else(pc.equal(table.column("event_id"), "collection-1"), pa.scalar(99_999, records.type), records)
    pq.write_table(table.set_column(table.schema.get_field_index("records"), "records", edited), path)
    flow.commit_batches(s, [batch])
    assert "collection__" in caplog.text and "SHA-256 differs" in caplog.text
    assert (("collection", "collection-1", 11)) in visible(s)  # the landed value, not 99,999
    assert_published_once(s, env, EVENTS)


def test_a_staged_file_that_lost_a_row_is_staged_again(s, env):
    uri = land(s, "a.ndjson", EVENTS)
    [batch] = flow.stage_files(s, [uri])
    path = staged_path(s, batch, "collection")
    pq.write_table(pq.read_table(path).slice(1), path)
    totals = flow.commit_batches(s, [batch])
    assert totals["rows_in"] == totals["published"] == len(EVENTS)
    assert_published_once(s, env, EVENTS)


def test_a_conservation_failure_shows_no_row_to_a_glob_and_the_retry_publishes_once(s, env, monkeypatch):
    earlier = land(s, "earlier.ndjson", [make_event(n=7)])
    flow.commit_batches(s, flow.stage_files(s, [earlier]))
    uri = land(s, "a.ndjson", EVENTS)
    [batch] = flow.stage_files(s, [uri])
    seen_at_refusal = []
    real_check = publish._check_conservation

    def refuse(manifest: Manifest) -> None:
        # At the moment of the decision every output of the batch is written: none may be visible.
        seen_at_refusal.append(visible(s))
        raise publish.ConservationError(f"batch {manifest.batch_id}: refused by the test")

    monkeypatch.setattr(publish, "_check_conservation", refuse)
    totals = flow.commit_batches(s, [batch])  # recorded and reported, never a reason to stop later batches
    assert [f["batch"] for f in totals["failed"]] == [batch]
    assert totals["failed"][0]["error"].startswith("ConservationError")
    with pytest.raises(flow.BatchesFailed, match="refused by the test"):
        flow.raise_on_failures(totals)
    # refused once, staged again from the landed bytes, refused again: then it gives up
    assert seen_at_refusal == [landed_rows([make_event(n=7)])] * 2
    assert visible(s) == landed_rows([make_event(n=7)])
    assert not storage.exists(layout.manifest_file(s, batch))
    assert not storage.list_files(layout.pending_root(s.published))
    assert not storage.exists(layout.quarantine_file(s, batch))

    monkeypatch.setattr(publish, "_check_conservation", real_check)
    flow.commit_batches(s, flow.stage_files(s, flow.discover(s)))
    assert_published_once(s, env, [make_event(n=7), *EVENTS])


def test_a_stage_record_that_breaks_conservation_is_staged_again(s, env):
    uri = land(s, "a.ndjson", EVENTS)
    [batch] = flow.stage_files(s, [uri])
    record = Path(layout.staging_dir(s, batch)) / "stage.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "rows_in": len(EVENTS) + 1}))
    totals = flow.commit_batches(s, [batch])
    assert totals["rows_in"] == totals["published"] == len(EVENTS)
    assert_published_once(s, env, EVENTS)


DIE_ON_SECOND_MOVE = """
import os, signal
from pipelines import flow, storage
from pipelines.config import Settings

real_move, moved = storage.move, []


def move_then_die(src, dst):
    if "event_type=declaration" not in dst:  # the registry, logged before the events, moves first
        if moved:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, between two moves of one committed batch
        moved.append(dst)
    real_move(src, dst)


storage.move = move_then_die
flow.run(Settings.from_env(), workers=1)
"""


def test_a_writer_killed_between_moves_is_rolled_forward(s, env):
    events = [*EVENTS, make_event(n=8, window_start="2026-07-03T00:00:00Z", window_end="2026-07-03T01:00:00Z")]
    land(s, "a.ndjson", events)
    child = subprocess.run([sys.executable, "-c", DIE_ON_SECOND_MOVE], env={**os.environ, **env},
                           capture_output=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    manifests = [json.loads(storage.read_bytes(f)) for f in storage.list_files(s.manifests, (".json",))]
    [manifest] = [m for m in manifests if m.get("kind") != "declarations"]  # committed: the manifest is written
    assert len(manifest["outputs"]) >= 3
    assert len(storage.list_files(layout.pending_root(s.published))) >= 2  # not all in place yet
    # what a reader sees meanwhile is part of a committed batch: no row that no manifest lists
    seen = visible(s)
    assert seen and set(seen) < set(landed_rows(events))

    flow.run(s, workers=1)  # nothing new landed: the run finishes the moves
    assert_published_once(s, env, events)
    assert len(storage.list_files(s.manifests, (".json",))) == len(manifests)
