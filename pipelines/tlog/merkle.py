"""RFC 9162 (RFC 6962) Merkle tree hashing, compact ranges and proofs.

Hashing: leaf = SHA-256(0x00 || data), interior node = SHA-256(0x01 || left || right), and the root
of the empty tree is SHA-256(""). A node is addressed by ``(level, index)``: it is the root of the
perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaves.

Proof *generation* takes a ``hash_at(level, index)`` callback that returns a stored perfect-subtree
hash, so a log with millions of leaves answers a proof with O(log² n) small reads and never rehashes
its leaves. Proof *verification* follows RFC 9162 §2.1.3.2 and §2.1.4.2 literally, with the edge-case
rules of transparency-dev/merkle (whose test vectors the tests run): hashes must be 32 bytes, and a
consistency proof from the empty tree is rejected as meaningless.

Hash calls go through the module-level ``leaf_hash`` / ``node_hash`` so that tests can count them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

HashAt = Callable[[int, int], bytes]
"""``hash_at(level, index)``: the stored hash of a perfect subtree (see module docstring)."""
NodeCallback = Callable[[int, int, bytes], None]
"""Called as ``on_node(level, index, hash)`` for every perfect subtree a Frontier completes."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """Merkle tree hash of a sequence of leaf hashes (streamed; O(log n) memory)."""
    frontier = Frontier()
    frontier.extend(leaf_hashes)
    return frontier.root()


class Frontier:
    """Compact range over leaves ``[0, size)``: the roots of the perfect subtrees in the binary
    decomposition of ``size``, largest (leftmost) first. That is all the state needed to append
    leaves and to compute the root, so an append of b leaves costs O(b + log n) hashes amortised,
    and streaming verification holds O(log n) hashes however long the log is.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes, got {len(hashes)}")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("frontier hashes must be 32 bytes")
        self._size = size
        self._stack = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._stack)

    def copy(self) -> Frontier:
        return Frontier(self._size, self._stack)

    def append(self, leaf: bytes, on_node: NodeCallback | None = None) -> None:
        """Append one leaf *hash* (not leaf data)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hashes must be 32 bytes")
        stack, index, h, level = self._stack, self._size, bytes(leaf), 0
        if on_node is not None:
            on_node(0, index, h)
        # Each trailing 1 bit of the old size is a perfect subtree of the same height as the one
        # being carried: merge them, exactly like binary addition.
        while (index >> level) & 1:
            h = node_hash(stack.pop(), h)
            level += 1
            if on_node is not None:
                on_node(level, index >> level, h)
        stack.append(h)
        self._size = index + 1

    def extend(self, leaves: Iterable[bytes], on_node: NodeCallback | None = None) -> None:
        for leaf in leaves:
            self.append(leaf, on_node)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        # Fold right to left: the rightmost (smallest) subtree is the deepest right child.
        acc = self._stack[-1]
        for h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc

    def to_bytes(self) -> bytes:
        """8-byte big-endian size followed by the subtree hashes, largest first."""
        return self._size.to_bytes(8, "big") + b"".join(self._stack)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError("malformed frontier encoding")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        return cls(size, [body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    def to_json(self) -> dict:
        return {"size": self._size, "hashes": [h.hex() for h in self._stack]}

    @classmethod
    def from_json(cls, obj: dict) -> Frontier:
        return cls(int(obj["size"]), [bytes.fromhex(h) for h in obj["hashes"]])

    @classmethod
    def from_hash_at(cls, size: int, hash_at: HashAt) -> Frontier:
        """Rebuild the frontier of a stored tree from its perfect-subtree hashes (O(log n) reads)."""
        hashes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(hash_at(level, start >> level))
                start += 1 << level
        return cls(size, hashes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frontier) and (self._size, self._stack) == (other._size, other._stack)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def _largest_power_of_two_below(n: int) -> int:
    """k = the largest power of two strictly less than n (n >= 2), the RFC 9162 split point."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(start: int, end: int, hash_at: HashAt) -> bytes:
    """MTH(D[start:end]) for a node of the RFC 9162 tree, from stored perfect-subtree hashes.

    Nodes on the right edge of a tree are not perfect; they are the right fold of the perfect
    subtrees of their binary decomposition, which is what this computes.
    """
    if not 0 <= start < end:
        raise ValueError(f"bad range [{start}, {end})")
    parts = []
    while start < end:
        # Largest aligned perfect subtree starting at `start` that fits before `end`.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        parts.append(hash_at(level, start >> level))
        start += 1 << level
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_proof(index: int, size: int, hash_at: HashAt) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return [subtree_hash(a, b, hash_at) for a, b in reversed(ranges)]


def consistency_proof(m: int, n: int, hash_at: HashAt) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[0:n]). Empty when m == n; m == 0 has no meaningful proof."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    ranges = []
    lo, hi, whole = 0, n, True  # `whole`: the old tree is exactly the current node, on its left edge
    while True:
        if m == hi:
            if not whole:
                ranges.append((lo, hi))
            break
        k = _largest_power_of_two_below(hi - lo)
        if m <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    return [subtree_hash(a, b, hash_at) for a, b in reversed(ranges)]


def _all_hashes(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes | bytearray | memoryview) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree ``root``?"""
    proof = list(proof or ())
    if not (0 <= index < size) or not _all_hashes(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return False  # proof longer than the path to the root
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node is the last, childless right edge.
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show that tree (n, root_n) extends tree (m, root_m)?"""
    proof = list(proof or ())
    if m <= 0 or n < m:
        # m == 0: every tree extends the empty tree, so a "proof" proves nothing; callers skip it.
        return False
    if m == n:
        return not proof and root_m == root_n
    if not proof or not _all_hashes(root_m, root_n, *proof):
        return False
    if m & (m - 1) == 0:
        # The old tree is a perfect left subtree of the new one: its root is the proof's start.
        proof = [bytes(root_m), *proof]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n
