"""``sensorlog verify`` against a small published city, untouched and tampered with.

The city (one week, every vendor) is built once per session in two steps, so that a genuine older
state exists for the rollback and ``--since`` tests: half the landed files are published first and
that home is kept as ``old``, then the rest. Each test tampers with its own copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines import flow
from pipelines.cli import app
from pipelines.config import Settings
from pipelines.dev import synthetic
from pipelines.log import verify as verify_module
from pipelines.log.verify import Problem, Report, verify_log
from pipelines.registry import load_registry
from pipelines.tlog import leaf, note
from pipelines.tlog.checkpoint import Checkpoint, sign_checkpoint

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class City:
    home: Path  # everything landed, published
    old: Path  # the same city after only the first half of the landed files


def settings_for(home: Path) -> Settings:
    return Settings.from_env({"SENSORLOG_HOME": str(home)})


def published_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """Build the city once per test session (test_prove reuses it); a marker file says it is complete."""
    base = tmp_path_factory.getbasetemp() / "sensorlog-verify-city"
    city = City(base / "home", base / "old")
    if (base / "done").exists():
        return city
    shutil.rmtree(base, ignore_errors=True)
    s = settings_for(city.home)
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 8))
    synthetic.write_city(load_registry(s.registry), s.landing, options)
    landed = flow.discover(s)
    held = [(Path(uri), base / "held" / f"{i}") for i, uri in enumerate(landed[len(landed) // 2:])]
    for src, dst in held:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
    flow.run(s)
    shutil.copytree(city.home, city.old)
    for src, dst in held:
        shutil.move(dst, src)
    flow.run(s)
    (base / "done").write_text("")
    return city


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return published_city(tmp_path_factory)


@pytest.fixture
def home(city: City, tmp_path: Path) -> Path:
    return Path(shutil.copytree(city.home, tmp_path / "home"))


def verify(home: Path, **kwargs: object) -> Report:
    s = settings_for(home)
    return verify_log(s.log, s.published, s.manifests, **kwargs)


def checks(report: Report) -> list[str]:
    return [p.check for p in report.problems]


@dataclass
class Output:
    manifest_path: Path
    manifest: dict
    entry: dict

    @property
    def rel(self) -> str:
        return self.entry["path"]


def outputs(home: Path) -> list[Output]:
    """Every published file, in leaf order, with its manifest."""
    found = []
    for path in (home / "manifests").glob("*.json"):
        manifest = json.loads(path.read_text())
        found += [Output(path, manifest, o) for o in manifest["outputs"]]
    return sorted(found, key=lambda o: o.entry["first_leaf"])


def pick(home: Path, table: str = "collection", min_rows: int = 2) -> Output:
    return next(o for o in outputs(home) if o.entry["table"] == table and o.entry["rows"] >= min_rows)


def row_name(home: Path, out: Output, row: int) -> str:
    t = pq.read_table(home / "published" / out.rel).slice(row, 1).to_pylist()[0]
    return f"leaf {out.entry['first_leaf'] + row} ({t['source']}/{t['event_id']})"


def change_records(home: Path, out: Output, row: int, *, fix_leaf_hash: bool) -> None:
    """Rewrite one Parquet file with ``records`` of one row increased, as an attacker would."""
    path = home / "published" / out.rel
    table = pq.read_table(path)
    values = table.column("records").to_pylist()
    values[row] += 1
    i = table.schema.get_field_index("records")
    table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    if fix_leaf_hash:
        hashes = [h.hex() for h in leaf.table_leaf_hashes(out.entry["table"], table)]
        j = table.schema.get_field_index("leaf_hash")
        table = table.set_column(j, table.schema.field(j), pa.array(hashes, pa.string()))
    pq.write_table(table, path, compression="zstd")


def write_manifest(out: Output) -> None:
    out.manifest_path.write_text(json.dumps(out.manifest, indent=2, sort_keys=True))


# -- untouched -----------------------------------------------------------------------------------


def test_untouched_log_verifies(home: Path) -> None:
    report = verify(home)
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.leaves == report.checkpoint.size
    assert report.files == len(outputs(home)) and report.rows > 1000
    assert any("root recomputed" in line for line in report.passed)


def test_untouched_log_verifies_with_pinned_key_and_saved_checkpoint(city: City, home: Path) -> None:
    vkey = (city.old / "log" / "log.vkey").read_text()
    saved = (city.old / "log" / "checkpoint").read_text()
    report = verify(home, since=saved, expected_vkey=vkey)
    assert report.ok, report.problems
    assert any("consistency proof" in line and "recomputed root" in line for line in report.passed)


def test_cli_exit_codes(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SENSORLOG_HOME": str(home)}
    result = runner.invoke(app, ["verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output
    out = pick(home)
    change_records(home, out, 1, fix_leaf_hash=False)
    result = runner.invoke(app, ["verify"], env=env)
    assert result.exit_code == 1
    assert "FAILED" in result.output and out.rel in result.output.splitlines()[-1]
    result = runner.invoke(app, ["verify", "--since", str(tmp_path / "nope")], env=env)
    assert result.exit_code == 2


# -- a changed row -------------------------------------------------------------------------------


def test_changed_value_is_named_by_file_and_row(home: Path) -> None:
    out = pick(home)
    change_records(home, out, 1, fix_leaf_hash=False)
    report = verify(home)
    assert not report.ok
    # The file is the first thing that does not match; the row is named next, by index and event.
    assert report.first == report.problems[0] and report.first.check == "file"
    assert report.first.subject == out.rel and "SHA-256" in report.first.message
    row = next(p for p in report.problems if p.check == "row")
    assert row.subject == f"{row_name(home, out, 1)} in {out.rel}"
    assert "leaf_hash column" in row.message


def test_changed_value_with_recomputed_leaf_hash(home: Path) -> None:
    out = pick(home)
    change_records(home, out, 1, fix_leaf_hash=True)
    report = verify(home)
    assert checks(report)[0] == "file" and report.first.subject == out.rel
    assert "row" not in checks(report)  # the leaf_hash column is consistent with the changed row...
    logged = next(p for p in report.problems if p.check == "logged-leaf")
    assert logged.subject == f"{row_name(home, out, 1)} in {out.rel}"  # ...but not with the log
    # The first signed tree that contains the row names it, and so does the latest checkpoint.
    roots = [p.subject for p in report.problems if p.check == "root"]
    assert roots[0].startswith("log/checkpoints/") and "log/checkpoint" in roots
    assert any("hash to the signed root" in w for w in report.warnings)


def test_changed_value_with_recomputed_leaf_hash_and_manifest(home: Path) -> None:
    out = pick(home)
    change_records(home, out, 1, fix_leaf_hash=True)
    out.entry["sha256"] = hashlib.sha256((home / "published" / out.rel).read_bytes()).hexdigest()
    write_manifest(out)
    report = verify(home)
    assert "file" not in checks(report) and "row" not in checks(report)
    first = report.first
    assert first.check == "logged-leaf" and first.subject == f"{row_name(home, out, 1)} in {out.rel}"
    # The edited manifest is itself a leaf that no longer matches, and the root does not either.
    assert any(p.check == "logged-leaf" and out.manifest_path.name in p.subject for p in report.problems)
    assert "root" in checks(report)


def test_rewritten_tile_store_cannot_hide_a_change(home: Path) -> None:
    """An attacker who also rewrites the log's stored leaf hashes is still caught by the signed root."""
    out = pick(home)
    change_records(home, out, 1, fix_leaf_hash=True)
    out.entry["sha256"] = hashlib.sha256((home / "published" / out.rel).read_bytes()).hexdigest()
    write_manifest(out)
    index = out.entry["first_leaf"] + 1
    tile = home / "log" / "tile" / "0" / f"{index // 256:03d}"
    if not tile.exists():
        tile = next((home / "log" / "tile" / "0").glob(f"{index // 256:03d}.p/*"))
    data = bytearray(tile.read_bytes())
    table = pq.read_table(home / "published" / out.rel)
    data[(index % 256) * 32:(index % 256 + 1) * 32] = bytes.fromhex(table.column("leaf_hash")[1].as_py())
    tile.write_bytes(bytes(data))
    report = verify(home)
    assert "root" in checks(report)
    assert not any(p.subject.startswith(f"leaf {index} ") for p in report.problems)
    assert any("do not hash to the signed root" in w for w in report.warnings)


# -- files ---------------------------------------------------------------------------------------


def test_deleted_file(home: Path) -> None:
    out = pick(home)
    (home / "published" / out.rel).unlink()
    report = verify(home)
    assert report.first == Problem("file", out.rel, f"is listed by manifests/{out.manifest_path.name} but missing")
    assert "root" in checks(report)


def test_swapped_files(home: Path) -> None:
    a, b = [o for o in outputs(home) if o.entry["table"] == "collection"][:2]
    pa_, pb = home / "published" / a.rel, home / "published" / b.rel
    data_a, data_b = pa_.read_bytes(), pb.read_bytes()
    pa_.write_bytes(data_b)
    pb.write_bytes(data_a)
    report = verify(home)
    assert report.first.check == "file" and report.first.subject == a.rel and "SHA-256" in report.first.message
    assert any(p.check == "file" and p.subject == b.rel for p in report.problems)
    # The rows are not at their logged positions either (or not as many as the manifest says).
    assert any(("leaf_index" in p.message or " rows, but " in p.message) for p in report.problems)


def test_swapped_between_event_types(home: Path) -> None:
    """Moving a file to another table's partition (and fixing the manifests) still changes its leaves."""
    a = pick(home, "collection", 1)
    b = pick(home, "access", 1)
    pa_, pb = home / "published" / a.rel, home / "published" / b.rel
    data_a, data_b = pa_.read_bytes(), pb.read_bytes()
    pa_.write_bytes(data_b)
    pb.write_bytes(data_a)
    for out, data in ((a, data_b), (b, data_a)):
        out.entry["sha256"] = hashlib.sha256(data).hexdigest()
        write_manifest(out)
    report = verify(home)
    assert not report.ok
    assert report.first.subject.endswith(a.rel) or report.first.subject.endswith(b.rel)


def test_extra_file_not_in_any_manifest(home: Path) -> None:
    out = pick(home)
    src = home / "published" / out.rel
    extra = src.with_name("0" * 64 + ".parquet")
    shutil.copy(src, extra)
    hidden = src.with_name(".sneaky.parquet")  # DuckDB's globs read hidden files too
    shutil.copy(src, hidden)
    report = verify(home)
    extras = {p.subject for p in report.problems if p.check == "extra"}
    assert extras == {str(extra.relative_to(home / "published")), str(hidden.relative_to(home / "published"))}
    assert set(checks(report)) == {"extra"}


def test_leftover_of_an_interrupted_write_is_only_a_warning(home: Path) -> None:
    out = pick(home)
    src = home / "published" / out.rel
    shutil.copy(src, src.with_name(f".{src.name}.{'ab' * 16}.partial"))  # as storage.temp_sibling names it
    report = verify(home)
    assert report.ok, report.problems
    assert any("interrupted write" in w for w in report.warnings)


def test_unreadable_file(home: Path) -> None:
    out = pick(home)
    (home / "published" / out.rel).write_bytes(b"not parquet")
    report = verify(home)
    assert [p.subject for p in report.problems[:2]] == [out.rel, out.rel]
    assert "not a readable Parquet file" in report.problems[1].message


def test_large_files_are_streamed_in_record_batches(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every file "large" and tiny record batches, the streaming path gives the same verdicts."""
    monkeypatch.setattr(verify_module, "WHOLE_FILE_LIMIT", 0)
    monkeypatch.setattr(verify_module, "GROUP_ROWS", 7)
    assert verify(home).ok
    out = pick(home, min_rows=20)
    change_records(home, out, 15, fix_leaf_hash=False)
    report = verify(home)
    assert report.first.subject == out.rel
    row = next(p for p in report.problems if p.check == "row")
    assert row.subject == f"{row_name(home, out, 15)} in {out.rel}"


def test_manifest_removed_but_files_kept(home: Path) -> None:
    middle = outputs(home)[len(outputs(home)) // 2]
    middle.manifest_path.unlink()
    report = verify(home)
    gap = next(p for p in report.problems if p.check == "manifest")
    assert "not covered by any manifest" in gap.message and middle.manifest["batch_id"] in gap.message
    assert any(p.check == "extra" and p.subject == middle.rel for p in report.problems)


# -- the log -------------------------------------------------------------------------------------


def test_truncated_log(home: Path) -> None:
    last = max((json.loads(p.read_text()) for p in (home / "manifests").glob("*.json")),
               key=lambda m: m["leaves"]["first"])
    for o in last["outputs"]:
        (home / "published" / o["path"]).unlink()
    (home / "manifests" / f"{last['batch_id']}.json").unlink()
    report = verify(home)
    assert checks(report) == ["truncated"]
    first = report.first
    assert first.subject == "log/checkpoint" and last["batch_id"] in first.message
    assert f"[{last['leaves']['first']}, " in first.message


def test_checkpoint_signed_by_another_key(home: Path, city: City) -> None:
    s = settings_for(home)
    current = (home / "log" / "checkpoint").read_text()
    text = current[: current.index("\n\n") + 1]
    lines = text.splitlines()
    forged = Checkpoint(lines[0], int(lines[1]), base64.b64decode(lines[2]))
    skey, vkey = note.generate_key(s.log_origin)
    (home / "log" / "checkpoint").write_text(sign_checkpoint(forged, note.Signer.from_skey(skey)))
    report = verify(home)
    assert report.first.check == "checkpoint" and report.first.subject == "log/checkpoint"
    assert "does not verify with the log key" in report.first.message

    # Replacing the published key too: the checkpoints the log kept from before still give it away...
    (home / "log" / "log.vkey").write_text(vkey + "\n")
    unpinned = verify(home)
    assert unpinned.first.check == "checkpoint" and unpinned.first.subject.startswith("log/checkpoints/")
    assert "more of the log's stored checkpoints" in unpinned.first.message
    # ...and so does pinning the key, or holding a checkpoint signed by the real key.
    pinned = verify(home, expected_vkey=(city.home / "log" / "log.vkey").read_text())
    assert pinned.first.check == "key" and pinned.first.subject == "log/log.vkey" and "replaced" in pinned.first.message
    saved = verify(home, since=(city.old / "log" / "checkpoint").read_text())
    assert any(p.check == "since" and "not a checkpoint signed by the log key" in p.message for p in saved.problems)


def test_rollback_to_an_older_state(city: City, tmp_path: Path) -> None:
    old = Path(shutil.copytree(city.old, tmp_path / "old"))
    saved = (city.home / "log" / "checkpoint").read_text()  # the auditor saw the newer log
    assert verify(old).ok  # on its own, an older state is a valid log...
    report = verify(old, since=saved)  # ...but not once the auditor has seen a newer one
    assert report.first.check == "rollback" and report.first.subject == "log/checkpoint"
    assert "rolled back" in report.first.message


def test_saved_checkpoint_from_a_rewritten_history(city: City, home: Path) -> None:
    """History rewritten before the auditor's saved checkpoint: the published leaves up to its size no
    longer hash to its root, and verify names that checkpoint."""
    old_cp = (city.old / "log" / "checkpoint").read_text()
    size = int(old_cp.splitlines()[1])
    # Rewrite history: change a row inside the old prefix, recompute everything the attacker can.
    out = next(o for o in outputs(home) if o.entry["first_leaf"] + o.entry["rows"] < size and o.entry["rows"] >= 2
               and o.entry["table"] == "collection")
    change_records(home, out, 1, fix_leaf_hash=True)
    report = verify(home, since=old_cp)
    assert any(p.check == "root" and p.subject == "--since checkpoint" for p in report.problems)


def test_rewritten_tile_store_cannot_fake_consistency(city: City, home: Path) -> None:
    """The consistency proof comes from the tile store, but it is checked against the saved root and the
    root recomputed from the Parquet: hashes rewritten above the leaves make it fail, not pass."""
    for tile in (home / "log" / "tile" / "1").rglob("*"):
        if tile.is_file():
            tile.write_bytes(bytes(b ^ 0xFF for b in tile.read_bytes()))
    report = verify(home, since=(city.old / "log" / "checkpoint").read_text())
    assert set(checks(report)) == {"since", "tiles"}, report.problems
    since = next(p for p in report.problems if p.check == "since")
    assert "does not verify" in since.message
    # Every rewritten level-1 tile is named, against the roots recomputed from the data.
    assert any(p.check == "tiles" and p.subject.startswith("log/tile/1/") for p in report.problems)


# -- idempotence ---------------------------------------------------------------------------------


def test_processing_the_same_files_twice_changes_nothing(home: Path) -> None:
    s = settings_for(home)
    before = {name: (home / "log" / name).read_bytes() for name in ("checkpoint", "state.json", "batches.jsonl")}
    flow.run(s)  # a copy of the home: its processed-file record is relative to the landing root
    one = next(p for p in (home / "landing").rglob("*.ndjson") if p.stat().st_size)
    shutil.copy(one, one.with_name("again-" + one.name))  # the same bytes landed under another name
    (home / "state" / "processed.json").unlink()
    flow.run(s)
    after = {name: (home / "log" / name).read_bytes() for name in before}
    assert after == before
    report = verify(home)
    assert report.ok, report.problems
