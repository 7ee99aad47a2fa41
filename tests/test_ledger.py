"""The ledger adapter: keys, signed checkpoints, batch bookkeeping, forks and crash recovery."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.config import Settings
from pipelines.log import writer
from pipelines.tlog import checkpoint, leaf, merkle, note, proof, tiles

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"SENSORLOG_HOME": str(tmp_path)})


def hashes(n: int, salt: str) -> list[bytes]:
    return [merkle.leaf_hash(f"{salt}-{i}".encode()) for i in range(n)]


def files(root: str) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in Path(root).rglob("*") if p.is_file()
    }


class Crash(Exception):
    pass


def test_key_is_created_private_and_its_vkey_published(settings: Settings) -> None:
    log = writer.open_log(settings)
    key = Path(settings.key_file)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signer = note.Signer.from_skey(key.read_text())
    assert signer.name == settings.log_origin
    assert (Path(settings.log) / "log.vkey").read_text().strip() == signer.vkey() == log.vkey
    assert writer.public_key(settings) == log.vkey
    # Opening again reuses the key.
    assert writer.open_log(settings).vkey == log.vkey


def test_key_file_location_can_be_overridden(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "deep" / "log.key"
    s = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_KEY_FILE": str(key)})
    writer.open_log(s)
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_append_writes_verifiable_checkpoints(settings: Settings) -> None:
    log = writer.open_log(settings)
    assert writer.latest_checkpoint(settings) is None
    assert log.batch_start("a") == 0
    first = log.append("a", 0, hashes(5, "a"))
    assert log.batch_start("b") == 5
    second = log.append("b", 5, hashes(3, "b"))
    assert (first.size, second.size) == (5, 8)
    assert second.root_hash == merkle.root_of(hashes(5, "a") + hashes(3, "b"))
    directory = Path(settings.log)
    vkey = (directory / "log.vkey").read_text()
    for cp in (first, second):
        signed = (directory / "checkpoints" / str(cp.size)).read_text()
        assert checkpoint.open_checkpoint(signed, vkey) == cp
    assert checkpoint.open_checkpoint((directory / "checkpoint").read_text(), vkey) == second
    assert writer.latest_checkpoint(settings) == second
    assert cp.origin == settings.log_origin
    assert (directory / "tile" / "0" / "000.p" / "8").is_file()
    # Proofs through the module API, against the signed heads.
    for index, leaf_hash in enumerate(hashes(5, "a") + hashes(3, "b")):
        assert merkle.verify_inclusion(leaf_hash, index, 8, writer.inclusion_proof(settings, index), second.root_hash)
    assert merkle.verify_consistency(5, 8, first.root_hash, second.root_hash, writer.consistency_proof(settings, 5))
    assert merkle.verify_inclusion(hashes(5, "a")[2], 2, 5, writer.inclusion_proof(settings, 2, 5), first.root_hash)
    # A self-contained tlog-proof file, verified with nothing but the public key.
    text = writer.tlog_proof(settings, 6)
    assert proof.verify(text, hashes(3, "b")[1], writer.public_key(settings)) == second
    assert proof.verify(writer.tlog_proof(settings, 1, 5), hashes(5, "a")[1], vkey) == first


def test_re_appending_a_batch_is_a_no_op(settings: Settings) -> None:
    log = writer.open_log(settings)
    cp = log.append("a", 0, hashes(4, "a"))
    log.append("b", 4, hashes(2, "b"))
    before = files(settings.log)
    again = writer.open_log(settings)
    assert again.batch_start("a") == 0
    assert again.append("a", 0, hashes(4, "a")).size == 6
    assert files(settings.log) == before
    assert writer.latest_checkpoint(settings).size == 6 and cp.size == 4
    with pytest.raises(writer.BatchConflict, match="different leaves"):
        again.append("a", 0, hashes(4, "not-a"))
    with pytest.raises(writer.BatchConflict, match=r"\[0, 4\)"):
        again.append("a", 0, hashes(5, "a"))
    assert files(settings.log) == before


def test_a_concurrent_writer_cannot_fork_the_tree(settings: Settings) -> None:
    one, two = writer.open_log(settings), writer.open_log(settings)
    assert one.batch_start("a") == two.batch_start("b") == 0
    one.append("a", 0, hashes(3, "a"))
    with pytest.raises(writer.ForkError, match="fork"):
        two.append("b", 0, hashes(2, "b"))
    assert two.batch_start("b") == 3
    assert two.append("b", 3, hashes(2, "b")).size == 5


def test_crash_after_the_intent_before_the_tree_commit(settings: Settings, monkeypatch) -> None:
    writer.open_log(settings).append("a", 0, hashes(2, "a"))

    def crash(self, size, root, **_):
        raise Crash()

    with monkeypatch.context() as patch:
        patch.setattr(tiles.TileStore, "_commit", crash)
        log = writer.open_log(settings)
        assert log.batch_start("b") == 2
        with pytest.raises(Crash):
            log.append("b", 2, hashes(3, "b"))
    log = writer.open_log(settings)
    assert log.size == 2 and writer.latest_checkpoint(settings).size == 2
    assert log.batch_start("b") == 2  # the recorded position of the interrupted batch
    assert log.append("b", 2, hashes(3, "b")).root_hash == merkle.root_of(hashes(2, "a") + hashes(3, "b"))
    assert log.batch_start("b") == 2 and log.batch_start("c") == 5


def test_a_different_batch_supersedes_an_interrupted_one(settings: Settings, monkeypatch) -> None:
    writer.open_log(settings).append("a", 0, hashes(2, "a"))
    with monkeypatch.context() as patch:
        patch.setattr(tiles.TileStore, "_commit", lambda self, size, root, **_: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            writer.open_log(settings).append("lost", 2, hashes(7, "lost"))
    log = writer.open_log(settings)
    assert log.batch_start("c") == 2
    log.append("c", 2, hashes(1, "c"))
    # The interrupted batch, re-run later, goes after c.
    assert log.batch_start("lost") == 3
    cp = log.append("lost", 3, hashes(7, "lost"))
    assert cp.root_hash == merkle.root_of(hashes(2, "a") + hashes(1, "c") + hashes(7, "lost"))
    assert writer.open_log(settings).batch_start("c") == 2


def test_crash_after_the_tree_commit_before_the_checkpoint(settings: Settings, monkeypatch) -> None:
    writer.open_log(settings).append("a", 0, hashes(2, "a"))
    with monkeypatch.context() as patch:
        patch.setattr(writer, "sign_checkpoint", lambda *a: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            writer.open_log(settings).append("b", 2, hashes(3, "b"))
    assert writer.latest_checkpoint(settings).size == 2  # the tree has 5 leaves, unsigned yet
    log = writer.open_log(settings)
    assert log.size == 5 and log.batch_start("b") == 2
    cp = log.append("b", 2, hashes(3, "b"))  # the re-run finds its leaves and signs
    assert cp.size == 5 and writer.latest_checkpoint(settings) == cp
    assert (Path(settings.log) / "checkpoints" / "5").is_file()


def test_a_torn_index_line_is_ignored_and_replaced(settings: Settings) -> None:
    log = writer.open_log(settings)
    log.append("a", 0, hashes(2, "a"))
    index = Path(settings.log) / "batches.jsonl"
    with open(index, "ab") as handle:
        handle.write(b'{"batch_id": "b", "sta')
    log = writer.open_log(settings)
    assert log.batch_start("b") == 2
    log.append("b", 2, hashes(1, "b"))
    assert index.read_text().count("\n") == 2 and '"sta\n' not in index.read_text()
    assert writer.open_log(settings).batch_start("b") == 2


def test_a_different_signing_key_is_refused(settings: Settings, tmp_path: Path) -> None:
    writer.open_log(settings).append("a", 0, hashes(1, "a"))
    other = Settings.from_env({"SENSORLOG_HOME": str(tmp_path), "SENSORLOG_KEY_FILE": str(tmp_path / "other.key")})
    with pytest.raises(writer.KeyMismatch):
        writer.open_log(other)
    renamed = Settings.from_env({"SENSORLOG_HOME": str(tmp_path), "SENSORLOG_LOG_ORIGIN": "elsewhere.example/log"})
    with pytest.raises(writer.KeyMismatch, match="origin"):
        writer.open_log(renamed)


def test_empty_batches_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError):
        writer.open_log(settings).append("a", 0, [])


def test_leaf_helpers_delegate_to_the_leaf_encoding() -> None:
    table = pa.table({"source": ["s"], "records": [1]})
    assert writer.row_leaf_hashes("collection", table) == [leaf.row_leaf_hash("collection", table.to_pylist()[0])]
    assert writer.manifest_leaf_hash({"batch_id": "x"}) == leaf.manifest_leaf_hash({"batch_id": "x"})
