"""Checks of a static log's stored tiles and entry bundles against the leaf hashes a verifier
recomputed from the published data (``pipelines.log.verify`` feeds them in leaf order).

* :class:`TileChecker`: every hash tile above level 0 (level-0 hashes are compared leaf by leaf by
  the verifier itself, which can name the row), full and partial, and the level-0 partial tiles of
  every signed size. A tile at level L+1 holds the roots of the full level-L tiles, so recomputing
  them from the leaves finds a flipped bit in ``tile/1/000`` that a level-0-only check misses.
* :class:`BundleChecker`: every entry bundle (``tile/entries/…``), entry by entry: each entry must
  hash to the recomputed leaf hash at its index, i.e. be exactly the leaf bytes.

Partial tiles and bundles of an older signed size may have been deleted once the full one exists
(c2sp.org/tlog-tiles allows it), so only those of the latest size must be present.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from pipelines.tlog import bundles
from pipelines.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, _perfect_root, tile_path

Fetch = Callable[[str], bytes]  # raises FileNotFoundError when absent
Fail = Callable[[str, str, str], None]  # (check, subject, message)
HASH = 32


def _partials(size: int, sizes: Iterable[int], level: int) -> dict[int, set[int]]:
    """Tile index -> widths of the partial tiles at ``level`` for the signed sizes."""
    out: dict[int, set[int]] = {}
    for s in {size, *sizes}:
        index, width = divmod(s >> (TILE_HEIGHT * level), TILE_WIDTH)
        if width:
            out.setdefault(index, set()).add(width)
    return out


class TileChecker:
    def __init__(self, fetch: Fetch, size: int, sizes: Iterable[int], fail: Fail, prefix: str = "log/") -> None:
        self.fetch, self.size, self.fail, self.prefix = fetch, size, fail, prefix
        self.sizes = sorted(s for s in set(sizes) if 0 < s <= size)
        self.buffers: list[list[bytes]] = [[]]
        self.tiles_done: list[int] = [0]
        self.checked = 0
        self.problems = 0

    def _report(self, rel: str, message: str) -> None:
        self.problems += 1
        self.fail("tiles", self.prefix + rel, message)

    def _compare(self, level: int, index: int, hashes: list[bytes], *, required: bool) -> None:
        width = len(hashes)
        rel = tile_path(level, index, width)
        try:
            stored = self.fetch(rel)
        except FileNotFoundError:
            if required:
                self._report(rel, "is missing: a static log must serve it")
            return
        except OSError as exc:
            self._report(rel, f"cannot be read: {exc}")
            return
        self.checked += 1
        expected = b"".join(hashes)
        if stored != expected:
            if len(stored) != len(expected):
                self._report(rel, f"has {len(stored)} bytes, expected {len(expected)} ({width} hashes)")
                return
            k = next(i for i in range(width) if stored[i * HASH:(i + 1) * HASH] != hashes[i])
            what = "leaf hash" if level == 0 else f"root of tile {level - 1}/{index * TILE_WIDTH + k}"
            self._report(rel, f"hash {k} is {stored[k * HASH:(k + 1) * HASH].hex()}, but the {what} recomputed"
                              f" from the published data is {hashes[k].hex()}")

    def add(self, leaf_hashes: list[bytes]) -> None:
        self._push(0, leaf_hashes)

    def _push(self, level: int, hashes: list[bytes]) -> None:
        if level == len(self.buffers):
            self.buffers.append([])
            self.tiles_done.append(0)
        buf = self.buffers[level]
        completed: list[bytes] = []
        partials = None
        for h in hashes:
            buf.append(h)
            if len(buf) == TILE_WIDTH:
                index = self.tiles_done[level]
                if level > 0:
                    self._compare(level, index, buf, required=True)
                partials = partials if partials is not None else _partials(self.size, self.sizes, level)
                for width in sorted(partials.get(index, ())):
                    self._compare(level, index, buf[:width], required=False)
                completed.append(_perfect_root(buf))
                self.tiles_done[level] += 1
                buf.clear()
        if completed:
            self._push(level + 1, completed)

    def finish(self) -> None:
        """The rightmost (partial) tile of every level: required at the latest size."""
        for level, buf in enumerate(self.buffers):
            index = self.tiles_done[level]
            widths = _partials(self.size, self.sizes, level).get(index, set())
            for width in sorted(widths):
                if width <= len(buf):
                    self._compare(level, index, buf[:width], required=width == len(buf))


class BundleChecker:
    """Entry bundles against the recomputed leaf hashes, in leaf order."""

    def __init__(self, fetch: Fetch, size: int, sizes: Iterable[int], fail: Fail, prefix: str = "log/") -> None:
        self.fetch, self.size, self.fail, self.prefix = fetch, size, fail, prefix
        self.sizes = sorted(s for s in set(sizes) if 0 < s <= size)
        self.entries: list[bytes] | None = None
        self.bundle = -1
        self.checked = 0
        self.problems = 0
        self.reported: set[int | tuple[int, int]] = set()  # bundle index, or (index, width) of a partial

    def present(self) -> bool:
        if self.size == 0:
            return True
        try:
            self.fetch(bundles.bundle_path(0, min(TILE_WIDTH, self.size)))
        except FileNotFoundError:
            return False
        except OSError:
            return True  # reported when it is read
        return True

    def _load(self, index: int) -> None:
        width = min(TILE_WIDTH, self.size - index * TILE_WIDTH)
        rel = bundles.bundle_path(index, width)
        self.bundle, self.entries = index, None
        try:
            data = self.fetch(rel)
        except FileNotFoundError:
            self._report(index, rel, "is missing: the log's entries must be served")
            return
        except OSError as exc:
            self._report(index, rel, f"cannot be read: {exc}")
            return
        try:
            self.entries = bundles.decode_bundle(data)
        except bundles.BundleError as exc:
            self._report(index, rel, f"is not an entry bundle: {exc}")
            return
        if len(self.entries) != width:
            self._report(index, rel, f"holds {len(self.entries)} entries, expected {width}")
            self.entries = None
            return
        self.checked += 1
        # Older sizes' partial bundles of this index, where still served, must be prefixes.
        for s in self.sizes:
            i, w = divmod(s, TILE_WIDTH)
            if i == index and w and w != width:
                prel = bundles.bundle_path(index, w)
                try:
                    part = bundles.decode_bundle(self.fetch(prel))
                except FileNotFoundError:
                    continue
                except (OSError, bundles.BundleError) as exc:
                    self._report(index, prel, f"is not a readable entry bundle: {exc}")
                    continue
                if part != self.entries[:w]:
                    # Its own key: the changed entry itself is still named when its leaf comes by.
                    self._report((index, w), prel, f"differs from the first {w} entries of {rel}")

    def _report(self, index: int | tuple[int, int], rel: str, message: str) -> None:
        if index in self.reported:
            return
        self.reported.add(index)
        self.problems += 1
        self.fail("entries", self.prefix + rel, message)

    def add(self, start: int, leaf_hashes: list[bytes]) -> None:
        for k, expected in enumerate(leaf_hashes):
            i = start + k
            index, offset = divmod(i, TILE_WIDTH)
            if index != self.bundle:
                self._load(index)
            if self.entries is None:
                continue
            got = hashlib.sha256(b"\x00" + self.entries[offset]).digest()
            if got != expected:
                self._report(index, bundles.bundle_path(index, len(self.entries)),
                             f"entry {offset} (leaf {i}) is not the leaf recomputed from the published data: it"
                             f" hashes to {got.hex()}, the data to {expected.hex()}")
