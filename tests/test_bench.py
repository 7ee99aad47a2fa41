"""The benchmark (``make bench``) keeps working: a small run writes complete, sane results (no time assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR

pytestmark = pytest.mark.system

N = 20_000
HOMES = (20_000, 40_000)  # the home sizes of the batch-into-a-home measurement (issue 15), tiny
HOME_BATCH = 2_000
STEPS = {"dedupe", "index_open_commit", "parquet", "log_open", "log_append", "manifest", "move_into_place",
         "other", "total"}


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *args, "--out", str(tmp_path / "results"),
         "--work", str(tmp_path / "work"), "--home-cache", str(tmp_path / "cache")],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=1800,  # a ceiling for a hung run, not a speed requirement: a loaded machine is slow
    )


def test_benchmark_at_a_small_size_writes_complete_results(tmp_path: Path):
    out = tmp_path / "results"
    proc = _bench(
        tmp_path, "--sizes", str(N), "--home-sizes", ",".join(map(str, HOMES)), "--home-batch", str(HOME_BATCH),
        "--home-runs", "1", "--query-home", "none",  # (g) has its own test below
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {"date", "command", "machine", "versions", "sizes"} <= set(results)
    assert results["machine"]["cores"] >= 1
    r = results["sizes"][str(N)]
    assert r["events"] == N and r["files"] >= 1 and sum(r["by_kind"].values()) == N

    for part in ("baseline", "sensorlog", "verify_baseline", "ledger_append"):
        assert "error" not in r[part], (part, r[part])
        assert r[part]["seconds"] > 0 and r[part]["peak_rss_mb"] > 0, part
    assert r["baseline"]["rows"] == N
    assert r["baseline"]["events_per_s"] > 0 and r["sensorlog"]["events_per_s"] > 0
    assert 0 < r["throughput_ratio"]
    par = r["sensorlog_parallel"]
    assert "error" not in par, par
    assert par["totals"] == r["sensorlog"]["totals"]
    assert par["peak_rss_mb_worker"] > 0 or r["files"] == 1  # one file is staged in-process
    assert 0 < r["throughput_ratio_parallel"]

    totals = r["sensorlog"]["totals"]
    assert totals["rows_in"] == N
    assert totals["published"] + totals["quarantined"] + totals["duplicates"] == N
    assert totals["quarantined"] == r["anomalies"]["negative_records"] + r["anomalies"]["unregistered_deployment"]
    assert totals["duplicates"] == r["anomalies"]["duplicates"]
    stages = r["sensorlog"]["stages"]
    for key in ("ingest", "validate", "row_hashes", "stage", "dedupe", "parquet", "ledger_append", "publish"):
        assert stages[key] >= 0, key
    assert stages["stage"] + stages["publish"] <= r["sensorlog"]["seconds"] + 1e-6

    # The fresh home's first run logs the registry first: one declaration batch before the events.
    logged_rows = totals["published"] + totals["declarations"]
    assert totals["declarations"] > 0
    assert r["verify_baseline"]["rows"] == logged_rows and r["verify_baseline"]["mismatches"] == 0
    assert r["ledger_append"]["log_size"] == logged_rows + totals["batches"] + 1
    assert len(r["ledger_append"]["append_seconds"]) == r["ledger_append"].get("repeat", 3)
    for cli in ("verify", "audit"):
        if r[cli]["available"]:
            assert r[cli]["returncode"] == 0, r[cli]
            assert r[cli]["seconds"] > 0

    md = (out / "results.md").read_text()
    assert f"| {N:,} |" in md and "## Targets" in md and results["command"] in md

    _check_home_batch(results, md, reused=False)

    # The homes are kept in the cache, keyed by the bytes of the code that writes them: found again.
    from bench.run import build_home, home_key

    again = build_home(HOMES[0], tmp_path / "cache", home_key())
    assert again["reused"] is True and again["key"] == results["home_batch"]["key"]


def _check_home_batch(results: dict, md: str, reused: bool) -> None:
    hb = results["home_batch"]
    assert hb["batch"] == HOME_BATCH and hb["runs"] == 1
    assert set(hb["homes"]) == {str(n) for n in HOMES}
    for n, home in hb["homes"].items():
        assert home["reused"] is reused
        assert home["published"] + home["declarations"] >= 0.99 * int(n)
    assert set(hb["variants"]) == {"fresh", "dupes"}
    for variant, v in hb["variants"].items():
        assert set(v["ratio"]) == STEPS
        for n in HOMES:
            part = v["sizes"][str(n)]
            assert not part["errors"], part["errors"]
            assert set(part["median"]) == STEPS
            run = part["runs"][0]
            assert run["rows_in"] == HOME_BATCH
            assert run["log_size_before"] == hb["homes"][str(n)]["published"] + hb["homes"][str(n)]["declarations"] \
                + hb["homes"][str(n)]["batches"] + 1  # + one manifest leaf per batch, the declarations' too
            assert run["log_size_after"] == run["log_size_before"] + run["published"] + 1
            dupes = round(HOME_BATCH * hb["dupe_rate"]) if variant == "dupes" else 0
            assert run["duplicates"] == dupes and run["published"] == HOME_BATCH - dupes, run
    assert "2k-event batch into a home of N rows" in md and "| **publish_batch total** |" in md
    assert "40k / 20k" in md and "Target (issue 15" in md


def test_query_section_compares_each_published_table_with_one_file(tmp_path: Path):
    """(g): every published event table of a home, timed and sized against one file of the same rows;
    ``--query-home none`` keeps the section measured before."""
    from bench.generate import write_events
    from bench.measure import settings_for
    from pipelines import flow
    from pipelines.publish import compact

    landing, home = tmp_path / "landing", tmp_path / "home"
    write_events(landing, N, PROJECT_DIR / "registry", per_file=N // 4)  # several batches a partition
    settings = settings_for(str(home), str(landing))
    totals = flow.run(settings)
    done = compact.compact(settings)  # as the ingest DAG does after publishing
    assert done.files_after < done.files_before  # several batches wrote into the same daily partitions
    proc = _bench(tmp_path, "--sizes", "none", "--home-sizes", "none", "--query-home", str(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results"
    results = json.loads((out / "results.json").read_text())
    tables = {t["table"]: t for t in results["query"]["tables"]}
    # Exactly the tables the run published, each with every row it published (the yardstick's query
    # must give the published files' answer, or bench.query fails).
    assert set(tables) == {name for name, rows in totals["published_by_table"].items() if rows}
    for name, t in tables.items():
        assert t["rows"] == totals["published_by_table"][name] == t["result"][0], name
        assert t["files"] >= t["partitions"] >= 1
        assert t["published_seconds"] > 0 and t["one_file_seconds"] > 0
        assert t["time_ratio"] > 0 and t["bytes_ratio"] > 0
    md = (out / "results.md").read_text()
    assert "## Reading the published tables (issue 15)" in md
    for name in tables:
        assert f"| {name} | {tables[name]['rows']:,} |" in md

    again = _bench(tmp_path, "--sizes", "none", "--home-sizes", "none", "--query-home", "none")
    assert again.returncode == 0, again.stderr[-3000:]
    kept = json.loads((out / "results.json").read_text())
    assert kept["query"]["tables"] == results["query"]["tables"]
    assert "## Reading the published tables (issue 15)" in (out / "results.md").read_text()
