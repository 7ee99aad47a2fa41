"""C2SP tlog proofs (c2sp.org/tlog-proof@v1): an offline-verifiable inclusion proof file.

Layout, one item per line::

    c2sp.org/tlog-proof@v1
    extra <base64>            (optional, unauthenticated application data)
    index <decimal>
    <base64 hash>             (zero or more: the RFC 6962 inclusion path, leaf sibling first)
    <empty line>
    <signed checkpoint, verbatim>

The leaf hash is deliberately absent: the verifier recomputes it from the data it cares about.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.tlog import merkle, note
from pipelines.tlog.checkpoint import Checkpoint, open_checkpoint

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


class ProofError(ValueError):
    pass


@dataclass(frozen=True)
class TlogProof:
    index: int
    path: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note, verbatim
    extra: bytes | None = None

    def to_text(self) -> str:
        return format_proof(self.index, self.path, self.checkpoint, self.extra)


def format_proof(index: int, path: Sequence[bytes], checkpoint: str, extra: bytes | None = None) -> str:
    if index < 0:
        raise ProofError("index must be >= 0")
    if any(len(h) != merkle.HASH_SIZE for h in path):
        raise ProofError("inclusion proof hashes must be 32 bytes")
    if not checkpoint.endswith("\n"):
        raise ProofError("the signed checkpoint must end with a newline")
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode() for h in path)
    return "\n".join(lines) + "\n\n" + checkpoint


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ProofError(f"{what} is not base64") from exc


def parse(text: str) -> TlogProof:
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise ProofError("tlog proof has no checkpoint after an empty line")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise ProofError(f"tlog proof must start with {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest.pop(0)[len("extra "):], "extra data")
    if not rest:
        raise ProofError("tlog proof has no index line")
    match = _INDEX.fullmatch(rest.pop(0))
    if match is None:
        raise ProofError("tlog proof index line must be 'index <decimal without leading zeroes>'")
    path = tuple(_b64(line, "proof hash") for line in rest)
    if any(len(h) != merkle.HASH_SIZE for h in path):
        raise ProofError("inclusion proof hashes must be 32 bytes")
    return TlogProof(int(match.group(1)), path, checkpoint, extra)


def verify(
    proof: TlogProof | str,
    leaf_hash: bytes,
    vkey: str | note.Verifier | Sequence[str | note.Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check the checkpoint signature and that ``leaf_hash`` is at ``proof.index``; return the checkpoint."""
    if isinstance(proof, str):
        proof = parse(proof)
    checkpoint = open_checkpoint(proof.checkpoint, vkey, origin=origin)
    if not merkle.verify_inclusion(leaf_hash, proof.index, checkpoint.size, proof.path, checkpoint.root_hash):
        raise ProofError(f"leaf is not at index {proof.index} of the checkpointed tree (size {checkpoint.size})")
    return checkpoint
