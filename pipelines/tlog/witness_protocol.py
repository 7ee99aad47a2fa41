"""The wire format of c2sp.org/tlog-witness ``add-checkpoint``, shared by the witness and its clients.

Request body (``POST <submission prefix>/add-checkpoint``), every line ending in a newline::

    old <previous size, decimal, no leading zeroes>
    <zero to 63 consistency proof hashes, one base64 hash per line>
    <empty line>
    <the signed checkpoint note>

Responses: 200 with one or more cosignature lines (``— <name> <base64>``); 409 Conflict with the
witness's recorded size and a newline, content type ``text/x.tlog.size``; 400, 403, 404 or 422 for
the refusals the spec names.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.tlog.merkle import HASH_SIZE

PATH = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class ProtocolError(ValueError):
    """The bytes are not a well-formed add-checkpoint request (or size response)."""


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint_note: str  # the signed checkpoint, as sent


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ProtocolError(f"{what} {text[:30]!r} is not a decimal without leading zeroes")
    return int(text)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint_note: str) -> bytes:
    """The request body for ``add-checkpoint``."""
    if old_size < 0:
        raise ValueError("old size must be >= 0")
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes, got {len(proof)}")
    if old_size == 0 and proof:
        raise ValueError("a request with old size 0 carries no consistency proof")
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + checkpoint_note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; raises ProtocolError with a message saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("the request body is not UTF-8") from exc
    head, sep, checkpoint_note = text.partition("\n\n")
    if not sep:
        raise ProtocolError("the request body has no empty line between the old size and proof and the checkpoint")
    lines = (head + "\n").split("\n")[:-1]
    first = lines[0]
    if not first.startswith("old "):
        raise ProtocolError(f"the request body must start with 'old <size>', got {first[:40]!r}")
    old_size = _decimal(first[4:], "old size")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise ProtocolError(f"the consistency proof has {len(proof_lines)} lines; at most {MAX_PROOF_LINES}")
    proof = []
    for i, line in enumerate(proof_lines, 1):
        try:
            h = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ProtocolError(f"consistency proof line {i} is not base64") from exc
        if len(h) != HASH_SIZE or base64.b64encode(h).decode() != line:
            raise ProtocolError(f"consistency proof line {i} is not one base64 SHA-256 hash")
        proof.append(h)
    if not checkpoint_note:
        raise ProtocolError("the request body has no checkpoint after the empty line")
    return AddCheckpoint(old_size, tuple(proof), checkpoint_note)


def format_size(size: int) -> bytes:
    """A ``text/x.tlog.size`` body."""
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    """Parse a ``text/x.tlog.size`` body (a decimal and a newline)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError("the size response is not ASCII") from exc
    if not text.endswith("\n"):
        raise ProtocolError(f"the size response {text[:30]!r} does not end with a newline")
    return _decimal(text[:-1], "size")
