"""C2SP tlog-tiles entry bundles: the log's entries served next to its hash tiles.

``tile/entries/<N>[.p/<W>]`` holds the entries ``[256 N, 256 N + W)``, each written as a big-endian
uint16 length followed by the entry's bytes. Entry ``i`` hashes (RFC 9162, SHA-256 of 0x00 || entry)
to hash ``i`` of the level-0 tile, so a client that fetches both can check one against the other.
Our entries are the leaf bytes of ``tlog.leaf`` (RFC 8785 JSON of a published row or a manifest).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.tlog.layout import TILE_WIDTH
from pipelines.tlog.layout import bundle_path as bundle_path  # re-exported: its old home
from pipelines.tlog.leaf import MAX_ENTRY_BYTES

MAX_ENTRY = MAX_ENTRY_BYTES  # the uint16 length prefix


class BundleError(ValueError):
    pass


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise BundleError(f"a bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise BundleError(f"an entry of {len(entry)} bytes does not fit a uint16 length prefix")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle; with ``width``, exactly that many (a full bundle may stand in for a
    partial one: only its first ``width`` entries are returned)."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data) and (width is None or len(entries) < width):
        if pos + 2 > len(data):
            raise BundleError(f"truncated length prefix at byte {pos}")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise BundleError(f"entry {len(entries)} at byte {pos} claims {n} bytes; only {len(data) - pos - 2} remain")
        entries.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    if width is not None and len(entries) != width:
        raise BundleError(f"holds {len(entries)} entries, expected {width}")
    if width is None and len(entries) > TILE_WIDTH:
        raise BundleError(f"holds {len(entries)} entries, more than {TILE_WIDTH}")
    return entries
