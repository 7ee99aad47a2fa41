"""Stage + publish: conservation, idempotence, duplicates and conflicts, crash recovery, readable output."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, make_event, ndjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines import flow, layout, publish, storage
from pipelines.config import Settings
from pipelines.ingest.stage import stage_file
from pipelines.log import writer

pytestmark = pytest.mark.integration

IDS = [DEPLOYMENT]


def process(settings: Settings, uri: str) -> dict:
    result = stage_file(uri, settings, IDS)
    return publish.commit_batch(settings, result.batch_id)


def published_rows(settings: Settings) -> list[dict]:
    """Published event rows (the declaration rows the flow logs before them are not events)."""
    files = [f for f in storage.list_files(settings.published, (".parquet",)) if "event_type=declaration/" not in f]
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def test_a_clean_file_is_published_with_a_complete_manifest(settings, write_file):
    events = [make_event(n=i) for i in range(5)] + [make_event("access"), make_event("deletion")]
    uri = write_file("clean.ndjson", ndjson(events))
    manifest = process(settings, uri)
    assert (manifest["rows_in"], manifest["published"], manifest["quarantined"], manifest["duplicates"]) == (7, 7, 0, 0)
    assert manifest["source_file"] == "clean.ndjson"
    assert manifest["batch_id"] == storage.sha256_of(uri)[0]
    for out in manifest["outputs"]:
        path = storage.join(settings.published, out["path"])
        assert storage.sha256_of(path)[0] == out["sha256"]
        assert path.endswith(f"event_type={out['table']}/event_date={out['event_date']}/{manifest['batch_id']}.parquet")
    assert storage.exists(layout.manifest_file(settings, manifest["batch_id"]))


def test_bad_rows_go_to_quarantine_with_reasons_and_nothing_is_lost(settings, write_file):
    events = [make_event(n=0), make_event(n=1, records=-3), make_event(n=2, deployment_id="ghost")]
    data = ndjson(events) + b"{not json}\n"
    uri = write_file("mixed.ndjson", data)
    manifest = process(settings, uri)
    assert (manifest["rows_in"], manifest["published"], manifest["quarantined"]) == (4, 1, 3)
    q = pq.read_table(storage.join(settings.quarantine, manifest["quarantine"]["path"])).to_pylist()
    by_line = {r["line"]: r["reasons"] for r in q}
    assert by_line[2] == ["gx:expect_column_values_to_be_between[records]"]
    assert by_line[3] == ["registry:deployment_id not in the deployment registry"]
    assert by_line[4][0].startswith("json:")
    assert all(r["raw"] for r in q) and {r["source_file"] for r in q} == {uri}


def test_duplicates_are_dropped_and_conflicts_quarantined(settings, write_file):
    first = process(settings, write_file("a.ndjson", ndjson([make_event(n=i) for i in range(4)])))
    again = [make_event(n=0), make_event(n=1), make_event(n=9)]
    changed = make_event(n=2)
    changed["data"]["records"] = 999
    second = process(settings, write_file("b.ndjson", ndjson([*again, changed, make_event(n=9)])))
    assert first["published"] == 4
    assert (second["rows_in"], second["published"], second["duplicates"], second["quarantined"]) == (5, 1, 3, 1)
    q = pq.read_table(storage.join(settings.quarantine, second["quarantine"]["path"])).to_pylist()
    assert q[0]["event_id"] == "collection-2" and q[0]["reasons"][0].startswith("conflict:")
    ids = [r["event_id"] for r in published_rows(settings)]
    assert sorted(ids) == sorted({*ids}) and len(ids) == 5


def test_unreadable_file_is_quarantined_whole_with_file_and_line(settings, write_file):
    text = json.dumps([make_event(n=i) for i in range(4)], indent=1).encode()
    uri = write_file("cut.json", text[:200])
    manifest = process(settings, uri)
    assert manifest["published"] == 0 and manifest["rows_in"] == 0
    assert manifest["file_error"].startswith(f"{uri}: line ")
    q = pq.read_table(storage.join(settings.quarantine, manifest["quarantine"]["path"])).to_pylist()
    assert q[0]["reasons"][0].startswith("file: JSON syntax")
    kept = layout.quarantined_original(settings, manifest["batch_id"], "cut.json")
    assert storage.read_bytes(kept) == text[:200]


def test_empty_file_is_an_error_naming_the_file(settings, write_file):
    uri = write_file("empty.ndjson", b"")
    manifest = process(settings, uri)
    assert manifest["file_error"] == f"{uri}: line 0: file is empty"


def test_reprocessing_the_same_file_changes_nothing(settings, write_file):
    uri = write_file("same.ndjson", ndjson([make_event(n=i) for i in range(6)]))
    first = process(settings, uri)
    files = {f: storage.sha256_of(f) for f in storage.list_files(settings.home)}
    copy = write_file("copy/same-again.ndjson", Path(uri).read_bytes())
    second = process(settings, copy)
    assert second == first
    after = {f: storage.sha256_of(f) for f in storage.list_files(settings.home)}
    assert after == files
    assert writer.latest_checkpoint(settings).size == 7


def test_published_tables_read_back_in_duckdb_with_documented_types(settings, write_file):
    process(settings, write_file("x.ndjson", ndjson([make_event(n=i) for i in range(3)] + [make_event("access")])))
    con = duckdb.connect()
    glob = storage.join(settings.published, "event_type=collection", "**", "*.parquet")
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["window_start"] == "TIMESTAMP WITH TIME ZONE"
    assert types["records"] == "BIGINT" and types["leaf_index"] == "BIGINT"
    assert types["deployment_id"] == "VARCHAR" and types["event_date"] == "DATE"
    assert rel.aggregate("sum(records)").fetchall()[0][0] == 10 + 11 + 12


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", ["parquet", "log", "manifest"])
def test_a_crash_mid_publish_recovers_on_the_next_run(settings, write_file, monkeypatch, crash_at):
    uri = write_file("c.ndjson", ndjson([make_event(n=i) for i in range(3)] + [make_event("deletion")]))
    batch = stage_file(uri, settings, IDS).batch_id
    real_write, real_open = storage.write_bytes, writer.open_log
    calls = {"n": 0}

    def flaky_write(target, data, content_type=None):
        calls["n"] += 1
        if crash_at == "parquet" and target.endswith(".parquet") and calls["n"] == 2:
            raise Crash(target)
        if crash_at == "manifest" and target.endswith(f"{batch}.json"):
            raise Crash(target)
        return real_write(target, data, content_type)

    def flaky_log(s):
        log = real_open(s)
        if crash_at == "log":
            def boom(*a, **k):
                raise Crash("log")
            log.append = boom
        return log

    monkeypatch.setattr(storage, "write_bytes", flaky_write)
    monkeypatch.setattr(writer, "open_log", flaky_log)
    with pytest.raises(Crash):
        publish.commit_batch(settings, batch)
    assert not storage.exists(layout.manifest_file(settings, batch))
    monkeypatch.undo()
    manifest = publish.commit_batch(settings, batch)
    assert manifest["published"] == 4
    rows = published_rows(settings)
    assert sorted(r["leaf_index"] for r in rows) == [0, 1, 2, 3]
    assert writer.latest_checkpoint(settings).size == 5  # four rows + the manifest leaf
    assert not [f for f in Path(settings.home).rglob("*.partial")]


events_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(["ok", "negative", "ghost", "json", "conflict"])),
    min_size=1, max_size=25,
)


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=events_strategy)
def test_conservation_and_idempotence_hold_for_any_mix(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("prop")
    s = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_LANDING": str(root / "landing")})
    lines = []
    for n, kind in spec:
        if kind == "json":
            lines.append(b'{"id": ')
            continue
        event = make_event(n=n)
        if kind == "negative":
            event["data"]["records"] = -1
        elif kind == "ghost":
            event["data"]["deployment_id"] = "ghost"
        elif kind == "conflict":
            event["data"]["records"] = 1000 + n
        lines.append(json.dumps(event).encode())
    path = root / "landing" / "f.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    m = process(s, str(path))
    assert m["rows_in"] == len(spec) == m["published"] + m["quarantined"] + m["duplicates"]
    assert len(published_rows(s)) == m["published"]
    # idempotence: the same bytes again are the same batch; nothing changes (the first flow run also
    # logs the registry, which commit_batch alone does not)
    flow.commit_batches(s, flow.stage_files(s, [str(path)]))
    before = writer.latest_checkpoint(s)
    again = flow.commit_batches(s, flow.stage_files(s, [str(path)]))
    assert (again["published"], again["already_published"]) == (0, 1)  # a run counts only what it added
    assert writer.latest_checkpoint(s) == before
    assert len(published_rows(s)) == m["published"]


def test_rows_staged_without_their_hashes_publish_the_same_leaves(tmp_path, write_file):
    """Staging stores each row's content and leaf hash; a batch staged before it did (no such
    columns) is published with both computed by the publisher, to the same bytes."""
    from pipelines.ingest.stage import staged_files
    from pipelines.log import rowhash
    from pipelines.log.verify import verify_log

    events = [make_event(n=i) for i in range(6)] + [make_event("access", n=1), make_event("deletion", n=2)]
    uri = write_file("hashes.ndjson", ndjson([*events, events[0]]))
    outcomes = []
    for name, strip in (("stored", False), ("computed", True)):
        s = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / name), "SENSORLOG_LANDING": str(Path(uri).parent)})
        batch = stage_file(uri, s, IDS).batch_id
        for _, _, path in staged_files(s, batch):
            table = pq.read_table(path)
            assert {"content_hash", rowhash.LEAF_HASH} <= set(table.column_names)
            if strip:
                pq.write_table(table.drop_columns(["content_hash", rowhash.LEAF_HASH]), path)
        manifest = publish.commit_batch(s, batch)
        assert (manifest["published"], manifest["duplicates"]) == (8, 1)
        assert verify_log(s.log, s.published, s.manifests).ok
        outcomes.append(sorted((r["leaf_index"], r["leaf_hash"], r["content_hash"]) for r in published_rows(s)))
    assert outcomes[0] == outcomes[1]
