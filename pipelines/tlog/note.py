"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys in the Go ``sumdb/note`` text formats.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> base64(4-byte key ID || signature)``. Keys travel as strings:

* verifier key (public):  ``<name>+<hex key ID>+base64(0x01 || 32-byte Ed25519 public key)``
* signer key (secret):    ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte Ed25519 seed)``

with key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]. Verifiers also accept type 0x04
keys (tlog-cosignature ``cosignature/v1``) so that witness cosignatures on a checkpoint can be checked.

Opening a note follows the spec's rules: signatures from unknown keys are ignored, a signature
from a known key that fails to verify rejects the whole note, and a note with no verified signature
from a known key is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
SIG_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # the spec requires accepting at least 16; bound the work an input can cause


class NoteError(ValueError):
    """Base class: the note (or key) cannot be trusted."""


class MalformedNote(NoteError):
    pass


class MalformedKey(NoteError):
    pass


class UnverifiedNote(NoteError):
    """No signature from a known key: per the spec the text must be ignored."""


class BadSignature(NoteError):
    """A known key's signature does not verify: the whole note is rejected."""


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    signature: bytes  # the bytes after the 4-byte key ID
    timestamp: int | None = None  # cosignature/v1 only: POSIX seconds

    def line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || alg || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return struct.unpack(">I", digest[:4])[0]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedKey(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")
    if any(ord(c) < 0x20 for c in name):
        raise MalformedKey(f"invalid key name {name!r}: control characters")


def _b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise error(f"{what} is not valid base64") from exc


class Signer:
    """An Ed25519 note signer (type 0x01)."""

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise MalformedKey("an Ed25519 seed is 32 bytes")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes_raw()
        self.key_id = key_id(name, ALG_ED25519, self.public_key)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)  # base64 may itself contain '+'
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise MalformedKey("signer key must look like PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        _, _, name, hex_id, b64 = parts
        raw = _b64decode(b64, "signer key", MalformedKey)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedKey("only Ed25519 signer keys (0x01 || 32-byte seed) are supported")
        signer = cls(name, raw[1:])
        if hex_id != f"{signer.key_id:08x}":
            raise MalformedKey(f"signer key ID {hex_id} does not match its key ({signer.key_id:08x})")
        return signer

    def skey(self) -> str:
        seed = self._key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{base64.b64encode(bytes([ALG_ED25519]) + seed).decode()}"

    def vkey(self) -> str:
        return format_vkey(self.name, ALG_ED25519, self.public_key)

    def verifier(self) -> Verifier:
        return Verifier(self.name, ALG_ED25519, self.public_key)

    def sign(self, message: bytes) -> Signature:
        return Signature(self.name, self.key_id, self._key.sign(message))


class Verifier:
    """A verifier for Ed25519 note signatures (0x01) or cosignature/v1 lines (0x04)."""

    def __init__(self, name: str, alg: int, public_key: bytes) -> None:
        _check_name(name)
        if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise MalformedKey(f"unsupported signature type 0x{alg:02x}")
        if len(public_key) != 32:
            raise MalformedKey("an Ed25519 public key is 32 bytes")
        self.name, self.alg, self.public_key = name, alg, bytes(public_key)
        self.key_id = key_id(name, alg, self.public_key)
        try:
            self._key = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as exc:
            raise MalformedKey("invalid Ed25519 public key") from exc

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise MalformedKey("verifier key must look like <name>+<hex id>+<base64 key>")
        name, hex_id, b64 = parts
        if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
            raise MalformedKey(f"verifier key ID {hex_id!r} is not 8 lowercase hex digits")
        raw = _b64decode(b64, "verifier key", MalformedKey)
        if len(raw) < 1:
            raise MalformedKey("verifier key has no key material")
        verifier = cls(name, raw[0], raw[1:])
        if int(hex_id, 16) != verifier.key_id:
            raise MalformedKey(f"verifier key ID {hex_id} does not match its key ({verifier.key_id:08x})")
        return verifier

    def vkey(self) -> str:
        return format_vkey(self.name, self.alg, self.public_key)

    def verify(self, text: bytes, sig: Signature) -> Signature | None:
        """The signature (with its timestamp, for cosignatures) if it verifies over ``text``."""
        blob, timestamp = sig.signature, None
        if self.alg == ALG_COSIGNATURE_V1:
            if len(blob) != 8 + 64:
                return None
            timestamp = struct.unpack(">Q", blob[:8])[0]
            if timestamp >= 1 << 63:
                return None
            blob = blob[8:]
            text = b"cosignature/v1\ntime %d\n" % timestamp + text
        try:
            self._key.verify(blob, text)
        except InvalidSignature:
            return None
        return Signature(sig.name, sig.key_id, sig.signature, timestamp)


def format_vkey(name: str, alg: int, public_key: bytes) -> str:
    return f"{name}+{key_id(name, alg, public_key):08x}+{base64.b64encode(bytes([alg]) + public_key).decode()}"


def generate_key(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key: ``(signer key, verifier key)`` strings."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    signer = Signer(name, seed)
    return signer.skey(), signer.vkey()


def _check_text(text: str, what: str) -> bytes:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedNote(f"{what} is not valid UTF-8") from exc
    if any(b < 0x20 and b != 0x0A for b in data):
        raise MalformedNote(f"{what} contains control characters other than newline")
    return data


def sign(text: str, *signers: Signer) -> str:
    """Sign ``text`` (which must end in a newline) with one or more signers; return the note."""
    if not signers:
        raise ValueError("sign needs at least one signer")
    data = _check_text(text, "note text")
    if not text.endswith("\n"):
        raise MalformedNote("note text must end with a newline")
    return text + "\n" + "".join(s.sign(data).line() for s in signers)


def _parse_signature(line: str) -> Signature:
    if not line.startswith(SIG_PREFIX):
        raise MalformedNote(f"signature line does not start with an em dash: {line[:40]!r}")
    name, sep, b64 = line[len(SIG_PREFIX):].partition(" ")
    if not sep or not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedNote(f"malformed signature line: {line[:60]!r}")
    blob = _b64decode(b64, "signature", MalformedNote)
    if len(blob) < 5:
        raise MalformedNote(f"signature by {name} is too short")
    return Signature(name, struct.unpack(">I", blob[:4])[0], blob[4:])


def as_verifier(v: Verifier | Signer | str) -> Verifier:
    """A Verifier from a Verifier, a Signer (its public half) or a vkey string."""
    if isinstance(v, Verifier):
        return v
    if isinstance(v, Signer):
        return v.verifier()
    return Verifier.from_vkey(v)


def parse_note(note: str | bytes) -> tuple[str, list[Signature]]:
    """Split a signed note into its text (final newline included) and its signature lines, in order.

    Nothing is verified: the text must not be trusted until ``open`` has checked a signature.
    Raises MalformedNote.
    """
    if isinstance(note, bytes | bytearray):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote("note is not valid UTF-8") from exc
    _check_text(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("note has no blank line before its signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block or not block.endswith("\n"):
        raise MalformedNote("note has no signature lines, or they do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"note has more than {MAX_SIGNATURES} signatures")
    return text, [_parse_signature(line) for line in lines]


def open(note: str | bytes, verifiers: Iterable[Verifier | Signer | str]) -> tuple[str, list[Signature]]:
    """Verify a signed note; return ``(text, verified signatures)``.

    ``verifiers`` are Verifier objects or vkey strings. Raises MalformedNote, BadSignature (a known
    key's signature is wrong) or UnverifiedNote (no signature by any known key).
    """
    text, signatures = parse_note(note)
    known = {(v.name, v.key_id): v for v in map(as_verifier, verifiers)}
    data = text.encode("utf-8")
    verified: list[Signature] = []
    seen_unknown: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            seen_unknown.append(f"{sig.name}+{sig.key_id:08x}")
            continue
        good = verifier.verify(data, sig)
        if good is None:
            raise BadSignature(f"invalid signature by known key {sig.name}+{sig.key_id:08x}")
        if good not in verified:
            verified.append(good)
    if not verified:
        wanted = ", ".join(f"{n}+{k:08x}" for n, k in known) or "none"
        raise UnverifiedNote(
            f"note is not signed by any known key (signed by: {', '.join(seen_unknown)}; known: {wanted})"
        )
    return text, verified
