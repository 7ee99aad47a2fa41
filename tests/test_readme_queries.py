"""The README's query examples run as written: every fenced block after ``<!-- query: NAME -->`` in its
"Reading the published tables" section, from the folder holding the home ``.sensorlog`` (where the
examples say to run them), against a small city the pipeline published and audited. What they count
must be what the manifests say was published, table by table, and the findings the audit wrote; a
snippet that no longer runs, or that meets a derived table inside the event tables' glob, fails here."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import flow, storage
from pipelines.audit import AuditOptions, parse_as_of
from pipelines.audit.run import run_audit, write_outputs
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.registry import load_registry

pytestmark = pytest.mark.integration

SECTION = "Reading the published tables"
# Four deployments of the sample city for two days: every kind of logged table but deletion (nothing falls
# due that soon) and one finding (an undeclared data class), in well under a minute.
DEPLOYMENTS = ("alpr-river-road-bridge", "cctv-city-hall-plaza", "ev-city-hall-garage", "kiosk-main-street")
START, END = date(2026, 7, 1), date(2026, 7, 3)
_QUERY = re.compile(r"<!-- query: ([a-z]+) -->\n```([a-z]+)\n(.*?)```", re.S)


def readme_queries() -> dict[str, tuple[str, str]]:
    """``{name: (language, code)}`` of the marked blocks in the README's section on reading the tables."""
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(SECTION)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"the README has no '## {SECTION}' section"
    return {name: (language, code) for name, language, code in _QUERY.findall(match.group(1))}


@dataclass(frozen=True)
class City:
    cwd: Path  # the folder holding the home, .sensorlog
    rows: dict[str, int]  # logged rows by table, from the manifests
    published: int  # the manifests' "published", summed
    findings: int  # rows of the findings table the audit wrote


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    cwd = tmp_path_factory.mktemp("reader")
    registry = cwd / "registry"
    registry.mkdir()
    for dep in DEPLOYMENTS:
        shutil.copy(PROJECT_DIR / "registry" / f"{dep}.yaml", registry)
    settings = Settings.from_env({"SENSORLOG_HOME": str(cwd / ".sensorlog"), "SENSORLOG_REGISTRY": str(registry)})
    synthetic.write_city(load_registry(settings.registry), settings.landing,
                         synthetic.options_for(start=START, end=END))
    flow.run(settings)
    # As of the city's last day: the audit's default (today) would judge every feed silent.
    result = run_audit(settings, AuditOptions(as_of=parse_as_of(END, settings.timezone)))
    write_outputs(settings, result)

    rows: Counter[str] = Counter()
    published = 0
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = json.loads(storage.read_bytes(uri))
        published += manifest["published"]
        for output in manifest["outputs"]:
            rows[output["table"]] += output["rows"]
    assert sum(rows.values()) == published > 0
    assert result.findings.num_rows > 0  # a findings query that found nothing would prove little
    return City(cwd, dict(rows), published, result.findings.num_rows)


@pytest.fixture
def reader(city: City, monkeypatch: pytest.MonkeyPatch) -> City:
    """In the city's folder, as the README's examples are run."""
    monkeypatch.chdir(city.cwd)
    return city


def run_python(code: str) -> dict[str, Any]:
    """Run a README block as a script would, returning its variables."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_the_readme_marks_a_block_per_library():
    assert {name: language for name, (language, _) in readme_queries().items()} == {
        "duckdb": "sql", "pandas": "python", "pyarrow": "python",
    }


def test_duckdb_queries_run_as_written(reader: City):
    con = duckdb.connect()
    statements = con.extract_statements(readme_queries()["duckdb"][1])
    every, collection, findings = (con.execute(statement).fetchall() for statement in statements)
    assert dict(every) == reader.rows and sum(n for _, n in every) == reader.published
    assert sum(windows for _, windows, _ in collection) == reader.rows["collection"]
    assert sum(n for _, _, n in findings) == reader.findings


def test_pandas_example_runs_as_written(reader: City):
    found = run_python(readme_queries()["pandas"][1])
    events, collection, findings = found["events"], found["collection"], found["findings"]
    assert len(events) == reader.published
    assert events["event_type"].astype(str).value_counts().to_dict() == reader.rows
    assert len(collection) == reader.rows["collection"]
    assert len(findings) == reader.findings


def test_pyarrow_example_runs_as_written(reader: City):
    found = run_python(readme_queries()["pyarrow"][1])
    events, collection, findings = found["events"], found["collection"], found["findings"]
    assert events.num_rows == reader.published
    assert Counter(events.column("event_type").to_pylist()) == reader.rows
    assert collection.num_rows == reader.rows["collection"]
    assert findings.num_rows == reader.findings
