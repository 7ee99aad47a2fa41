"""Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``, signature type 0x04).

A cosignature is a signed-note signature line on a checkpoint::

    — <cosigner name> base64(4-byte key ID || 8-byte big-endian timestamp || 64-byte Ed25519 signature)

with key ID = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4], the timestamp in POSIX seconds
(at most 2^63 - 1), and the Ed25519 signature over the message::

    cosignature/v1\\n
    time <timestamp in decimal>\\n
    <the checkpoint's note text: origin, size, root hash and any extension lines, final newline included>

Keys travel in the signed-note text forms, with the cosignature type byte:

* verifier key (public):  ``<name>+<hex key ID>+base64(0x04 || 32-byte Ed25519 public key)``
* signer key (secret):    ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 || 32-byte Ed25519 seed)``

A v1 cosignature states that, at that time, the checkpoint is the largest consistent tree head the
cosigner has seen for that origin. Checking a quorum of them is ``verify_cosignatures``: lines by keys
it was not given are ignored (signed-note), and a line that claims to be by a given key but does not
verify is reported by raising ``BadCosignature`` (the signed-note rule: reject the whole note).
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipelines.tlog import checkpoint, note

ALG = note.ALG_COSIGNATURE_V1
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = (1 << 63) - 1


class BadCosignature(note.BadSignature):
    """A signature line by a known cosigner key does not verify over the checkpoint."""

    def __init__(self, message: str, bad: Sequence[str], verified: Sequence[Cosigned]) -> None:
        super().__init__(message)
        self.bad = list(bad)  # "<name>+<hex key ID>" of each failing line
        self.verified = list(verified)  # the cosignatures that did verify


@dataclass(frozen=True)
class Cosigned:
    """A verified cosignature: who (key name and ID, and the vkey it was checked with) and when."""

    name: str
    key_id: int
    timestamp: int  # POSIX seconds
    vkey: str

    @property
    def key(self) -> str:
        return f"{self.name}+{self.key_id:08x}"


def signed_message(checkpoint_text: str | bytes, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header line, time line, then the checkpoint's note text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} is outside [0, 2^63 - 1]")
    text = checkpoint_text.encode("utf-8") if isinstance(checkpoint_text, str) else bytes(checkpoint_text)
    return HEADER + b"time %d\n" % timestamp + text


class Cosigner:
    """An Ed25519 cosigner key (signature type 0x04)."""

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != 32:
            raise note.MalformedKey("an Ed25519 seed is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes_raw()
        self._verifier = note.Verifier(name, ALG, public)  # checks the name
        self.name = name
        self.public_key = public
        self.key_id = self._verifier.key_id

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_skey(cls, skey: str) -> Cosigner:
        parts = skey.strip().split("+", 4)  # base64 may itself contain '+'
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise note.MalformedKey("cosigner key must look like PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        _, _, name, hex_id, b64 = parts
        try:
            raw = base64.b64decode(b64.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as exc:
            raise note.MalformedKey("cosigner key is not valid base64") from exc
        if len(raw) != 33 or raw[0] != ALG:
            raise note.MalformedKey(
                "not a cosignature/v1 signer key: expected base64(0x04 || 32-byte Ed25519 seed)"
            )
        cosigner = cls(name, raw[1:])
        if hex_id != f"{cosigner.key_id:08x}":
            raise note.MalformedKey(f"cosigner key ID {hex_id} does not match its key ({cosigner.key_id:08x})")
        return cosigner

    def skey(self) -> str:
        seed = self._key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{base64.b64encode(bytes([ALG]) + seed).decode()}"

    def vkey(self) -> str:
        return self._verifier.vkey()

    def verifier(self) -> note.Verifier:
        return self._verifier

    def signature(self, checkpoint_text: str, timestamp: int | None = None) -> note.Signature:
        """The cosignature over ``checkpoint_text`` (a checkpoint's note text, not a signed note)."""
        checkpoint.parse(checkpoint_text)  # only checkpoints are cosigned: refuse anything else
        when = int(time.time()) if timestamp is None else timestamp
        if when <= 0:
            raise ValueError("a witness cosignature must carry a timestamp (> 0)")
        blob = struct.pack(">Q", when) + self._key.sign(signed_message(checkpoint_text, when))
        return note.Signature(self.name, self.key_id, blob, when)

    def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> str:
        """The cosignature line (``— <name> <base64>\\n``); ``timestamp`` defaults to now."""
        return self.signature(checkpoint_text, timestamp).line()


def generate_key(name: str) -> tuple[str, str]:
    """A fresh cosigner key: ``(signer key, verifier key)`` strings with the 0x04 type byte."""
    cosigner = Cosigner.generate(name)
    return cosigner.skey(), cosigner.vkey()


def cosign(checkpoint_text: str, cosigner: Cosigner, timestamp: int | None = None) -> str:
    """Cosign a checkpoint (its note text): the cosignature line, ending in a newline."""
    return cosigner.cosign(checkpoint_text, timestamp)


def cosigner_verifier(vkey: str | note.Verifier) -> note.Verifier:
    """A verifier for a cosigner vkey; refuses keys of any other signature type."""
    verifier = note.as_verifier(vkey)
    if verifier.alg != ALG:
        raise note.MalformedKey(
            f"{verifier.name}+{verifier.key_id:08x} is not a cosignature/v1 key (type 0x{verifier.alg:02x},"
            " expected 0x04)"
        )
    return verifier


def verify_cosignatures(checkpoint_note: str | bytes, witness_vkeys: Sequence[str | note.Verifier]) -> list[Cosigned]:
    """The valid cosignatures on a signed checkpoint by the given witness keys, one per key, in key order.

    Only signatures are checked here: open the checkpoint with the log's key (``open_checkpoint``) to
    trust its contents. Lines by other keys (the log's own, unknown witnesses) are ignored. A line by
    one of the given keys that does not verify raises ``BadCosignature`` naming it. When a key has
    several valid lines the latest timestamp is reported. Raises ``note.MalformedNote`` for a note
    that cannot be parsed and ``note.MalformedKey`` for a vkey that is not a cosignature key.
    """
    text, signatures = note.parse_note(checkpoint_note)
    verifiers = [cosigner_verifier(v) for v in witness_vkeys]
    known = {(v.name, v.key_id): v for v in verifiers}
    data = text.encode("utf-8")
    best: dict[tuple[str, int], Cosigned] = {}
    bad: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        good = verifier.verify(data, sig)
        if good is None or good.timestamp is None:
            bad.append(f"{sig.name}+{sig.key_id:08x}")
            continue
        found = Cosigned(sig.name, sig.key_id, good.timestamp, verifier.vkey())
        previous = best.get((sig.name, sig.key_id))
        if previous is None or found.timestamp > previous.timestamp:
            best[(sig.name, sig.key_id)] = found
    verified = [best[(v.name, v.key_id)] for v in verifiers if (v.name, v.key_id) in best]
    if bad:
        raise BadCosignature(
            f"invalid cosignature by known witness key {', '.join(bad)}: the checkpoint or the line was altered",
            bad, verified,
        )
    return verified


def verify_response(checkpoint_text: str, lines: str, witness_vkey: str | note.Verifier) -> Cosigned:
    """Check a witness's add-checkpoint response (signature lines) against the checkpoint it was given.

    Returns the witness's cosignature; raises ``note.NoteError`` when the response holds no valid
    cosignature by ``witness_vkey`` or one of its lines by that key is invalid.
    """
    found = verify_cosignatures(checkpoint_text + "\n" + lines, [witness_vkey])
    if not found:
        verifier = cosigner_verifier(witness_vkey)
        raise note.UnverifiedNote(f"the response holds no cosignature by {verifier.name}+{verifier.key_id:08x}")
    return found[0]
