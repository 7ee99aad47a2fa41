"""cosignature/v1 (c2sp.org/tlog-cosignature): keys, signing, verification and what must be rejected."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from pipelines.tlog import checkpoint, cosignature, merkle, note
from pipelines.tlog.checkpoint import Checkpoint, sign_checkpoint
from pipelines.tlog.cosignature import BadCosignature, Cosigner

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).parent / "vectors"
ORIGIN = "sensorlog.test/log"


def load(rel: str) -> dict:
    return json.loads((VECTORS / rel).read_text())


@pytest.fixture
def log_signer() -> note.Signer:
    return note.Signer.from_skey(note.generate_key(ORIGIN)[0])


@pytest.fixture
def signed(log_signer: note.Signer) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, 7, merkle.leaf_hash(b"root")), log_signer)


def text_of(signed_note: str) -> str:
    return note.parse_note(signed_note)[0]


def blob_of(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])


def with_blob(line: str, blob: bytes) -> str:
    return line.rsplit(" ", 1)[0] + " " + base64.b64encode(blob).decode() + "\n"


# -- published vectors -------------------------------------------------------------------------


def test_reproduces_the_generated_cosignature_vector() -> None:
    v = load("generated/rfc6962-testtree-checkpoints.json")
    w, cosig = v["keys"]["witness"], v["cosignature_v1"]
    cosigner = Cosigner(w["name"], bytes.fromhex(w["ed25519_seed_hex"]))
    assert cosigner.vkey() == w["vkey"]
    assert f"{cosigner.key_id:08x}" == w["key_id_hex"]
    text = v["checkpoint_size8"]["text"]
    assert cosignature.signed_message(text, cosig["timestamp"]).decode() == cosig["signed_message"]
    # Ed25519 is deterministic: the same key, time and checkpoint give the published line byte for byte.
    assert cosignature.cosign(text, cosigner, cosig["timestamp"]) == cosig["signature_line"]
    found = cosignature.verify_cosignatures(cosig["checkpoint_with_cosignature"], [w["vkey"]])
    assert [(c.name, c.key_id, c.timestamp) for c in found] == [(w["name"], int(w["key_id_hex"], 16), 1700000000)]
    # The log's own signature still opens the checkpoint; the cosignature is an unknown key to it.
    assert checkpoint.open_checkpoint(cosig["checkpoint_with_cosignature"], v["keys"]["log"]["vkey"]).size == 8


def test_upstream_vkeys_and_signature_layout() -> None:
    formats = load("signed-note/upstream-vectors.json")["transparency_dev_formats_vkeys"]
    verifier = cosignature.cosigner_verifier(formats["valid_cosignature_v1_vkey"])
    assert (verifier.name, verifier.alg) == ("remora.n621.de", 0x04)
    with pytest.raises(note.MalformedKey, match="not a cosignature/v1 key"):
        cosignature.cosigner_verifier(formats["valid_ed25519_note_vkey"])
    blob = base64.b64decode(formats["cosignature_v1_signature_base64"])
    assert len(blob) == 4 + 8 + 64
    assert struct.unpack(">Q", blob[4:12])[0] == formats["cosignature_v1_expected_timestamp"]
    example = load("signed-note/upstream-vectors.json")["c2sp_cosignature_example_line"]["line"]
    _, [sig] = note.parse_note("x\n\n" + example + "\n")
    assert (sig.name, f"{sig.key_id:08x}", struct.unpack(">Q", sig.signature[:8])[0]) == (
        "witness.example.com/w1", "8d66cf3f", 1679315147)


# -- keys --------------------------------------------------------------------------------------


def test_key_text_forms_use_the_cosignature_type_byte() -> None:
    skey, vkey = cosignature.generate_key("witness.test/w1")
    assert skey.startswith("PRIVATE+KEY+witness.test/w1+")
    assert base64.b64decode(skey.split("+", 4)[4])[0] == 0x04  # base64 may hold "+": split from the left
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    cosigner = Cosigner.from_skey(skey)
    assert cosigner.vkey() == vkey and cosigner.skey() == skey
    # key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4], not the 0x01 note key ID of the same key
    assert cosigner.key_id == note.key_id("witness.test/w1", 0x04, cosigner.public_key)
    assert cosigner.key_id != note.key_id("witness.test/w1", 0x01, cosigner.public_key)
    assert vkey.split("+")[1] == f"{cosigner.key_id:08x}"


def test_key_forms_that_are_refused(log_signer: note.Signer) -> None:
    with pytest.raises(note.MalformedKey, match="not a cosignature/v1 signer key"):
        Cosigner.from_skey(log_signer.skey())  # an ordinary 0x01 note key
    skey, _ = cosignature.generate_key("witness.test/w1")
    parts = skey.split("+")
    parts[3] = "00000000"
    with pytest.raises(note.MalformedKey, match="does not match"):
        Cosigner.from_skey("+".join(parts))
    with pytest.raises(note.MalformedKey):
        cosignature.generate_key("has space")
    with pytest.raises(note.MalformedKey):
        cosignature.verify_cosignatures(sign_checkpoint(Checkpoint(ORIGIN, 1, merkle.leaf_hash(b"")), log_signer),
                                        [log_signer.vkey()])


# -- sign and verify ---------------------------------------------------------------------------


def test_round_trip(signed: str) -> None:
    w1, w2 = Cosigner.generate("witness.test/w1"), Cosigner.generate("witness.test/w2")
    text = text_of(signed)
    line1, line2 = w1.cosign(text, 1_800_000_000), w2.cosign(text)
    assert line1.startswith("\u2014 witness.test/w1 ") and line1.endswith("\n")
    blob = blob_of(line1)
    assert len(blob) == 4 + 8 + 64 and struct.unpack(">IQ", blob[:12]) == (w1.key_id, 1_800_000_000)
    note_text = signed + line1 + line2
    found = cosignature.verify_cosignatures(note_text, [w1.vkey(), w2.vkey()])
    assert [(c.name, c.key_id) for c in found] == [(w1.name, w1.key_id), (w2.name, w2.key_id)]
    assert found[0].timestamp == 1_800_000_000 and found[1].timestamp > 0
    assert found[0].vkey == w1.vkey() and found[0].key == f"witness.test/w1+{w1.key_id:08x}"
    # Only the keys asked about are reported; the log's line and other witnesses' are ignored.
    assert [c.name for c in cosignature.verify_cosignatures(note_text, [w2.vkey()])] == ["witness.test/w2"]
    assert cosignature.verify_cosignatures(signed, [w1.vkey()]) == []


def test_the_signed_message_has_header_time_and_checkpoint_lines(signed: str) -> None:
    text = text_of(signed)
    message = cosignature.signed_message(text, 1679315147)
    assert message == b"cosignature/v1\ntime 1679315147\n" + text.encode()
    w = Cosigner.generate("witness.test/w1")
    line = w.cosign(text, 1679315147)
    w.verifier()._key.verify(blob_of(line)[12:], message)  # raises if the message differs


def test_a_signature_by_another_key_is_ignored_or_rejected(signed: str) -> None:
    text = text_of(signed)
    w1, impostor = Cosigner.generate("witness.test/w1"), Cosigner.generate("witness.test/w1")
    # Same name, different key: a different key ID, so an unknown key, ignored.
    assert cosignature.verify_cosignatures(signed + impostor.cosign(text), [w1.vkey()]) == []
    # The impostor's signature under w1's name and key ID: a known key whose signature fails.
    forged = with_blob(impostor.cosign(text), struct.pack(">I", w1.key_id) + blob_of(impostor.cosign(text))[4:])
    with pytest.raises(BadCosignature, match=f"witness.test/w1\\+{w1.key_id:08x}") as err:
        cosignature.verify_cosignatures(signed + forged, [w1.vkey()])
    assert err.value.bad == [f"witness.test/w1+{w1.key_id:08x}"]


def test_an_altered_checkpoint_is_rejected(signed: str, log_signer: note.Signer) -> None:
    w = Cosigner.generate("witness.test/w1")
    line = w.cosign(text_of(signed))
    other = sign_checkpoint(Checkpoint(ORIGIN, 7, merkle.leaf_hash(b"another root")), log_signer)
    with pytest.raises(BadCosignature):
        cosignature.verify_cosignatures(other + line, [w.vkey()])
    bigger = sign_checkpoint(Checkpoint(ORIGIN, 8, merkle.leaf_hash(b"root")), log_signer)
    with pytest.raises(BadCosignature):
        cosignature.verify_cosignatures(bigger + line, [w.vkey()])
    extended = sign_checkpoint(Checkpoint(ORIGIN, 7, merkle.leaf_hash(b"root"), ("ext",)), log_signer)
    with pytest.raises(BadCosignature):  # extension lines are part of the signed message
        cosignature.verify_cosignatures(extended + line, [w.vkey()])


def test_an_altered_timestamp_is_rejected(signed: str) -> None:
    w = Cosigner.generate("witness.test/w1")
    line = w.cosign(text_of(signed), 1_800_000_000)
    blob = bytearray(blob_of(line))
    blob[4:12] = struct.pack(">Q", 1_800_000_001)
    with pytest.raises(BadCosignature):
        cosignature.verify_cosignatures(signed + with_blob(line, bytes(blob)), [w.vkey()])
    with pytest.raises(BadCosignature):  # truncated: no room for a timestamp and a signature
        cosignature.verify_cosignatures(signed + with_blob(line, bytes(blob[:40])), [w.vkey()])


def test_a_timestamp_beyond_2_63_is_rejected_even_if_signed(signed: str) -> None:
    w = Cosigner.generate("witness.test/w1")
    text = text_of(signed)
    too_late = 1 << 63
    sig = w._key.sign(b"cosignature/v1\ntime %d\n" % too_late + text.encode())
    line = with_blob(w.cosign(text), struct.pack(">IQ", w.key_id, too_late) + sig)
    with pytest.raises(BadCosignature):
        cosignature.verify_cosignatures(signed + line, [w.vkey()])
    with pytest.raises(ValueError):
        w.cosign(text, too_late)


def test_only_checkpoints_with_a_timestamp_are_cosigned(signed: str) -> None:
    w = Cosigner.generate("witness.test/w1")
    with pytest.raises(checkpoint.CheckpointError):
        w.cosign("not a checkpoint\n")
    with pytest.raises(ValueError, match="timestamp"):
        w.cosign(text_of(signed), 0)


def test_several_lines_by_one_key_count_once_with_the_latest_time(signed: str) -> None:
    w = Cosigner.generate("witness.test/w1")
    text = text_of(signed)
    found = cosignature.verify_cosignatures(signed + w.cosign(text, 100) + w.cosign(text, 300) + w.cosign(text, 200),
                                            [w.vkey()])
    assert [(c.name, c.timestamp) for c in found] == [("witness.test/w1", 300)]


def test_verify_response(signed: str) -> None:
    text = text_of(signed)
    w, other = Cosigner.generate("witness.test/w1"), Cosigner.generate("witness.test/w2")
    assert cosignature.verify_response(text, other.cosign(text) + w.cosign(text, 42), w.vkey()).timestamp == 42
    with pytest.raises(note.UnverifiedNote, match="no cosignature by witness.test/w1"):
        cosignature.verify_response(text, other.cosign(text), w.vkey())
    with pytest.raises(note.MalformedNote):
        cosignature.verify_response(text, "not a signature line\n", w.vkey())
