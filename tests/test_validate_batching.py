"""Staging validates the rows of several parse chunks with one GX call per table, and writes exactly what
validating chunk by chunk wrote: the same staged Parquet bytes, the same quarantine rows, in order."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import layout
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest import stage, validate
from pipelines.ingest.feeds import parse_file
from pipelines.schemas import event_table

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, tzinfo=UTC)
# A mapping, as flow.deployment_ids gives: rows dated before commissioning are rejected too.
KNOWN = {DEPLOYMENT: datetime(2026, 1, 1, tzinfo=UTC)}
CHUNK = 25  # events per parse chunk: every file below spans several chunks


def _mixed_events() -> list[object]:
    """Valid events of every table between rejects of each kind, and lines that do not parse."""
    rejects: list[object] = [
        make_event(n=1, records=-1),  # gx: between
        make_event(n=2, data_class=""),  # gx: length, regex
        make_event(n=3, deployment_id="not-registered"),  # registry
        make_event(n=4, window_start="2099-01-01T00:00:00Z", window_end="2099-01-01T01:00:00Z"),  # clock
        make_event(n=5, window_start="1999-01-01T00:00:00Z", window_end="1999-01-01T01:00:00Z"),  # range
        make_event(n=6, window_start="2025-06-01T00:00:00Z", window_end="2025-06-01T01:00:00Z"),  # commissioned
        make_event(n=7, records=2**60),  # encoding
        make_event("access", n=8, purpose="call jane.doe@example.org"),  # privacy
        make_event("deletion", n=9, deleted_at="2026-06-30T00:00:00Z"),  # gx: pair
        {**make_event(n=10), "type": "org.sensorlog.unknown"},  # parse: envelope
        {**make_event(n=11), "time": "2026-07-01T01:00:00"},  # parse: no offset
    ]
    events: list[object] = []
    for i in range(60):
        kind = ("collection", "collection", "deletion", "access", "lifecycle")[i % 5]
        events.append(make_event(kind, n=100 + i))
        if i % 5 == 0:
            events.append(rejects[(i // 5) % len(rejects)])
    return events


def _landed(write_file) -> list[str]:
    events = _mixed_events()
    lines = ndjson([e for e in events if isinstance(e, dict)]).split(b"\n")
    lines.insert(13, b'{"specversion": "1.0", "id": ')  # a broken line, mid-chunk
    array = json.dumps([e for e in events if isinstance(e, dict)], indent=None).replace("}, {", "},\n{")
    return [write_file("mixed.ndjson", b"\n".join(lines)), write_file("mixed.json", array.encode())]


def _settings(tmp_path: Path, home: str) -> Settings:
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / home), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
    })


def _staged(settings: Settings, uri: str) -> dict:
    """Everything staging wrote for ``uri``: its record, and the rows of each file it wrote."""
    result = stage.stage_file(uri, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    folder = Path(layout.staging_dir(settings, result.batch_id))
    tables = {path.name: pq.read_table(path) for path in sorted(folder.glob("*.parquet"))}
    return {"result": json.loads(result.to_json()), "tables": tables}


def _old_reference(uri: str) -> tuple[list[dict], dict[str, list[int]]]:
    """Rejects (in quarantine order) and valid ``_ord``s by table, validating each parse chunk alone
    as staging did before it batched: written out here, independent of ``stage``."""
    rejected, valid = [], {}
    for chunk in parse_file(uri, CHUNK):
        rejected.extend(chunk.rejected)
        for name, table in chunk.tables.items():
            outcome = validate.validate_chunk(event_table(name), table, KNOWN, NOW)
            rejected.extend(outcome.rejected)
            valid.setdefault(name, []).extend(outcome.valid_ords.to_pylist())
    return rejected, valid


def test_batched_staging_writes_what_chunk_by_chunk_staging_wrote(write_file, tmp_path, monkeypatch, gx_calls):
    kinds = set()
    for uri in _landed(write_file):
        with monkeypatch.context() as m:
            m.setattr(stage, "GX_BATCH_ROWS", 1)  # every chunk validated alone: the per-chunk staging
            per_chunk = _staged(_settings(tmp_path, f"per-chunk-{Path(uri).name}"), uri)
        calls_per_chunk = len(gx_calls)
        batched = _staged(_settings(tmp_path, f"batched-{Path(uri).name}"), uri)
        assert len(gx_calls) - calls_per_chunk == 4 < calls_per_chunk  # one call per table
        gx_calls.clear()

        # Same stage record: rows, rejects, partitions, the validation summary, and the SHA-256 of every
        # file staging wrote; only the stored GX results differ (one per validation call, each its own).
        assert len(batched["result"].pop("validation_results")) < len(per_chunk["result"].pop("validation_results"))
        assert batched["result"] == per_chunk["result"]
        assert batched["tables"].keys() == per_chunk["tables"].keys()
        for name, table in batched["tables"].items():
            assert table.equals(per_chunk["tables"][name]), name

        if not uri.endswith(".ndjson"):
            continue  # (the reference below costs as many GX calls again: one file is enough)
        # And what the per-chunk loop, written out independently, rejects and keeps.
        rejected, valid = _old_reference(uri)
        quarantine = batched["tables"]["quarantine.parquet"].to_pylist()
        got = [(q["line"], q["event_id"], list(q["reasons"]), q["raw"]) for q in quarantine]
        assert got == [(r["line"], r["event_id"], r["reasons"], r["raw"]) for r in rejected]
        staged_ords: dict[str, list[int]] = {}
        for name, table in batched["tables"].items():
            if "__" in name:
                staged_ords.setdefault(name.split("__")[0], []).extend(table.column("_ord").to_pylist())
        assert {k: sorted(v) for k, v in staged_ords.items()} == {k: sorted(v) for k, v in valid.items() if v}
        kinds |= {reason.split(":")[0] for r in rejected for reason in r["reasons"]}
    assert {"gx", "registry", "clock", "range", "encoding", "privacy", "envelope.type", "json"} <= kinds


def test_validating_a_whole_table_at_once_gives_each_chunks_verdict(write_file):
    """validate_chunk on the rows of many chunks at once rejects the same rows for the same reasons."""
    uri = _landed(write_file)[0]
    chunks = list(parse_file(uri, CHUNK))
    for name in ("collection", "access"):  # the tables with rejects of every kind
        parts = [c.tables[name] for c in chunks if name in c.tables]
        whole = validate.validate_chunk(event_table(name), pa.concat_tables(parts), KNOWN, NOW)
        alone = [validate.validate_chunk(event_table(name), t, KNOWN, NOW) for t in parts]
        assert whole.rejected == [r for o in alone for r in o.rejected]
        assert whole.rejected_ords == [i for o in alone for i in o.rejected_ords]
        assert whole.valid_ords.to_pylist() == [i for o in alone for i in o.valid_ords.to_pylist()]


def test_one_gx_call_per_table_per_file_below_the_bound(write_file, settings, gx_calls):
    events = [make_event(kind, n=i) for i in range(40) for kind in ("collection", "deletion", "access")]
    uri = write_file("small.ndjson", ndjson(events))
    result = stage.stage_file(uri, settings, KNOWN, chunk_rows=CHUNK, now=NOW)
    assert result.rows_in == 120 and result.rejected_at_validation == 0
    assert sorted(gx_calls) == [("access", 40), ("collection", 40), ("deletion", 40)]


@pytest.mark.parametrize("rows", [23, 30])
def test_above_the_bound_each_gx_call_takes_at_most_the_bound(write_file, settings, monkeypatch, gx_calls, rows):
    monkeypatch.setattr(stage, "GX_BATCH_ROWS", 10)
    uri = write_file(f"long-{rows}.ndjson", ndjson([make_event(n=i) for i in range(rows)]))
    result = stage.stage_file(uri, settings, KNOWN, chunk_rows=5, now=NOW)
    assert result.staged == {"collection/2026-07-01": rows}
    assert [n for _, n in gx_calls] == [10] * (rows // 10) + ([rows % 10] if rows % 10 else [])
    assert len(gx_calls) == math.ceil(rows / 10)


def test_the_bytes_held_bound_the_batch_too(write_file, settings, monkeypatch, gx_calls):
    monkeypatch.setattr(stage, "GX_BATCH_BYTES", 1)  # no two chunks fit: each is validated alone
    uri = write_file("bytes.ndjson", ndjson([make_event(n=i) for i in range(12)]))
    stage.stage_file(uri, settings, KNOWN, chunk_rows=5, now=NOW)
    assert [n for _, n in gx_calls] == [5, 5, 2]


def test_the_gx_context_is_built_once_per_process(write_file, settings, monkeypatch):
    built = []
    original = validate._GX.__init__

    def counted(self):
        built.append(1)
        original(self)

    monkeypatch.setattr(validate._GX, "__init__", counted)
    validate._gx.cache_clear()
    try:
        for i in range(3):
            uri = write_file(f"f{i}.ndjson", ndjson([make_event(kind, n=i) for kind in ("collection", "access")]))
            stage.stage_file(uri, settings, KNOWN, chunk_rows=1, now=NOW)
    finally:
        validate._gx.cache_clear()
    assert built == [1]
