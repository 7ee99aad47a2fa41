"""A home copied, moved or mounted elsewhere re-processes nothing: the processed-file record is keyed
relative to the landing root, an old record keyed by absolute paths is migrated, and a run's totals
count only what it added. And the selection of what to ingest (``files``, ``prefix``, ``reprocess``:
the ingest DAG's params, ``sensorlog discover/run --file/--prefix/--reprocess``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import flow, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.flow import SelectionError

pytestmark = pytest.mark.integration

SENSORLOG = Path(sys.executable).parent / "sensorlog"


def _home(root: Path, registry: Path) -> dict[str, str]:
    # Everything under one folder (state too), as a home is copied: SENSORLOG_HOME names all of it.
    return {"SENSORLOG_HOME": str(root), "SENSORLOG_STATE_HOME": str(root), "SENSORLOG_REGISTRY": str(registry)}


def _land(home: Path) -> None:
    landing = home / "landing"
    (landing / "vendor-a").mkdir(parents=True)
    (landing / "vendor-b").mkdir(parents=True)
    (landing / "vendor-a" / "one.ndjson").write_bytes(ndjson([make_event(n=i) for i in range(3)]))
    (landing / "vendor-a" / "two.ndjson").write_bytes(ndjson([make_event("access", n=i) for i in range(2)]))
    (landing / "vendor-b" / "three.ndjson").write_bytes(ndjson([make_event("lifecycle")]))


def _sensorlog(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SENSORLOG), *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env, "COLUMNS": "200"}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def _published_once(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("relocatable")
    registry = root / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    home = root / "first"
    _land(home)
    totals = flow.run(Settings.from_env(_home(home, registry)))
    assert totals["batches"] == 3 and totals["published"] == 6 and totals["already_published"] == 0
    assert len(totals["batch_ids"]) == 3
    return home, registry


@pytest.fixture
def published_home(_published_once, tmp_path) -> tuple[Path, Path]:
    """A copy of the published home for one test (mtimes kept, as ``cp -a`` keeps them)."""
    original, registry = _published_once
    home = tmp_path / "first"
    shutil.copytree(original, home, symlinks=True)
    return home, registry


def test_the_record_is_relative_to_the_landing_root(published_home):
    home, _ = published_home
    record = json.loads((home / "state" / "processed.json").read_text())
    assert sorted(record) == ["vendor-a/one.ndjson", "vendor-a/two.ndjson", "vendor-b/three.ndjson"]


def test_a_copied_home_discovers_nothing_and_publishes_nothing(published_home, tmp_path):
    home, registry = published_home
    copy = tmp_path / "elsewhere" / "copy"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(home), str(copy)], check=True)
    env = _home(copy, registry)
    listed = _sensorlog(env, "discover")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == ""
    before = summary.manifest_totals(Settings.from_env(env))
    ran = _sensorlog(env, "run", "--workers", "1")
    assert ran.returncode == 0, ran.stderr
    assert "this run: 0 batches" in ran.stdout and "0 published" in ran.stdout
    assert summary.manifest_totals(Settings.from_env(env)) == before


def test_an_old_absolute_record_is_migrated_in_a_moved_home(published_home, tmp_path):
    """A record written before keys were relative, of a home since moved: each key is an absolute path
    under the old landing root; its batch's manifest names the file, so it is kept under that name."""
    home, registry = published_home
    record_file = home / "state" / "processed.json"
    record = json.loads(record_file.read_text())
    old_root = str(home / "landing")
    record_file.write_text(json.dumps({f"{old_root}/{k}": v for k, v in record.items()}))
    moved = tmp_path / "moved"
    shutil.move(str(home), str(moved))
    settings = Settings.from_env(_home(moved, registry))
    assert flow.discover(settings) == []
    assert json.loads((moved / "state" / "processed.json").read_text()) == record  # rewritten, relative

    # A key under the current landing root (the home never moved) is cut to its relative path.
    (moved / "state" / "processed.json").write_text(
        json.dumps({f"{settings.landing}/{k}": v for k, v in record.items()}))
    assert flow.discover(settings) == []
    assert json.loads((moved / "state" / "processed.json").read_text()) == record


def test_a_rerun_counts_only_what_it_added(published_home):
    home, registry = published_home
    settings = Settings.from_env(_home(home, registry))
    (home / "state" / "processed.json").unlink()  # the cache lost: every file is hashed again
    assert len(flow.discover(settings)) == 3
    again = flow.run(settings)
    assert (again["batches"], again["rows_in"], again["published"], again["already_published"]) == (0, 0, 0, 3)
    assert again["batch_ids"] == []


def test_files_prefix_and_reprocess_select_what_is_ingested(published_home):
    home, registry = published_home
    settings = Settings.from_env(_home(home, registry))
    assert flow.discover(settings, files=["vendor-a/one.ndjson"]) == []  # already processed
    one = str(home / "landing" / "vendor-a" / "one.ndjson")
    assert flow.discover(settings, files=["vendor-a/one.ndjson"], reprocess=True) == [one]
    assert flow.discover(settings, files=[one], reprocess=True) == [one]  # a path under the root
    assert flow.discover(settings, files=[f"file://{one}"], reprocess=True) == [one]
    assert [Path(u).name for u in flow.discover(settings, prefix="vendor-a", reprocess=True)] == [
        "one.ndjson", "two.ndjson"]
    assert [Path(u).name for u in flow.discover(settings, prefix="vendor-a/", files=["vendor-b/three.ndjson"],
                                                reprocess=True)] == ["one.ndjson", "two.ndjson", "three.ndjson"]
    # Reprocessing re-stages and publishes nothing twice: the bytes are one batch, already published.
    again = flow.run(settings, files=["vendor-a/one.ndjson"], reprocess=True)
    assert (again["published"], again["already_published"]) == (0, 1)
    # A new file under the prefix is what a prefix run publishes.
    (home / "landing" / "vendor-b" / "four.ndjson").write_bytes(ndjson([make_event(n=9)]))
    assert [Path(u).name for u in flow.discover(settings, prefix="vendor-b")] == ["four.ndjson"]
    fresh = flow.run(settings, prefix="vendor-b")
    assert (fresh["batches"], fresh["published"], fresh["already_published"]) == (1, 1, 0)


@pytest.mark.parametrize(("files", "prefix", "named", "why"), [
    (["vendor-a/nope.ndjson"], None, "vendor-a/nope.ndjson", "no such landed file"),
    (["../first/landing/vendor-a/one.ndjson"], None, "../first", "'..' segment"),
    (["vendor-a/../vendor-a/one.ndjson"], None, "vendor-a/../", "'..' segment"),
    (["/etc/passwd"], None, "/etc/passwd", "outside the landing root"),
    (["s3://bucket/landing/x.ndjson"], None, "s3://bucket", "outside the landing root"),
    ([""], None, "''", "empty"),
    (None, "vendor-z", "vendor-z", "no landed file under"),
    (None, "..", "'..'", "'..' segment"),
])
def test_a_bad_selection_is_an_error_naming_it(published_home, files, prefix, named, why):
    home, registry = published_home
    settings = Settings.from_env(_home(home, registry))
    with pytest.raises(SelectionError) as err:
        flow.discover(settings, files=files, prefix=prefix)
    assert named in str(err.value) and why in str(err.value)


def test_the_cli_takes_the_same_selection(published_home):
    home, registry = published_home
    env = _home(home, registry)
    listed = _sensorlog(env, "discover", "--file", "vendor-a/one.ndjson", "--reprocess")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [str(home / "landing" / "vendor-a" / "one.ndjson")]
    bad = _sensorlog(env, "run", "--file", "../outside.ndjson")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "../outside.ndjson" in bad.stderr and "'..'" in bad.stderr
