"""The tile store: appends in any batch split give the RFC 9162 tree; proofs match a naive
reference written from the RFC's recursive definitions; crashes leave the committed state."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines.tlog import merkle, tiles

pytestmark = pytest.mark.unit


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [merkle.leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


# -- naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, recursion and all ---------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return merkle.node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


# -- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 255, 256, 257, 1000, 5000])
def test_appending_in_batches_gives_the_root_of_all_leaves(tmp_path: Path, batch: int) -> None:
    n = 1300 if batch < 10 else 5000  # tiny batches cost a partial-tile write each: keep them few
    data = leaves(n)
    store = tiles.TileStore(tmp_path, fsync=False)
    expected = merkle.Frontier()
    for start in range(0, n, batch):
        assert store.append(data[start:start + batch]) == start
        expected.extend(data[start:start + batch])
        assert store.root() == expected.root()
    reopened = tiles.TileStore(tmp_path)
    assert reopened.size == n and reopened.root() == merkle.root_of(data)
    assert reopened.leaf_hashes(0, n) == data
    assert reopened.leaf_hashes(250, 520) == data[250:520]
    for m in (1, 255, 256, 257, 1299):
        assert reopened.root(m) == merkle.root_of(data[:m])


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    splits=st.lists(st.integers(1, 300), min_size=1, max_size=8),
    picks=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=4),
)
def test_random_batch_splits_agree_with_the_naive_reference(splits: list[int], picks: list) -> None:
    data = leaves(sum(splits), salt=b"h")
    with tempfile.TemporaryDirectory() as tmp:
        store = tiles.TileStore(Path(tmp), fsync=False)
        sizes = []
        for size in splits:
            store.append(data[store.size:store.size + size])
            sizes.append(store.size)
        store = tiles.TileStore(Path(tmp), fsync=False)  # everything below reads from disk
        n = store.size
        assert store.root() == mth(data)
        for fm, fi in picks:
            m = 1 + int(fm * (n - 1))
            index = int(fi * (m - 1))
            assert store.root(m) == mth(data[:m])
            assert store.inclusion_proof(index, m) == path(index, data[:m])
            assert store.consistency_proof(m, n) == subproof(m, data, True)
        # Every size the log had after a batch is a valid old tree head.
        for m in sizes:
            proof = store.consistency_proof(m)
            assert merkle.verify_consistency(m, n, mth(data[:m]), store.root(), proof)


def test_spec_example_tree_of_70000(tmp_path: Path) -> None:
    """tlog-tiles: size 70,000 = 273 full level-0 tiles, a level-0 partial of width 112, one full
    level-1 tile, a level-1 partial of width 17 and a level-2 partial of width 1."""
    data = leaves(70_000)
    store = tiles.TileStore(tmp_path, fsync=False)
    for start in range(0, 70_000, 9_999):
        store.append(data[start:start + 9_999])
    assert store.root() == merkle.root_of(data)
    assert len(list((tmp_path / "tile" / "0").glob("[0-9][0-9][0-9]"))) == 273
    for rel in ("tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"):
        assert (tmp_path / rel).is_file(), rel
    for index in (0, 65_535, 65_536, 69_999):
        proof = store.inclusion_proof(index)
        assert merkle.verify_inclusion(data[index], index, 70_000, proof, store.root())


def test_tile_contents_follow_the_spec_formula(tmp_path: Path) -> None:
    data = leaves(256 * 256 + 300)
    store = tiles.TileStore(tmp_path, fsync=False)
    store.append(data)
    level1 = (tmp_path / "tile/1/000").read_bytes()
    # MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l]) with l = 1, n = 0
    for i in (0, 1, 255):
        assert level1[i * 32:(i + 1) * 32] == merkle.root_of(data[i * 256:(i + 1) * 256])
    assert (tmp_path / "tile/2/000.p/1").read_bytes() == merkle.root_of(data[:65536])


class Crash(Exception):
    pass


def _crash_on_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    def commit(self: tiles.TileStore, size: int, root: bytes, **_: object) -> None:
        raise Crash(size)

    monkeypatch.setattr(tiles.TileStore, "_commit", commit)


def test_crash_before_the_state_is_written_keeps_the_old_tree(tmp_path: Path, monkeypatch) -> None:
    data = leaves(1000)
    store = tiles.TileStore(tmp_path)
    store.append(data[:300])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    with monkeypatch.context() as patch:
        _crash_on_commit(patch)
        with pytest.raises(Crash):
            tiles.TileStore(tmp_path).append(leaves(500, salt=b"lost"))  # tiles written, no commit
    assert (tmp_path / "tile/0/003.p/32").exists()  # the crashed append's right edge is on disk
    reopened = tiles.TileStore(tmp_path)
    assert reopened.size == 300 and reopened.root() == merkle.root_of(data[:300])
    assert reopened.inclusion_proof(299) == path(299, data[:300])
    # Re-appending (different leaves, different widths) overwrites the uncommitted tiles.
    assert reopened.append(data[300:700]) == 300
    assert reopened.root() == merkle.root_of(data[:700])
    again = tiles.TileStore(tmp_path)
    assert again.root() == merkle.root_of(data[:700]) and again.leaf_hashes(0, 700) == data[:700]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    # Nothing from the crashed append survives: only tiles of committed sizes 300 and 700.
    assert set(after) - set(before) == {Path("tile/0/001"), Path("tile/0/002.p/188"), Path("tile/1/000.p/2")}
    assert not (tmp_path / "tile/0/003.p/32").exists() and not (tmp_path / "tile/1/000.p/3").exists()


def test_same_batch_after_a_crash_gives_the_same_root(tmp_path: Path, monkeypatch) -> None:
    data = leaves(2000)
    store = tiles.TileStore(tmp_path)
    store.append(data[:100])
    with monkeypatch.context() as patch:
        _crash_on_commit(patch)
        with pytest.raises(Crash):
            store.append(data[100:2000])
    assert store.size == 100  # the in-memory view did not move either
    store = tiles.TileStore(tmp_path)
    assert store.size == 100
    store.append(data[100:2000])
    assert store.root() == merkle.root_of(data)


@pytest.mark.skipif(not tiles.syncfs_available(), reason="syncfs(2) is Linux-only")
def test_an_append_syncs_the_file_system_once_instead_of_each_tile(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    real_syncfs, real_fsync = tiles.syncfs, tiles.fsync_path
    monkeypatch.setattr(tiles, "syncfs", lambda p: (calls.append("syncfs"), real_syncfs(p))[1])
    monkeypatch.setattr(tiles, "fsync_path", lambda p: (calls.append(f"fsync {p}"), real_fsync(p))[1])
    store = tiles.TileStore(tmp_path)
    data = leaves(5000)
    store.append(data)  # 19 full tiles, partial tiles at two levels
    assert calls == ["syncfs", f"fsync {tmp_path}"]  # then the state's rename made durable
    assert tiles.TileStore(tmp_path).root() == merkle.root_of(data)


@pytest.mark.skipif(not tiles.syncfs_available(), reason="syncfs(2) is Linux-only")
def test_a_crash_at_the_file_system_sync_keeps_the_old_tree(tmp_path: Path, monkeypatch) -> None:
    data = leaves(1200)
    tiles.TileStore(tmp_path).append(data[:300])

    def crash(path: Path) -> None:
        raise Crash(0)

    with monkeypatch.context() as patch:
        patch.setattr(tiles, "syncfs", crash)
        with pytest.raises(Crash):
            tiles.TileStore(tmp_path).append(leaves(800, salt=b"lost"))
    reopened = tiles.TileStore(tmp_path)
    assert reopened.size == 300 and reopened.root() == merkle.root_of(data[:300])
    assert reopened.append(data[300:]) == 300
    assert tiles.TileStore(tmp_path).root() == merkle.root_of(data)
    assert not list(tmp_path.rglob(".*.tmp")) or reopened.size == 1200


def test_readers_see_only_committed_sizes(tmp_path: Path) -> None:
    data = leaves(600)
    writer = tiles.TileStore(tmp_path)
    writer.append(data[:10])
    reader = tiles.TileStore(tmp_path)
    writer.append(data[10:600])
    assert reader.size == 10 and reader.root() == merkle.root_of(data[:10])
    assert reader.inclusion_proof(3) == path(3, data[:10])
    reader.reload()
    assert reader.size == 600 and reader.root() == merkle.root_of(data)


def test_corrupt_tiles_are_detected(tmp_path: Path) -> None:
    store = tiles.TileStore(tmp_path)
    store.append(leaves(300))
    partial = tmp_path / "tile/0/001.p/44"
    partial.write_bytes(b"\x00" * 32 + partial.read_bytes()[32:])
    with pytest.raises(tiles.StoreError, match="committed root"):
        tiles.TileStore(tmp_path).append(leaves(1))
    partial.write_bytes(partial.read_bytes()[:-1])
    with pytest.raises(tiles.StoreError, match="bytes"):
        tiles.TileStore(tmp_path).inclusion_proof(299)


def test_state_file_and_bad_input(tmp_path: Path) -> None:
    store = tiles.TileStore(tmp_path)
    assert store.size == 0 and store.root() == merkle.EMPTY_ROOT
    assert store.append([]) == 0
    with pytest.raises(ValueError):
        store.append([b"short"])
    store.append(leaves(3))
    state = json.loads((tmp_path / tiles.STATE_FILE).read_text())
    assert state == {"size": 3, "root": merkle.root_of(leaves(3)).hex()}
    with pytest.raises(ValueError):
        store.inclusion_proof(0, 4)
    with pytest.raises(ValueError):
        store.hash_at(2, 0)  # covers leaves 0..3, but only 3 exist
