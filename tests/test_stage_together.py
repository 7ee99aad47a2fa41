"""Staging consecutive files together (one GX call per table over all their rows) gives each file the
staging folder staging it alone gives: the same staged Parquet, the same quarantine rows in order, the
same stage record and validation summary; only the stored GX results differ, and fewer GX calls run."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import layout
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest import stage
from pipelines.ingest.parsing import UnparseableFile
from pipelines.quality import docs as quality_docs
from pipelines.quality.summary import result_path

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, tzinfo=UTC)
KNOWN = {DEPLOYMENT: datetime(2026, 1, 1, tzinfo=UTC)}
CHUNK = 7  # events per parse chunk: most files span several


def _mixed(n: int) -> list[dict]:
    """Valid rows of several tables between rows GX rejects in several tables, and other checks' rejects."""
    events = []
    for i in range(24):
        kind = ("collection", "deletion", "access", "collection")[i % 4]
        events.append(make_event(kind, n=n + i))
    events[3] = make_event(n=n + 3, records=-1)  # gx: between (collection)
    events[5] = make_event("deletion", n=n + 5, deleted_at="2026-06-30T00:00:00Z")  # gx: pair (deletion)
    events[10] = make_event("access", n=n + 10, role="")  # gx (access)
    events[14] = make_event("access", n=n + 14, purpose="call jane.doe@example.org")  # privacy
    events[17] = make_event(n=n + 17, window_start="2099-01-01T00:00:00Z", window_end="2099-01-01T01:00:00Z")
    return events


def _landing(write_file) -> list[str]:
    mixed = ndjson(_mixed(0))
    lines = ndjson(_mixed(100)).split(b"\n")
    lines.insert(9, b'{"specversion": "1.0", "id": ')  # a line that does not parse
    broken = gzip.compress(ndjson([make_event(n=300 + i) for i in range(40)]))
    return [
        write_file("a-mixed.ndjson", mixed),
        write_file("b-mixed.ndjson", b"\n".join(lines)),
        write_file("c-unknown.ndjson", ndjson([make_event(n=200 + i, deployment_id="not-registered")
                                               for i in range(5)] + [make_event("deletion", n=210)])),
        write_file("d-broken.ndjson.gz", broken[: len(broken) * 2 // 3]),  # breaks after a few chunks
        write_file("e-empty.ndjson", b""),
        write_file("f-copy.ndjson", mixed),  # the same bytes as a-mixed: the same batch
        write_file("g-array.json", json.dumps([make_event("access", n=400 + i) for i in range(9)]).encode()),
        write_file("h-not-an-array.json", b'{"specversion": "1.0"}'),
        write_file("i-mixed.ndjson", ndjson(_mixed(500))),
    ]


def _settings(tmp_path: Path, home: str) -> Settings:
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / home), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
    })


def _folder(settings: Settings, result: stage.StageResult) -> dict:
    """What staging wrote for a file: its record (without its GX result keys) and each file's rows."""
    folder = Path(layout.staging_dir(settings, result.batch_id))
    record = json.loads((folder / "stage.json").read_text())
    record.pop("validation_results")
    tables = {p.name: pq.read_table(p) for p in sorted(folder.glob("*.parquet"))}
    return {"record": record, "tables": tables}


def test_group_staging_writes_what_file_by_file_staging_writes(write_file, tmp_path, gx_calls, monkeypatch) -> None:
    uris = _landing(write_file)
    real = stage.parse_file

    def breaking(uri, *args, **kwargs):
        """A file that breaks after two chunks were parsed (and held), as a long gzip stream cut short does."""
        chunks = real(uri, *args, **kwargs)
        if not uri.endswith("j-breaks.ndjson"):
            yield from chunks
            return
        yield next(chunks)
        yield next(chunks)
        raise UnparseableFile(uri, 15, "gzip: the compressed stream is truncated")

    monkeypatch.setattr(stage, "parse_file", breaking)
    uris.insert(2, write_file("j-breaks.ndjson", ndjson(_mixed(700))))
    alone_settings, together_settings = _settings(tmp_path, "alone"), _settings(tmp_path, "together")
    alone = [stage.stage_file(uri, alone_settings, KNOWN, chunk_rows=CHUNK, now=NOW) for uri in uris]
    calls_alone = len(gx_calls)
    gx_calls.clear()
    together = stage.stage_files_together(uris, together_settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    assert len(gx_calls) < calls_alone
    assert sorted(name for name, _ in gx_calls) == ["access", "collection", "deletion"]  # one call per table

    assert all(isinstance(r, stage.StageResult) for r in together)
    for uri, one, many in zip(uris, alone, together, strict=True):
        assert isinstance(many, stage.StageResult)
        mine, theirs = _folder(together_settings, many), _folder(alone_settings, one)
        # The records hold the SHA-256 of every staged file: the same bytes, not only the same rows.
        assert mine["record"] == theirs["record"], uri
        assert mine["tables"].keys() == theirs["tables"].keys(), uri
        for name, table in mine["tables"].items():
            assert table.equals(theirs["tables"][name]), (uri, name)

    by_name = {Path(u).name: r for u, r in zip(uris, together, strict=True)}
    assert by_name["d-broken.ndjson.gz"].file_error and by_name["e-empty.ndjson"].file_error
    assert by_name["h-not-an-array.json"].file_error and by_name["j-breaks.ndjson"].file_error
    assert by_name["f-copy.ndjson"].batch_id == by_name["a-mixed.ndjson"].batch_id
    assert by_name["c-unknown.ndjson"].rejected_at_validation == 5
    summary = by_name["b-mixed.ndjson"].validation
    assert {"collection", "deletion", "access"} <= set(summary)
    assert all(entry["failed"] for entry in summary.values())  # GX rejected rows in every table


def test_a_result_over_several_batches_is_stored_once_and_named_by_each(write_file, tmp_path) -> None:
    uris = _landing(write_file)[:3]
    settings = _settings(tmp_path, "home")
    results = stage.stage_files_together(uris, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    ids = [r.batch_id for r in results if isinstance(r, stage.StageResult)]
    keys = {tuple(ref["key"]) for r in results if isinstance(r, stage.StageResult) for ref in r.validation_results}
    shared = [k for k in keys if k[-3] == stage.group_run_name(ids)]
    assert shared  # each table's one call over the three files' rows
    # The run name is a folder of the published quality pages: nothing in it needs escaping in a URL path.
    assert quote(stage.group_run_name(ids)) == stage.group_run_name(ids)
    for r in results:
        assert isinstance(r, stage.StageResult)
        assert set(shared) <= {tuple(ref["key"]) for ref in r.validation_results}
    quality = Path(layout.quality_dir(settings))
    for key in shared:
        stored = json.loads((quality / result_path(key)).read_text())
        assert [b["batch_id"] for b in stored["meta"]["sensorlog_batches"]] == ids
        assert (quality / "public" / result_path(key)).is_file()
    built = quality_docs.build(settings, sorted(keys))
    assert Path(built.index).is_file() and Path(built.public_index).is_file()


def test_a_file_that_fails_leaves_the_others_of_its_group_staged(write_file, tmp_path, monkeypatch) -> None:
    uris = _landing(write_file)[:3]
    real = stage.parse_file

    def flaky(uri, *args, **kwargs):
        if uri.endswith("b-mixed.ndjson"):
            raise MemoryError("simulated fault")
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(stage, "parse_file", flaky)
    settings = _settings(tmp_path, "home")
    first, failed, last = stage.stage_files_together(uris, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    assert isinstance(failed, MemoryError)
    assert isinstance(first, stage.StageResult) and isinstance(last, stage.StageResult)
    alone = _settings(tmp_path, "alone")
    for uri, got in ((uris[0], first), (uris[2], last)):
        assert _folder(settings, got) == _folder(alone, stage.stage_file(uri, alone, KNOWN, chunk_rows=CHUNK, now=NOW))
    staging = Path(settings.home) / "staging"
    assert not [p for p in staging.iterdir() if p.name.startswith(".tmp-")]  # nothing half-staged is left


def test_staged_and_published_files_are_skipped(write_file, tmp_path, gx_calls) -> None:
    uris = _landing(write_file)[:2]
    settings = _settings(tmp_path, "home")
    before = stage.stage_files_together(uris, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    gx_calls.clear()
    again = stage.stage_files_together(uris, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    assert gx_calls == [] and again == before


def test_the_bytes_held_bound_applies_across_files(write_file, tmp_path, monkeypatch, gx_calls) -> None:
    monkeypatch.setattr(stage, "GX_BATCH_BYTES", 1)  # nothing may wait: every chunk's tables at once
    uris = [write_file(f"f{i}.ndjson", ndjson([make_event(n=10 * i + k) for k in range(3)])) for i in range(3)]
    stage.stage_files_together(uris, _settings(tmp_path, "home"), KNOWN, chunk_rows=CHUNK, now=NOW)
    assert gx_calls == [("collection", 3)] * 3
