"""The publisher's seen index: sorted runs of key hashes (``keyruns``) and the classification built on
them (``dedupe.classify``), checked against a plain-Python model of what de-duplication must decide.

The model is the rule the join against the whole index implemented: a (source, id) published before
is a duplicate when its content is the same and a conflict otherwise, unless it is the same row of the
same batch (a re-run after a crash); a key first seen in this table's rows is published once and its
repeats compared with that first row."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines import layout
from pipelines.config import Settings
from pipelines.publish import dedupe, keyruns
from pipelines.publish.keyruns import KeyRuns
from pipelines.schemas import event_table

pytestmark = pytest.mark.integration

DATES = ("2026-07-01", "2026-07-02")
TABLES = ("collection", "lifecycle")
T0 = datetime(2026, 7, 1, 8, tzinfo=UTC)
# Examples open DuckDB files and fsync runs: never judged by time on a slow, shared machine.
SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


# ---- the runs -------------------------------------------------------------------------------------


@hsettings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(
    batches=st.lists(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 40), max_size=30), max_size=8),
    probes=st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 40), max_size=30),
    limit=st.sampled_from([4, 16, keyruns.MERGE_LIMIT]),
)
def test_runs_hold_exactly_the_keys_added_across_merges_and_reloads(tmp_path_factory, batches, probes, limit):
    folder = tmp_path_factory.mktemp("runs")
    added: set[int] = set()
    original = keyruns.MERGE_LIMIT
    keyruns.MERGE_LIMIT = limit
    try:
        runs = KeyRuns(folder, "f")
        assert not runs.valid  # nothing on disk yet: the index rebuilds it (empty) before first use
        runs.rebuild(np.array([], np.uint64))
        for batch in batches:
            runs.add(np.array(batch, np.uint64))
            added.update(batch)
            reloaded = KeyRuns(folder, "f")  # what the next batch's process finds on disk
            assert reloaded.valid
            query = np.array(sorted(added) + probes, np.uint64)
            expect = [int(q) in added for q in query]
            assert runs.contains(query).tolist() == expect
            assert reloaded.contains(query).tolist() == expect
            sizes = [r.keys for r in reloaded.runs]
            # A binary counter: no two neighbours are left that should have merged (the older no larger
            # and both together within the limit), so there are about log2(keys) runs below the limit.
            assert not any(a <= b and a + b <= limit for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        assert sorted(p.name for p in folder.glob("run-*.npy")) == sorted(r.file for r in KeyRuns(folder, "f").runs)
    finally:
        keyruns.MERGE_LIMIT = original


def test_runs_of_another_hash_function_or_damaged_are_not_trusted(tmp_path):
    runs = KeyRuns(tmp_path, "one")
    runs.add(np.array([1, 2, 3], np.uint64))
    assert KeyRuns(tmp_path, "one").valid
    assert not KeyRuns(tmp_path, "two").valid
    (tmp_path / keyruns.MANIFEST).write_text("{not json")
    assert not KeyRuns(tmp_path, "one").valid
    runs = KeyRuns(tmp_path, "one")
    runs.rebuild(np.array([5, 5, 9], np.uint64))
    assert runs.contains(np.array([5, 9, 1], np.uint64)).tolist() == [True, True, False]
    assert KeyRuns(tmp_path, "one").valid


# ---- classification against the model --------------------------------------------------------------


def _row(table: str, source: str, event_id: str, variant: int, ord_: int) -> dict:
    at = T0.replace(minute=variant)
    if table == "collection":
        return {
            "source": source, "event_id": event_id, "event_time": at, "deployment_id": "dep-1",
            "data_class": "video", "window_start": T0, "window_end": at, "records": variant,
            "bytes": None, "storage_location": None,
        }
    return {
        "source": source, "event_id": event_id, "event_time": at, "deployment_id": "dep-1",
        "action": "commissioned", "at": at, "details": f"v{variant}",
    }


def _stage(folder: Path, rows: list[tuple[str, str, str, int, str]]) -> dict[str, list[Path]]:
    """Write ``rows`` (table, source, id, variant, date) as staged files; ``_ord`` is the row's position."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths: dict[str, list[Path]] = {}
    for table in TABLES:
        schema = event_table(table).staged_schema
        for date in DATES:
            part = [(i, r) for i, r in enumerate(rows) if r[0] == table and r[4] == date]
            if not part:
                continue
            records = [_row(table, s, e, v, i) for i, (_, s, e, v, _) in part]
            data = pa.Table.from_pylist(records, schema=schema)
            data = data.append_column("_ord", pa.array([i for i, _ in part], pa.int64()))
            data = data.append_column("_line", pa.array([i + 1 for i, _ in part], pa.int64()))
            data = data.append_column("_raw", pa.array([f"raw {i}" for i, _ in part], pa.string()))
            path = folder / f"{table}__{date}.parquet"
            pq.write_table(data, path)
            paths.setdefault(table, []).append(path)
    return paths


def _model(seen: dict, rows, batch_id: str):
    """Expected (published (table, source, id), duplicates, conflicts (ord, where)) for one batch; updates ``seen``."""
    published, conflicts, duplicates = [], [], 0
    for table in TABLES:
        mine = [((r[4], i), r) for i, r in enumerate(rows) if r[0] == table]  # the first of a key: by line
        before = dict(seen)  # what the index holds when this table's rows are looked up
        first: dict = {}
        for (_, ord_), (_, source, event_id, variant, _) in mine:
            key, content = (source, event_id), (table, variant)
            if key in before:
                prev_content, prev_batch, prev_ord = before[key]
                if prev_batch == batch_id and prev_ord == ord_:
                    published.append((table, source, event_id))  # its own row, from a run that committed
                elif prev_content == content:
                    duplicates += 1
                else:
                    where = "earlier in this file" if prev_batch == batch_id else f"batch {prev_batch}"
                    conflicts.append((ord_, where))
            elif key in first:
                if first[key] == content:
                    duplicates += 1
                else:
                    conflicts.append((ord_, "earlier in this file"))
            else:
                first[key] = content
                published.append((table, source, event_id))
                seen[key] = (content, batch_id, ord_)
    return sorted(published), duplicates, sorted(conflicts)


def _classify(settings: Settings, paths: dict[str, list[Path]], batch_id: str):
    index = dedupe.open_index(settings)
    published, conflicts, duplicates = [], [], 0
    try:
        index.begin()
        for table in TABLES:
            if table not in paths:
                continue
            result = dedupe.classify(index, table, paths[table], batch_id, "landing/x.ndjson")
            publish = result.publish.select(["source", "event_id"]).to_pylist()
            published += [(table, r["source"], r["event_id"]) for r in publish]
            duplicates += result.duplicates
            for c in result.conflicts:
                conflicts.append((c.line - 1, c.reasons[0].rsplit("(", 1)[1].rstrip(")")))
        index.commit()
    finally:
        index.close()
    return sorted(published), duplicates, sorted(conflicts)


ROWS = st.lists(
    st.tuples(
        st.sampled_from(TABLES), st.sampled_from(["s1", "s2"]), st.sampled_from(["e1", "e2", "e3", "e4"]),
        st.integers(0, 2), st.sampled_from(DATES),
    ),
    min_size=1,
    max_size=12,
)


@hsettings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)
@given(
    batches=st.lists(st.tuples(ROWS, st.booleans(), st.booleans()), min_size=1, max_size=5),
    old_format=st.booleans(),
)
def test_classify_decides_as_the_model_across_batches_reruns_and_rebuilds(tmp_path_factory, batches, old_format):
    """Each batch against the model; a batch marked for it is classified again after it committed (the
    re-run after a crash between the index commit and the manifest) and must decide the same; a batch
    marked for it finds its key runs deleted (rebuilt from the index). ``old_format``: the index starts
    as an earlier version wrote it (no ``key_hash`` column, no runs)."""
    tmp = tmp_path_factory.mktemp("dedupe")
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp / "home"), "SENSORLOG_LANDING": str(tmp / "landing")})
    if old_format:
        db = Path(layout.index_db(settings))
        db.parent.mkdir(parents=True)
        with duckdb.connect(str(db)) as con:
            con.execute(
                "CREATE TABLE seen (source VARCHAR, event_id VARCHAR, content_hash VARCHAR,"
                " batch_id VARCHAR, ord BIGINT)"
            )
    seen: dict = {}
    for n, (rows, rerun, lose_runs) in enumerate(batches):
        batch_id = f"{n:064x}"
        paths = _stage(tmp / "staged", rows)
        if lose_runs:
            shutil.rmtree(layout.seen_keys_dir(settings), ignore_errors=True)
        expected = _model(seen, rows, batch_id)
        assert _classify(settings, paths, batch_id) == expected
        if rerun:  # finds its own rows in the index and decides the same for every row
            assert _classify(settings, paths, batch_id) == expected
            assert _model(seen, rows, batch_id) == expected
    # The index holds each published key once.
    with duckdb.connect(layout.index_db(settings)) as con:
        [(rows_, keys)] = con.execute("SELECT count(*), count(DISTINCT (source, event_id)) FROM seen").fetchall()
    assert rows_ == keys == len(seen)


def test_a_batch_of_new_keys_reads_no_index_row(settings, tmp_path, monkeypatch):
    """New keys are told apart by the runs alone: the exact lookup is not run when nothing may repeat."""
    first = _stage(tmp_path / "a", [("collection", "s1", f"e{i}", 0, DATES[0]) for i in range(50)])
    _classify(settings, first, "a" * 64)
    calls = []
    real = dedupe.SeenIndex.previous

    def counting(self, rows, key_hash, candidates):
        calls.append(int(candidates.sum()))
        return real(self, rows, key_hash, candidates)

    monkeypatch.setattr(dedupe.SeenIndex, "previous", counting)
    second = _stage(tmp_path / "b", [("collection", "s1", f"n{i}", 0, DATES[0]) for i in range(50)])
    assert _classify(settings, second, "b" * 64)[0] == sorted(("collection", "s1", f"n{i}") for i in range(50))
    assert calls == [0]
    third = _stage(tmp_path / "c", [("collection", "s1", "e3", 0, DATES[0]), ("collection", "s1", "z", 0, DATES[0])])
    assert _classify(settings, third, "c" * 64) == ([("collection", "s1", "z")], 1, [])
    assert calls == [0, 1]
