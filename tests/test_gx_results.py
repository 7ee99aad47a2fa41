"""Great Expectations as GX users run it: a file-backed project per home, a Checkpoint per table,
Validation Results stored per batch, Data Docs, the validation summary in the log line and the manifest,
and no row values of text columns in anything public."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import make_event, ndjson

from pipelines import flow, layout, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest.stage import stage_file
from pipelines.quality import project as quality_project
from pipelines.records import Manifest

pytestmark = pytest.mark.integration

SAMPLE_DEPLOYMENT = "cctv-city-hall-plaza"  # in the sample registry, commissioned before July 2026
# Values of text columns that fail an expectation: the operator's copy keeps them, nothing public may.
ROLE_VALUE = "ROLEVALUE" + "r" * 90  # role: a label, at most 80 characters
PURPOSE_VALUE = "PURPOSEVALUE" + "p" * 200  # purpose: free text, at most 200 characters
BAD = {
    "gx:expect_column_values_to_not_be_null[organisation]": 1,
    "gx:expect_column_value_lengths_to_be_between[role]": 1,
    "gx:expect_column_value_lengths_to_be_between[purpose]": 1,
    "privacy:purpose:email": 1,
}


def _access_file() -> bytes:
    events = [make_event("access", n=i, deployment_id=SAMPLE_DEPLOYMENT) for i in range(10)]
    events[2]["data"]["organisation"] = None
    events[4]["data"]["role"] = ROLE_VALUE
    events[5]["data"]["purpose"] = PURPOSE_VALUE
    events[7]["data"]["purpose"] = "call alice@example.com"
    return ndjson(events) + b'{"broken\n'


def _clean_file() -> bytes:
    return ndjson([make_event("collection", n=i, deployment_id=SAMPLE_DEPLOYMENT) for i in range(3)])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("gx")
    settings = Settings.from_env({
        "SENSORLOG_HOME": str(root / "home"), "SENSORLOG_LANDING": str(root / "landing"),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
    })
    landing = root / "landing" / "vendor"
    landing.mkdir(parents=True)
    (landing / "bad.ndjson").write_bytes(_access_file())
    (landing / "clean.ndjson").write_bytes(_clean_file())
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("pipelines.quality")
    logger.addHandler(handler)
    try:
        # Stage the bad file twice first (as a stale stage would be): its batch still keeps one result.
        flow.stage_files(settings, flow.discover(settings))
        from pipelines.ingest.plausibility import commissioning_instants
        from pipelines.registry import home_registry

        stage_file(str(landing / "bad.ndjson"), settings, commissioning_instants(home_registry(settings)), force=True)
        totals = flow.run(settings)
    finally:
        logger.removeHandler(handler)
    manifests = {}
    for uri in storage.list_files(settings.manifests, (".json",)):
        m = Manifest.from_json(storage.read_bytes(uri), uri)
        if m.kind is None:
            manifests[m.source_file] = m
    return {"settings": settings, "totals": totals, "records": records, "manifests": manifests, "root": root}


def test_the_manifest_carries_the_validation_summary(home):
    bad, clean = home["manifests"]["vendor/bad.ndjson"], home["manifests"]["vendor/clean.ndjson"]
    assert bad.validation == {"access": {"rows": 10, "failed": BAD}}
    assert clean.validation == {"collection": {"rows": 3, "failed": {}}}
    assert bad.quarantined == 5 and bad.published == 6  # four rows and the broken line
    # What the log holds is what was read back: the members survive the manifest's JSON round trip.
    again = Manifest.from_json(bad.to_json())
    assert again == bad and json.loads(bad.to_json())["validation"]["access"]["failed"] == BAD


def test_a_stored_validation_result_per_batch_with_the_failure_counts(home):
    settings = home["settings"]
    quality = Path(layout.quality_dir(settings))
    for name, manifest in home["manifests"].items():
        refs = manifest.validation_results
        assert refs and len(refs) == 1, name  # one table, one validation call, one result (not two stagings')
        stored = json.loads((quality / refs[0]["result"]).read_text())
        assert stored["meta"]["run_id"]["run_name"] == manifest.batch_id
        assert stored["suite_name"] == f"sensorlog.{refs[0]['table']}"
        runs = list((quality / "validations" / "sensorlog" / refs[0]["table"] / manifest.batch_id).iterdir())
        assert len(runs) == 1, runs
        gx_counts = {
            f"gx:{r['expectation_config']['type']}[{r['expectation_config']['kwargs']['column']}]":
                r["result"]["unexpected_count"]
            for r in stored["results"] if r["result"].get("unexpected_count")
        }
        failed = (manifest.validation or {})[refs[0]["table"]]["failed"]
        expected = {k: v for k, v in failed.items() if k.startswith("gx:")}
        assert gx_counts == expected
    # The Checkpoints and the project are GX's own, file-backed, in the home.
    context = quality_project.project(str(quality)).context
    assert sorted(c.name for c in context.checkpoints.all()) == sorted(
        f"sensorlog.{t}" for t in ("access", "collection", "deletion", "lifecycle", "vendor_snapshot")
    )
    assert (quality / "gx" / "great_expectations.yml").is_file()


def test_one_warning_line_names_the_file_its_lines_and_the_failing_expectations(home):
    lines = [r.getMessage() for r in home["records"] if r.levelno == logging.WARNING]
    about_bad = [line for line in lines if "vendor/bad.ndjson" in line]
    assert about_bad and all("11 lines" in line and "1 lines not parsed" in line for line in about_bad)
    for reason in BAD:
        assert reason in about_bad[-1]
    assert not [line for line in lines if "clean.ndjson" in line]  # nothing failed there: no line


def test_data_docs_list_every_batch_and_link_from_the_manifest(home):
    settings = home["settings"]
    quality = Path(layout.quality_dir(settings))
    for index in (quality / "data_docs" / "index.html", quality / "public" / "data_docs" / "index.html"):
        text = index.read_text()
        for manifest in home["manifests"].values():
            assert manifest.batch_id in text, index
    for manifest in home["manifests"].values():
        for ref in manifest.validation_results or ():
            assert (quality / ref["docs"]).is_file()
            assert (quality / "public" / ref["docs"]).is_file()


def test_nothing_public_holds_row_values_of_text_columns(home, tmp_path):
    from pipelines.portal import build_portal

    settings = home["settings"]
    quality = Path(layout.quality_dir(settings))
    operator = "".join(p.read_text() for p in (quality / "validations").rglob("*.json"))
    assert ROLE_VALUE in operator and PURPOSE_VALUE in operator  # the operator's copy keeps them
    site = tmp_path / "site"
    build_portal(settings, str(site))
    page = re.sub(r"<[^>]+>", "", (site / "quality" / "index.html").read_text())  # its text, not its tags
    assert "vendor/bad.ndjson" in page and "gx:expect_column_value_lengths_to_be_between[role] (1)" in page
    listing = json.loads((site / "quality" / "validation.json").read_text())
    assert {b["source_file"] for b in listing["batches"]} == set(home["manifests"])
    public = [*(quality / "public").rglob("*"), *site.rglob("*"), *Path(settings.manifests).rglob("*")]
    for path in public:
        if path.is_file():
            data = path.read_bytes()
            assert b"ROLEVALUE" not in data and b"PURPOSEVALUE" not in data, path
    for ref in home["manifests"]["vendor/bad.ndjson"].validation_results or ():
        published = json.loads((site / "quality" / ref["result"]).read_text())
        by_column = {r["expectation_config"]["kwargs"]["column"]: r["result"] for r in published["results"]}
        assert by_column["role"]["unexpected_count"] == 1 and by_column["role"]["partial_unexpected_list"] == []


def test_the_data_docs_command_rebuilds_both_sites(home, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    settings = home["settings"]
    docs = Path(layout.data_docs_dir(settings))
    (docs / "index.html").unlink()
    monkeypatch.setenv("SENSORLOG_HOME", settings.home)
    monkeypatch.setenv("SENSORLOG_LANDING", settings.landing)
    monkeypatch.setenv("SENSORLOG_REGISTRY", settings.registry)
    result = CliRunner().invoke(app, ["data-docs"])
    assert result.exit_code == 0, result.output
    assert "2 stored validation result(s)" in result.output
    assert (docs / "index.html").is_file()


def test_a_changed_suite_regenerates_the_project(tmp_path, monkeypatch):
    import shutil

    suites = tmp_path / "expectations"
    shutil.copytree(quality_project.EXPECTATIONS_DIR, suites)
    root = quality_project.ensure_project(tmp_path / "quality")
    before = (root / "gx" / quality_project.STAMP).read_text()
    spec = json.loads((suites / "collection.json").read_text())
    spec["expectations"].append({"type": "expect_column_values_to_be_between",
                                 "kwargs": {"column": "records", "max_value": 10}})
    (suites / "collection.json").write_text(json.dumps(spec))
    monkeypatch.setattr(quality_project, "EXPECTATIONS_DIR", suites)
    quality_project.ensure_project(root)
    assert (root / "gx" / quality_project.STAMP).read_text() != before
    stored = json.loads((root / "gx" / "expectations" / "sensorlog" / "collection.json").read_text())
    assert len(stored["expectations"]) == len(spec["expectations"])
