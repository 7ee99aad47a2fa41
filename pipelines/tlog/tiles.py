"""A persistent RFC 6962 hash store in the C2SP tlog-tiles layout (c2sp.org/tlog-tiles).

Tiles have height 8: ``tile/<L>/<N>`` holds 256 consecutive Merkle tree hashes at tree level
``8 * L`` (level 0 = leaf hashes), and the rightmost, incomplete tile of each level is written as
``tile/<L>/<N>.p/<W>`` (W = 1..255 hashes). ``N`` is written in 3-digit path elements, all but the
last prefixed by ``x`` (1234067 -> ``x001/x234/067``). The directory can be served as-is as the tile
part of a static tlog-tiles log; ``pipelines.log.export`` adds the entry bundles (re-derived from
the published Parquet) when the log is published.

Durability and atomicity (one writer at a time; the caller holds the lock):

* every tile is written to a temporary name, fsynced and renamed into place, so a tile file is
  either absent or complete; partial tiles of earlier sizes are kept (clients holding an older
  checkpoint may fetch them);
* the committed size and root are recorded LAST, atomically, in ``state.json``. Readers only read
  tiles at the widths the committed size implies, so anything a crashed append wrote beyond it is
  invisible, and the next append deletes it before writing over it.

The writer keeps the right edge of the tree (the rightmost incomplete tile of every level, at most
255 hashes each) in memory, so an append of b leaves costs O(b + log n) hashes and tile writes; the
edge is rebuilt from the partial tiles (O(log n) reads) when a store is opened for appending.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.tlog import merkle
from pipelines.tlog._fs import fsync_path, syncfs, syncfs_available
from pipelines.tlog.layout import STATE_FILE, TILE_HEIGHT, TILE_WIDTH, tile_path

HASH = merkle.HASH_SIZE
FSYNC_THREADS = 16  # concurrent fsyncs of one append's tile files
_CACHE_TILES = 256
_sha256 = hashlib.sha256


class StoreError(RuntimeError):
    """The store on disk is inconsistent with its committed state."""


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree given its 2**k bottom hashes, hashing a level at a time."""
    level = list(hashes)
    while len(level) > 1:
        level = [_sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)]
    return level[0]


def _edge_root(edge: Sequence[Sequence[bytes]]) -> bytes:
    """Root of the tree whose right edge is ``edge`` (edge[L] = the incomplete tile at level L).

    The binary decomposition of the size, read from the top level down, is exactly the bits of
    each level's incomplete-tile width, so the perfect subtrees of the frontier lie inside them.
    """
    parts = []
    for hashes in reversed(edge):
        pos = 0
        for bit in range(TILE_HEIGHT - 1, -1, -1):
            if len(hashes) >> bit & 1:
                parts.append(_perfect_root(hashes[pos:pos + (1 << bit)]))
                pos += 1 << bit
    if not parts:
        return merkle.EMPTY_ROOT
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = merkle.node_hash(h, acc)
    return acc


class TileReader:
    """Read-only access to the tiles of a tree of a known size, through ``fetch(relative path)``
    (which raises ``FileNotFoundError`` for an absent file): a local store, or a copy served
    anywhere. ``size`` and ``root`` come from the caller (a verified checkpoint, or ``state.json``)."""

    def __init__(self, fetch: Callable[[str], bytes], size: int, root: bytes | None = None,
                 label: str = "the log") -> None:
        self._fetch_fn = fetch
        self.label = label
        self._cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._size = size
        self._root = root if root is not None else (merkle.EMPTY_ROOT if size == 0 else None)

    def _fetch(self, rel: str) -> bytes:
        return self._fetch_fn(rel)

    @property
    def size(self) -> int:
        return self._size

    def root(self, size: int | None = None) -> bytes:
        if (size is None or size == self._size) and self._root is not None:
            return self._root
        size = self._size if size is None else size
        self._check_size(size)
        return merkle.subtree_hash(0, size, self.hash_at) if size else merkle.EMPTY_ROOT

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is beyond the committed size {self._size}")

    # -- reading ---------------------------------------------------------------------------

    def _read_tile(self, level: int, index: int) -> bytes:
        """The tile's hashes at the width the committed size implies."""
        width = min(TILE_WIDTH, (self._size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH)
        if width <= 0:
            raise ValueError(f"tile {level}/{index} is beyond the committed size {self._size}")
        key = (level, index, width)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        try:
            data = self._fetch(tile_path(level, index, width))
        except FileNotFoundError:
            # A partial tile may be superseded by (and, if pruned, replaced with) the full tile.
            try:
                data = self._fetch(tile_path(level, index))[:width * HASH]
            except FileNotFoundError:
                raise StoreError(f"missing tile {tile_path(level, index, width)} under {self.label}") from None
        if len(data) != width * HASH:
            raise StoreError(f"tile {tile_path(level, index, width)} has {len(data)} bytes, want {width * HASH}")
        self._cache[key] = data
        if len(self._cache) > _CACHE_TILES:
            self._cache.popitem(last=False)
        return data

    def hash_at(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree ``(level, index)`` (merkle.HashAt), from at most one tile."""
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ValueError(f"node ({level}, {index}) is not in the committed tree of size {self._size}")
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # first covered node at tree level 8 * tile_level
        data = self._read_tile(tile_level, first >> TILE_HEIGHT)
        offset = (first % TILE_WIDTH) * HASH
        hashes = [data[i:i + HASH] for i in range(offset, offset + (HASH << height), HASH)]
        return _perfect_root(hashes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size if size is None else size
        self._check_size(size)
        return merkle.inclusion_proof(index, size, self.hash_at)

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        n = self._size if n is None else n
        self._check_size(n)
        return merkle.consistency_proof(m, n, self.hash_at)

    def leaf_hashes(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """Stored leaf hashes ``[start, end)`` (for audits that recompute leaves)."""
        end = self._size if end is None else end
        self._check_size(end)
        out: list[bytes] = []
        for tile in range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH):
            data = self._read_tile(0, tile)
            lo, hi = max(start, tile * TILE_WIDTH), min(end, (tile + 1) * TILE_WIDTH)
            base = tile * TILE_WIDTH
            out.extend(data[(i - base) * HASH:(i - base + 1) * HASH] for i in range(lo, hi))
        return out


class TileStore(TileReader):
    """The writable store in a local directory (its committed size and root are in ``state.json``)."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.directory = Path(root)
        super().__init__(self._read_file, 0, merkle.EMPTY_ROOT, str(self.directory))
        self.fsync = fsync
        self._edge: list[list[bytes]] | None = None
        self.reload()

    def _read_file(self, rel: str) -> bytes:
        return (self.directory / rel).read_bytes()

    # -- committed state -------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the committed size (another process may have appended)."""
        try:
            state = json.loads((self.directory / STATE_FILE).read_text())
        except FileNotFoundError:
            state = {"size": 0, "root": merkle.EMPTY_ROOT.hex()}
        size, root = int(state["size"]), bytes.fromhex(state["root"])
        if getattr(self, "_size", None) != size:
            self._edge = None
        self._size, self._root = size, root

    # -- writing ---------------------------------------------------------------------------

    def _load_edge(self) -> list[list[bytes]]:
        if self._edge is None:
            self._discard_uncommitted()
            edge = []
            level = 0
            while self._size >> (TILE_HEIGHT * level):
                count = self._size >> (TILE_HEIGHT * level)
                width = count % TILE_WIDTH
                data = self._read_tile(level, count // TILE_WIDTH) if width else b""
                edge.append([data[i:i + HASH] for i in range(0, len(data), HASH)])
                level += 1
            if _edge_root(edge) != self._root:
                raise StoreError(f"tiles under {self.directory} do not hash to the committed root")
            self._edge = edge
        return self._edge

    def _discard_uncommitted(self) -> None:
        """Delete tiles a crashed append wrote beyond the committed size.

        They are unreadable anyway, but a stale partial tile of a width the next append skips would
        otherwise stay on disk, wrong, for anyone serving the directory.
        """
        for level in range(64):
            count = self._size >> (TILE_HEIGHT * level)
            index, width = divmod(count, TILE_WIDTH)
            found = False
            # The incomplete tile: its full version and any wider partials are uncommitted.
            full = self.directory / tile_path(level, index)
            if full.exists():
                full.unlink()
                found = True
            partials = full.with_name(full.name + ".p")
            if partials.is_dir():
                for child in partials.iterdir():
                    if not child.name.isdigit() or int(child.name) > width:
                        child.unlink()
                        found = True
            # Tiles to its right were written by the crashed append, contiguously.
            nxt = index + 1
            while True:
                path = self.directory / tile_path(level, nxt)
                partial_dir = path.with_name(path.name + ".p")
                if not path.exists() and not partial_dir.exists():
                    break
                path.unlink(missing_ok=True)
                shutil.rmtree(partial_dir, ignore_errors=True)
                found = True
                nxt += 1
            if not count and not found:
                break

    def _write_all(self, files: list[tuple[str, bytes]], dirs: set[Path], *, sync: bool = True) -> None:
        """Write each (relative path, bytes) atomically: temporary file, fsync, rename.

        An append writes hundreds of tiles; their fsyncs run on a thread pool (fsync releases the GIL
        and the file system commits concurrent syncs together), which cuts the append's wall time
        several-fold against one fsync after another. Every file is durable before any is renamed."""
        staged = []
        for rel, data in files:
            path = self.directory / rel
            missing = []
            parent = path.parent
            while not parent.exists():
                missing.append(parent)
                parent = parent.parent
            for d in reversed(missing):
                d.mkdir(exist_ok=True)
                dirs.add(d.parent)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            staged.append((tmp, path))
        if self.fsync and sync and staged:
            if len(staged) == 1:
                fsync_path(staged[0][0])
            else:
                with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as pool:
                    list(pool.map(fsync_path, [tmp for tmp, _ in staged]))
        for tmp, path in staged:
            os.replace(tmp, path)
            dirs.add(path.parent)

    def append(self, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaf hashes; return the index of the first. Durable when this returns."""
        leaves = [bytes(h) for h in leaf_hashes]
        if any(len(h) != HASH for h in leaves):
            raise ValueError("leaf hashes must be 32 bytes")
        edge = [list(hashes) for hashes in self._load_edge()]
        start = self._size
        if not leaves:
            return start
        end = start + len(leaves)
        dirs: set[Path] = set()
        writes: list[tuple[str, bytes]] = []
        incoming, level = leaves, 0
        while incoming:
            if level == len(edge):
                edge.append([])
            buf = edge[level]
            tile = (start >> (TILE_HEIGHT * level)) // TILE_WIDTH
            completed = []
            pos = 0
            while pos < len(incoming):
                take = min(TILE_WIDTH - len(buf), len(incoming) - pos)
                buf.extend(incoming[pos:pos + take])
                pos += take
                if len(buf) == TILE_WIDTH:
                    writes.append((tile_path(level, tile), b"".join(buf)))
                    completed.append(_perfect_root(buf))
                    buf.clear()
                    tile += 1
            incoming, level = completed, level + 1
        # The rightmost tile of every level that changed is written as a partial tile.
        for level, hashes in enumerate(edge):
            before = start >> (TILE_HEIGHT * level)
            after = end >> (TILE_HEIGHT * level)
            if after % TILE_WIDTH and after != before:
                assert len(hashes) == after % TILE_WIDTH
                writes.append((tile_path(level, after // TILE_WIDTH, len(hashes)), b"".join(hashes)))
        root = _edge_root(edge)
        if self.fsync and syncfs_available():
            # One syncfs for the whole append instead of an fsync per tile and per directory. The tiles
            # need not be durable before their rename: every name an append writes is new (a full
            # tile, or a partial of a new width), and until ``state.json`` names the new size a crash
            # leaves them beyond the committed size, where ``_discard_uncommitted`` deletes them.
            self._write_all(writes, dirs, sync=False)
            self._commit(end, root, synced_before_rename=True)
        else:
            self._write_all(writes, dirs)
            if self.fsync:
                for d in dirs:
                    fsync_path(d)
            self._commit(end, root)
        self._size, self._root, self._edge = end, root, edge
        return start

    def _commit(self, size: int, root: bytes, *, synced_before_rename: bool = False) -> None:
        """The commit point: write ``state.json`` atomically, after every tile it refers to.

        ``synced_before_rename``: the tiles were written without fsyncs; one ``syncfs`` after writing the
        new state's temporary file makes the tiles, their renames and that file durable at once, before
        the rename that commits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"size": size, "root": root.hex()}).encode() + b"\n"
        if synced_before_rename:
            tmp = self.directory / f".{STATE_FILE}.tmp"
            tmp.write_bytes(data)
            syncfs(self.directory)
            os.replace(tmp, self.directory / STATE_FILE)
            fsync_path(self.directory)
            return
        dirs: set[Path] = set()
        self._write_all([(STATE_FILE, data)], dirs)
        if self.fsync:
            fsync_path(self.directory)
