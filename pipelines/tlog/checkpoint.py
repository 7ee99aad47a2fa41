"""C2SP checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head as a signed note.

Note text: origin line, decimal tree size (no leading zeroes), base64 RFC 6962 root hash, then
optional non-empty extension lines; every line ends with a newline. Parsing is strict so that one
tree head has exactly one text, and so one signature.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.tlog import note
from pipelines.tlog.merkle import HASH_SIZE

_SIZE = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise CheckpointError("checkpoint size must be >= 0")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("checkpoint root hash must be 32 bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("checkpoint extension lines must be non-empty single lines")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse(text: str) -> Checkpoint:
    """Parse checkpoint note *text* (not the signed note: see ``open_checkpoint``)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint text needs origin, size and root hash lines")
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"checkpoint size {size!r} is not a decimal without leading zeroes")
    try:
        root_hash = base64.b64decode(root.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError("checkpoint root hash is not base64") from exc
    checkpoint = Checkpoint(origin, int(size), root_hash, tuple(extensions))
    if checkpoint.to_text() != text:
        # e.g. non-canonical base64 padding bits: refuse a second spelling of the same tree head
        raise CheckpointError("checkpoint text is not in canonical form")
    return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, signer: note.Signer, *cosigners: note.Signer) -> str:
    """The signed note for ``checkpoint``. The log's key name should equal the origin."""
    return note.sign(checkpoint.to_text(), signer, *cosigners)


def open_checkpoint(
    note_text: str | bytes,
    vkey: str | note.Verifier | Sequence[str | note.Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint with the log's verifier key and parse it.

    The origin must equal ``origin``, or by default the log key's name (the spec's SHOULD, which
    this project's logs follow), so a checkpoint from another log signed by the same key is refused.
    Extra verifiers (e.g. witnesses) may be passed; the first one is the log key.
    """
    verifiers: list[str | note.Verifier] = [vkey] if isinstance(vkey, str | note.Verifier) else list(vkey)
    if not verifiers:
        raise ValueError("open_checkpoint needs the log's verifier key")
    log_key = note.as_verifier(verifiers[0])
    text, signatures = note.open(note_text, [log_key, *verifiers[1:]])
    if not any((s.name, s.key_id) == (log_key.name, log_key.key_id) for s in signatures):
        raise note.UnverifiedNote(f"checkpoint is not signed by the log key {log_key.name}")
    checkpoint = parse(text)
    expected = log_key.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}")
    return checkpoint

