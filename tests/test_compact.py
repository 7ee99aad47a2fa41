"""``sensorlog compact``: a partition's small files merged into one, every reader and verifier unaffected.

One small home is built per module (six batches, each touching the same three days in three tables,
then the registry's declarations); each test compacts its own copy. A crash is injected at every step
of a compaction, and the published rows are read back at each intermediate state.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, make_event, ndjson
from typer.testing import CliRunner

from pipelines import flow, layout, publish
from pipelines.cli import app
from pipelines.config import PROJECT_DIR, Settings
from pipelines.log.verify import Report, verify_log
from pipelines.portal import build_portal
from pipelines.publish import compact

pytestmark = pytest.mark.integration

DAYS = ("2026-07-01", "2026-07-02", "2026-07-03")
BATCHES = 6


def _events(batch: int) -> list[dict]:
    """One batch: rows on each of DAYS in the collection, access and lifecycle tables."""
    events = []
    for k, day in enumerate(DAYS):
        for h in range(3):
            n = batch * 100 + k * 10 + h
            events.append(make_event(n=n, window_start=f"{day}T0{h}:00:00Z", window_end=f"{day}T0{h + 1}:00:00Z"))
        events.append(make_event("access", n=batch * 100 + k, accessed_at=f"{day}T10:00:00Z"))
        events.append(make_event("lifecycle", n=batch * 100 + k, at=f"{day}T03:00:00Z"))
    return events


def settings_for(home: Path) -> Settings:
    return Settings.from_env({"SENSORLOG_HOME": str(home), "SENSORLOG_REGISTRY": str(home.parent / "registry")})


def land(settings: Settings, batch: int) -> None:
    path = Path(settings.landing) / f"batch-{batch}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ndjson(_events(batch)))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("compact")
    registry = base / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    s = settings_for(base / "home")
    for batch in range(BATCHES):
        land(s, batch)
    flow.run(s)
    return base


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built / "registry", tmp_path / "registry")
    return Path(shutil.copytree(built / "home", tmp_path / "home", symlinks=True))


def rows(settings: Settings) -> list[tuple]:
    """Every published row, as DuckDB's glob reads them, sorted by leaf index."""
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT leaf_index, leaf_hash, source, event_id FROM read_parquet(?, union_by_name = true)"
            " ORDER BY leaf_index", [f"{settings.published}/**/*.parquet"]
        ).fetchall()
    finally:
        con.close()


def arrow_rows(settings: Settings) -> Counter:
    """The same rows through pyarrow's dataset (hive partitions), as a multiset."""
    files = sorted(str(p) for p in Path(settings.published).rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f).select(["leaf_index", "leaf_hash"]) for f in files])
    return Counter(zip(table.column("leaf_index").to_pylist(), table.column("leaf_hash").to_pylist(), strict=True))


def files_per_partition(settings: Settings) -> Counter:
    return Counter(str(p.parent.relative_to(settings.published)) for p in Path(settings.published).rglob("*.parquet"))


def verify(settings: Settings) -> Report:
    return verify_log(settings.log, settings.published, settings.manifests)


def assert_verified(settings: Settings) -> Report:
    report = verify(settings)
    assert report.ok, [str(p) for p in report.problems]
    return report


def compacted_files(settings: Settings) -> list[Path]:
    return sorted(Path(settings.published).rglob(f"{layout.COMPACTED_PREFIX}*.parquet"))


# -- compaction itself -------------------------------------------------------------------------------


def test_compaction_leaves_one_file_per_partition_and_the_same_rows(home: Path) -> None:
    s = settings_for(home)
    before, before_arrow = rows(s), arrow_rows(s)
    assert max(files_per_partition(s).values()) == BATCHES
    assert_verified(s)

    counts = files_per_partition(s).values()
    merged, written = sum(n for n in counts if n > 1), sum(n > 1 for n in counts)
    result = compact.compact(s)

    assert (result.merged, result.written) == (merged, written)
    assert set(files_per_partition(s).values()) == {1}
    assert rows(s) == before and arrow_rows(s) == before_arrow
    assert len(before) == len(set(before))
    report = assert_verified(s)
    assert any("compaction records" in p for p in report.passed)
    for path in compacted_files(s):
        table = pq.read_table(path)
        indexes = table.column("leaf_index").to_pylist()
        assert indexes == sorted(indexes)
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    records = sorted(Path(layout.compactions_dir(s)).glob("*.json"))
    assert len(records) == len(compacted_files(s))
    replaced = json.loads(records[0].read_text())["replaced"]
    assert len(replaced) == BATCHES and all(r["path"].endswith(".parquet") for r in replaced)


def test_compacting_twice_is_a_no_op(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    state = {p: p.read_bytes() for p in [*compacted_files(s), *Path(layout.compactions_dir(s)).glob("*.json")]}
    again = compact.compact(s)
    assert again.merged == 0 and again.files_before == again.files_after
    assert {p: p.read_bytes() for p in [*compacted_files(s), *Path(layout.compactions_dir(s)).glob("*.json")]} == state


def test_a_dry_run_changes_nothing(home: Path) -> None:
    s = settings_for(home)
    names = sorted(Path(s.published).rglob("*.parquet"))
    result = compact.compact(s, dry_run=True)
    assert result.merged and result.files_after < result.files_before
    assert sorted(Path(s.published).rglob("*.parquet")) == names
    assert not Path(layout.compactions_dir(s)).exists()


def test_max_rows_caps_a_compacted_file(home: Path) -> None:
    s = settings_for(home)
    before = rows(s)
    compact.compact(s, max_rows=6)  # three rows a batch in each collection partition: two batches a file
    collection = [c for p, c in files_per_partition(s).items() if p.startswith("event_type=collection/")]
    assert collection == [BATCHES // 2] * len(DAYS)
    assert all(pq.read_metadata(p).num_rows <= 6 for p in compacted_files(s))
    assert rows(s) == before
    assert_verified(s)
    assert compact.compact(s, max_rows=6).merged == 0


def test_publishing_after_compaction_then_compacting_again(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    first_records = {p.name for p in Path(layout.compactions_dir(s)).glob("*.json")}
    land(s, BATCHES)
    flow.run(s)
    assert max(files_per_partition(s).values()) == 2  # the compacted file and the new batch's
    assert_verified(s)
    before = rows(s)

    compact.compact(s)

    assert set(files_per_partition(s).values()) == {1}
    assert rows(s) == before
    records = {p.name for p in Path(layout.compactions_dir(s)).glob("*.json")}
    assert not records & first_records  # every compacted file was merged again: its record retired
    assert_verified(s)


def test_prove_and_check_proof_a_row_of_a_compacted_file(home: Path, tmp_path: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    path = next(p for p in compacted_files(s) if "event_type=collection" in str(p))
    index = pq.read_table(path).column("leaf_index")[1].as_py()
    runner = CliRunner()
    env = {"SENSORLOG_HOME": str(home), "SENSORLOG_REGISTRY": str(home.parent / "registry")}
    proof = tmp_path / "leaf.proof"
    result = runner.invoke(app, ["prove", "--index", str(index), "--proof-file", str(proof)], env=env)
    assert result.exit_code == 0, result.output
    assert path.name in result.output
    checked = runner.invoke(app, ["check-proof", str(proof), "--vkey", str(Path(s.log) / "log.vkey")], env=env)
    assert checked.exit_code == 0 and "VALID" in checked.output, checked.output


def test_a_site_built_after_compaction_verifies_from_a_copy(home: Path, tmp_path: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    out = tmp_path / "site"
    build_portal(s, str(out))
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    assert sorted((copy / "log" / "compactions").glob("*.json"))
    assert sorted((copy / "data").rglob(f"{layout.COMPACTED_PREFIX}*.parquet"))
    result = CliRunner().invoke(app, ["verify", "--log", str(copy / "log"), "--data", str(copy / "data"),
                                      "--site", str(copy)], env={"SENSORLOG_HOME": str(tmp_path / "nowhere")})
    assert result.exit_code == 0 and "VERIFIED" in result.output, result.output
    path = next(p for p in (copy / "data").rglob(f"{layout.COMPACTED_PREFIX}*.parquet") if "collection" in str(p))
    index = pq.read_table(path).column("leaf_index")[0].as_py()
    proved = CliRunner().invoke(app, ["prove", "--log", str(copy / "log"), "--data", str(copy / "data"),
                                      "--index", str(index)], env={"SENSORLOG_HOME": str(tmp_path / "nowhere")})
    assert proved.exit_code == 0 and path.name in proved.output, proved.output


# -- tampering ------------------------------------------------------------------------------------


def test_a_changed_row_in_a_compacted_file_is_reported(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    path = next(p for p in compacted_files(s) if "collection" in str(p))
    table = pq.read_table(path)
    records = table.column("records").to_pylist()
    records[2] += 1
    pq.write_table(table.set_column(table.schema.get_field_index("records"), "records",
                                    pa.array(records, table.schema.field("records").type)), path)
    report = verify(s)
    rel = str(path.relative_to(s.published))
    assert any(p.check == "file" and p.subject == rel and "the file was changed" in p.message for p in report.problems)
    assert any(p.check == "row" and rel in p.subject and "changed after publication" in p.message
               for p in report.problems)


def test_a_removed_compacted_file_is_reported(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    path = compacted_files(s)[0]
    path.unlink()
    report = verify(s)
    rel = str(path.relative_to(s.published))
    assert any(p.subject == rel and "but missing" in p.message for p in report.problems), report.problems


def test_a_removed_or_edited_compaction_record_is_reported(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s)
    records = sorted(Path(layout.compactions_dir(s)).glob("*.json"))
    record = json.loads(records[0].read_text())
    record["sha256"] = "0" * 64
    records[0].write_text(json.dumps(record))
    edited = verify(s)
    assert any(p.check == "file" and "compactions/" in p.message and "changed" in p.message for p in edited.problems)
    records[0].unlink()
    removed = verify(s)
    assert any(p.check == "extra" and p.subject == record["path"] for p in removed.problems)
    assert any(p.check == "file" and "but missing" in p.message for p in removed.problems)


def test_an_old_batch_file_put_back_next_to_its_compacted_file_is_reported(home: Path, tmp_path: Path) -> None:
    s = settings_for(home)
    saved = tmp_path / "saved.parquet"
    outputs = [o["path"] for m in Path(s.manifests).glob("*.json") for o in json.loads(m.read_text())["outputs"]]
    rel = next(o for o in outputs if o.startswith("event_type=collection/"))
    shutil.copy(Path(s.published) / rel, saved)
    compact.compact(s)
    shutil.copy(saved, Path(s.published) / rel)  # a reader's glob would now see its rows twice
    report = verify(s)
    assert any(p.check == "extra" and p.subject == rel for p in report.problems)


def test_a_record_claiming_another_records_output_is_reported(home: Path) -> None:
    s = settings_for(home)
    compact.compact(s, max_rows=6)
    records = [r for r in sorted(Path(layout.compactions_dir(s)).glob("*.json"))
               if "event_date=2026-07-01" in r.read_text() and "event_type=collection" in r.read_text()]
    first, second = (json.loads(r.read_text()) for r in records[:2])
    second["parts"] = first["parts"][:1] + second["parts"]  # one of the first's outputs claimed again
    second["rows"] += first["parts"][0]["rows"]
    records[1].write_text(json.dumps(second))
    report = verify(s)
    assert any(p.check == "compaction" and p.subject == f"compactions/{records[1].name}" for p in report.problems)
    assert not report.ok


# -- refusals -------------------------------------------------------------------------------------


def test_an_unlisted_file_in_a_partition_refuses_compaction(home: Path) -> None:
    s = settings_for(home)
    stray = next(Path(s.published).rglob("*.parquet")).parent / "stray.parquet"
    shutil.copy(next(Path(s.published).rglob("*.parquet")), stray)
    env = {"SENSORLOG_HOME": str(home), "SENSORLOG_REGISTRY": str(home.parent / "registry")}
    result = CliRunner().invoke(app, ["compact"], env=env)
    assert result.exit_code == 1
    assert "stray.parquet" in result.output and "no manifest" in result.output and "Traceback" not in result.output


def test_an_s3_published_root_is_refused_with_a_reason(tmp_path: Path) -> None:
    env = {"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_PUBLISHED": "s3://bucket/published"}
    (tmp_path / "home").mkdir()  # a home that does not exist is refused before the S3 root is looked at
    result = CliRunner().invoke(app, ["compact"], env=env)
    assert result.exit_code == 1 and "S3" in result.output and "Traceback" not in result.output
    assert "skipped" in compact.compact_after_publish(Settings.from_env(env))


def test_the_command_prints_what_it_merged(home: Path) -> None:
    env = {"SENSORLOG_HOME": str(home), "SENSORLOG_REGISTRY": str(home.parent / "registry")}
    dry = CliRunner().invoke(app, ["compact", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "would merge" in dry.output
    done = CliRunner().invoke(app, ["compact"], env=env)
    assert done.exit_code == 0 and "merged" in done.output
    again = CliRunner().invoke(app, ["compact"], env=env)
    assert again.exit_code == 0 and "nothing to compact" in again.output


# -- crashes and concurrent readers ---------------------------------------------------------------


class Crash(Exception):
    pass


def _crash_on_call(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    """Make ``compact.<name>`` raise on its ``call``-th call (1-based), running it normally before."""
    real = getattr(compact, name)
    calls = {"n": 0}

    def wrapper(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == call:
            raise Crash(f"{name} #{call}")
        return real(*args, **kwargs)

    monkeypatch.setattr(compact, name, wrapper)


CRASH_POINTS = [
    ("_merge", 2),  # a merged file written, the next not: no journal
    ("write_atomic", 1),  # the journal itself
    ("_write_records", 1),  # committed, nothing applied
    ("exchange", 1),  # records written, no partition swapped
    ("exchange", 4),  # some partitions swapped, others not
    ("_retire", 1),  # every partition swapped
    ("_clean", 1),  # only the work area left
]


@pytest.mark.parametrize(("step", "call"), CRASH_POINTS)
def test_a_crash_at_any_step_leaves_readers_whole_and_recovery_finishes(
    home: Path, monkeypatch: pytest.MonkeyPatch, step: str, call: int
) -> None:
    s = settings_for(home)
    before = rows(s)
    _crash_on_call(monkeypatch, step, call)
    with pytest.raises(Crash):
        compact.compact(s)
    assert rows(s) == before  # a reader between the crash and the recovery: no row twice, none missing
    monkeypatch.undo()

    publish.recover(s)

    assert rows(s) == before
    assert_verified(s)
    compact.compact(s)
    assert set(files_per_partition(s).values()) == {1}
    assert rows(s) == before
    assert_verified(s)
    assert all(p.name.startswith(compact.RETIRED) for p in Path(layout.compaction_pending(s)).iterdir())


def test_a_crash_retiring_a_recompacted_record_is_finished_by_the_next_publish(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(home)
    compact.compact(s)
    land(s, BATCHES)
    flow.run(s)
    before = rows(s)
    _crash_on_call(monkeypatch, "_retire", 1)
    with pytest.raises(Crash):
        compact.compact(s)
    monkeypatch.undo()
    assert rows(s) == before
    unfinished = verify(s)  # both records of the merged-again files are there: verify says so
    assert any(p.check == "compaction" and "holds too" in p.message for p in unfinished.problems)
    land(s, BATCHES + 1)
    flow.run(s)  # publishing finishes the compaction first (publish._recover)
    assert_verified(s)
    assert len(rows(s)) > len(before)


def test_every_state_a_reader_can_list_holds_each_row_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the whole published tree just before and just after every directory exchange."""
    s = settings_for(home)
    before = rows(s)
    real = compact.exchange
    seen: list[int] = []

    def watched(a: Path, b: Path) -> None:
        assert rows(s) == before
        real(a, b)
        assert rows(s) == before
        assert Counter(arrow_rows(s).values()) == Counter({1: len(before)})
        seen.append(1)

    monkeypatch.setattr(compact, "exchange", watched)
    compact.compact(s)
    assert len(seen) == 3 * len(DAYS)  # every partition of the three event tables; the declarations hold one file


def test_a_reader_holding_an_old_directory_reads_it_whole_until_the_next_compaction(home: Path) -> None:
    """A reader that opened a partition directory before its swap (``openat`` style) still lists and reads
    every old file afterwards: the old directory is set aside, not emptied, until the next compaction."""
    s = settings_for(home)
    partition = Path(s.published) / f"event_type=collection/event_date={DAYS[0]}"
    names = sorted(os.listdir(partition))
    fd = os.open(partition, os.O_RDONLY | os.O_DIRECTORY)
    try:
        expected = sum(pq.read_metadata(partition / n).num_rows for n in names)
        compact.compact(s)
        assert sorted(os.listdir(partition)) != names
        assert sorted(os.listdir(fd)) == names
        held = 0
        for name in names:
            with open(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as handle:
                held += pq.read_metadata(handle).num_rows
        assert held == expected
    finally:
        os.close(fd)
    land(s, BATCHES)
    flow.run(s)
    compact.compact(s)  # drops the directories the first compaction set aside
    assert len(list(Path(layout.compaction_pending(s)).glob(f"{compact.RETIRED}*"))) == 1


def test_a_reader_globbing_during_compaction_always_counts_every_row_once(home: Path) -> None:
    """A reader thread globbing in a loop: every read it completes sees exactly N rows. (A read whose
    listing predates a swap and whose open follows it fails with a missing file; it never miscounts.)"""
    s = settings_for(home)
    expected = len(rows(s))
    counts: list[int] = []
    failures: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set() or not counts:
            try:
                dataset = ds.dataset(s.published, format="parquet", partitioning="hive")
                counts.append(dataset.count_rows())
            except (OSError, pa.ArrowException) as exc:
                failures.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        compact.compact(s)
    finally:
        done.set()
        thread.join()
    assert counts and set(counts) == {expected}
    assert all("No such file" in f or "not found" in f.lower() for f in failures), failures
