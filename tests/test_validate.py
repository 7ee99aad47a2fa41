"""Validation: the GX suites in expectations/ decide row-level rules; registry and clock are outside."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines.ingest import validate
from pipelines.ingest.feeds import parse_file
from pipelines.quality import project as quality_project
from pipelines.schemas import event_table

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def parsed(write_file, events, name="v.ndjson") -> dict[str, pa.Table]:
    (chunk,) = list(parse_file(write_file(name, ndjson(events))))
    return chunk.tables


def reasons_by_id(kind: str, table: pa.Table, known=(DEPLOYMENT,)) -> dict[str, list[str]]:
    outcome = validate.validate_chunk(event_table(kind), table, known, NOW)
    return {r["event_id"]: r["reasons"] for r in outcome.rejected}


def test_valid_rows_pass_and_each_rule_names_its_failure(write_file):
    events = [
        make_event(n=0),
        make_event(n=1, records=-1),
        make_event(n=2, window_end="2026-07-01T00:00:00Z"),
        make_event(n=3, deployment_id="not-registered"),
        make_event(n=4, window_start="2099-01-01T00:00:00Z", window_end="2099-01-01T01:00:00Z"),
        make_event(n=5, data_class=""),
    ]
    table = parsed(write_file, events)["collection"]
    outcome = validate.validate_chunk(event_table("collection"), table, [DEPLOYMENT], NOW)
    assert outcome.valid_ords.to_pylist() == [1]
    got = {r["event_id"]: r["reasons"] for r in outcome.rejected}
    assert got["collection-1"] == ["gx:expect_column_values_to_be_between[records]"]
    assert got["collection-2"] == ["gx:expect_column_pair_values_a_to_be_greater_than_b[window_end,window_start]"]
    assert got["collection-3"] == ["registry:deployment_id not in the deployment registry"]
    assert sorted(got["collection-4"]) == ["clock:window_end is in the future", "clock:window_start is in the future"]
    assert any(r.startswith("gx:expect_column_value_lengths_to_be_between[data_class]") for r in got["collection-5"])
    assert outcome.gx_success is False
    assert {r["line"] for r in outcome.rejected} == {2, 3, 4, 5, 6}


def test_deletion_before_its_window_starts_is_rejected(write_file):
    table = parsed(write_file, [make_event("deletion", deleted_at="2026-06-30T00:00:00Z")])["deletion"]
    assert reasons_by_id("deletion", table)["deletion-0"] == [
        "gx:expect_column_pair_values_a_to_be_greater_than_b[deleted_at,window_start]"
    ]


def test_undeclared_behaviour_is_valid_data_not_quarantine(write_file):
    """Access by an undeclared party is exactly what the log must show, so it passes validation."""
    table = parsed(write_file, [make_event("access", organisation="Unknown Agency", role="analyst")])["access"]
    assert reasons_by_id("access", table) == {}


def test_the_suite_file_is_what_runs(write_file, tmp_path, monkeypatch):
    """Tightening the JSON suite on disk changes the verdict: no rule is hard-coded in Python."""
    suites = tmp_path / "expectations"
    shutil.copytree(validate.EXPECTATIONS_DIR, suites)
    spec = json.loads((suites / "collection.json").read_text())
    spec["expectations"].append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": "records", "max_value": 10}})
    (suites / "collection.json").write_text(json.dumps(spec))
    monkeypatch.setattr(quality_project, "EXPECTATIONS_DIR", suites)  # the one place suites are read from
    validate._gx.cache_clear()
    try:
        table = parsed(write_file, [make_event(n=0), make_event(n=5)])["collection"]
        got = reasons_by_id("collection", table)
    finally:
        validate._gx.cache_clear()
    assert got == {"collection-5": ["gx:expect_column_values_to_be_between[records]"]}


@pytest.mark.parametrize("kind", ["collection", "deletion", "access", "lifecycle"])
def test_every_table_has_a_suite_that_passes_a_valid_event(write_file, kind):
    table = parsed(write_file, [make_event(kind)], f"{kind}.ndjson")[kind]
    outcome = validate.validate_chunk(event_table(kind), table, [DEPLOYMENT], NOW)
    assert outcome.rejected == [] and outcome.gx_success
    assert outcome.gx_statistics["evaluated_expectations"] >= 5
