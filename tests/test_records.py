"""The typed records (``pipelines.records``): a manifest survives a round trip through its JSON unchanged,
a manifest file the publisher wrote parses and re-serialises to the same bytes (and the same leaf hash),
and a malformed manifest is refused with an error that names the file and the member."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_event, ndjson
from hypothesis import given
from hypothesis import strategies as st

from pipelines import flow, storage, summary
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.log import writer
from pipelines.records import (
    BatchTotals,
    Leaves,
    Manifest,
    ManifestError,
    Output,
    QuarantineFile,
    QuarantineRow,
    RecordError,
)
from pipelines.tlog import leaf

text = st.text(max_size=12)
count = st.integers(min_value=0, max_value=2**53 - 1)  # RFC 8785 (the leaf) encodes integers up to 2^53 - 1

outputs = st.builds(Output, table=text, event_date=text, path=text, rows=count, sha256=text, first_leaf=count)
manifests = st.builds(
    Manifest,
    batch_id=text,
    kind=st.none() | text,
    source_file=text,
    source_sha256=text,
    source_bytes=count,
    validated_at=text,
    rows_in=count,
    published=count,
    quarantined=count,
    duplicates=count,
    file_error=st.none() | text,
    quarantine=st.none() | st.builds(QuarantineFile, rows=count, path=text, sha256=text),
    outputs=st.lists(outputs, max_size=4).map(tuple),
    leaves=st.builds(Leaves, first=count, rows_end=count, manifest_leaf=count),
    leaf_format=st.none() | st.just(2),
)
optional_text = st.none() | text
quarantine_rows = st.builds(
    QuarantineRow, batch_id=text, source_file=text, line=st.none() | count, event_type=optional_text,
    source=optional_text, event_id=optional_text, deployment_id=optional_text,
    reasons=st.lists(text, max_size=3).map(tuple), raw=optional_text,
)
totals = st.builds(BatchTotals, count, count, count, count, count, count)


@pytest.mark.unit
@given(manifests)
def test_a_manifest_survives_its_json(m: Manifest) -> None:
    assert Manifest.from_json(m.to_json()) == m
    assert Manifest.from_dict(m.to_dict()) == m
    # What the log hashes is the JSON-shaped value, so the typed manifest hashes as its file does.
    assert writer.manifest_leaf_hash(m) == leaf.manifest_leaf_hash(json.loads(m.to_json()))


@pytest.mark.unit
@given(quarantine_rows, totals)
def test_quarantine_rows_and_totals_survive_their_json(row: QuarantineRow, t: BatchTotals) -> None:
    assert QuarantineRow.from_json(row.to_json()) == row
    assert BatchTotals.from_json(t.to_json()) == t


@pytest.mark.unit
def test_the_optional_members_are_absent_unless_set() -> None:
    m = Manifest.from_dict(_manifest())
    assert "kind" not in m.to_dict() and "leaf_format" not in m.to_dict()
    assert list(m.to_dict()) == list(_manifest())  # the order the publisher always built them in
    declared = Manifest.from_dict({**_manifest(), "kind": "declarations", "leaf_format": 2})
    assert (declared.kind, declared.leaf_format) == ("declarations", 2)


@pytest.mark.unit
def test_totals_count_a_manifest() -> None:
    m = Manifest.from_dict({**_manifest(), "file_error": "bad"})
    t = BatchTotals().plus(m).plus(m)
    assert t == BatchTotals(batches=2, rows_in=6, published=4, quarantined=2, duplicates=0, file_errors=2)


@pytest.mark.integration
def test_manifests_the_publisher_wrote_reserialise_to_the_same_bytes(
    settings: Settings, device_registry: Path, write_file
) -> None:
    settings = Settings.from_env({"SENSORLOG_HOME": settings.home, "SENSORLOG_LANDING": settings.landing,
                                  "SENSORLOG_REGISTRY": str(device_registry)})
    # Every shape a batch can take: rows of each table, a duplicate, a conflict and a rejected row, a file
    # quarantined whole, and the registry's declaration batch.
    events = [make_event(k, i) for i, k in enumerate(("collection", "deletion", "access", "lifecycle"))]
    write_file("a.ndjson", ndjson(events))
    write_file("b.ndjson", ndjson([make_event(n=0), make_event(n=0, records=99), make_event(n=7),
                                   make_event(n=7), make_event(n=8, records=-1)]))
    write_file("c.ndjson", b"")  # an empty file is quarantined whole
    totals = flow.run(settings)
    assert totals["failed"] == [] and totals["file_errors"] == 1 and totals["duplicates"] >= 1
    uris = storage.list_files(settings.manifests, (".json",))
    kinds = set()
    for uri in uris:
        data = storage.read_bytes(uri)
        m = Manifest.from_json(data, uri)
        kinds.add((m.kind, m.quarantine is not None, m.file_error is not None))
        assert m.to_json().encode() == data
        assert writer.manifest_leaf_hash(m) == leaf.manifest_leaf_hash(json.loads(data))
    assert ("declarations", False, False) in kinds and (None, True, True) in kinds and (None, True, False) in kinds
    assert (None, False, False) in kinds


def _manifest() -> dict:
    return {
        "batch_id": "b1", "source_file": "a.ndjson", "source_sha256": "b1", "source_bytes": 10,
        "validated_at": "2026-07-01T00:00:00+00:00", "rows_in": 3, "published": 2, "quarantined": 1,
        "duplicates": 0, "file_error": None,
        "quarantine": {"rows": 1, "path": "b1.parquet", "sha256": "q"},
        "outputs": [{"table": "collection", "event_date": "2026-07-01", "path": "p", "rows": 2, "sha256": "s",
                     "first_leaf": 0}],
        "leaves": {"first": 0, "rows_end": 2, "manifest_leaf": 2},
    }


def _without(key: str) -> dict:
    return {k: v for k, v in _manifest().items() if k != key}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (json.dumps(_without("leaves")), "missing member(s) leaves"),
        (json.dumps({**_manifest(), "extra": 1}), "unknown member(s) extra"),
        (json.dumps({**_manifest(), "published": "2"}), "member 'published' must be an integer, got '2'"),
        (json.dumps({**_manifest(), "published": True}), "member 'published' must be an integer, got True"),
        (json.dumps({**_manifest(), "rows_in": 3.0}), "member 'rows_in' must be an integer, got 3.0"),
        (json.dumps({**_manifest(), "kind": None}), "member 'kind' must be a string, got None"),
        (json.dumps({**_manifest(), "outputs": {}}), "member 'outputs' must be a list"),
        (json.dumps({**_manifest(), "outputs": [{"table": "collection"}]}), "outputs[0]: missing member(s) event_date"),
        (json.dumps({**_manifest(), "leaves": {"first": 0, "rows_end": 2, "manifest_leaf": "2"}}),
         "leaves: member 'manifest_leaf' must be an integer"),
        (json.dumps({**_manifest(), "quarantine": {"rows": 1, "path": None, "sha256": "q"}}),
         "quarantine: member 'path' must be a string, got None"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_file_and_member(text: str | bytes, says: str) -> None:
    with pytest.raises(ManifestError) as caught:
        Manifest.from_json(text, "manifests/b1.json")
    assert str(caught.value).startswith("manifests/b1.json")
    assert says in str(caught.value)
    assert isinstance(caught.value, SensorlogError) and isinstance(caught.value, ValueError)


@pytest.mark.unit
def test_a_malformed_quarantine_row_or_totals_is_a_record_error() -> None:
    row = QuarantineRow("b", "f", None, None, None, None, None, ("file: empty",), None).to_dict()
    with pytest.raises(RecordError, match="'reasons' must be a list of strings"):
        QuarantineRow.from_dict({**row, "reasons": [1]})
    with pytest.raises(RecordError, match="missing member"):
        BatchTotals.from_dict({"batches": 1})


@pytest.mark.integration
def test_summary_names_a_malformed_manifest(settings: Settings, write_file) -> None:
    write_file("a.ndjson", ndjson([make_event()]))
    flow.run(settings)
    broken = Path(settings.manifests) / "broken.json"
    broken.write_text(json.dumps(_without("outputs")))
    with pytest.raises(ManifestError, match="broken.json: missing member"):
        summary.manifest_totals(settings)
