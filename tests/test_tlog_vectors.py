"""Published test vectors (copied into tests/vectors/, see its README) against the tlog modules."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from pipelines.tlog import checkpoint, merkle, note, proof, tiles

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).parent / "vectors"
TESTDATA = VECTORS / "transparency-dev-merkle" / "testdata"


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def load(rel: str) -> dict:
    return json.loads((VECTORS / rel).read_text())


def _cases(kind: str) -> list[Path]:
    return sorted((TESTDATA / kind).rglob("*.json"))


# -- transparency-dev/merkle proof verification ------------------------------------------------


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: str(p.relative_to(TESTDATA)))
def test_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    ok = merkle.verify_inclusion(
        b64(case["leafHash"]), case["leafIdx"], case["treeSize"], [b64(p) for p in case["proof"] or []],
        b64(case["root"]),
    )
    assert ok is not case["wantErr"], case["desc"]


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: str(p.relative_to(TESTDATA)))
def test_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    ok = merkle.verify_consistency(
        case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]),
        [b64(p) for p in case["proof"] or []],
    )
    assert ok is not case["wantErr"], case["desc"]


def test_vector_counts() -> None:
    # Guards against a silently empty parametrisation (e.g. a bad copy of the vectors).
    assert len(_cases("inclusion")) + len(_cases("consistency")) == 196


def test_happy_path_proofs_are_the_ones_we_generate() -> None:
    """Every wantErr=false vector over the 8-leaf tree is reproduced by our proof generators."""
    tree = load("transparency-dev-merkle/rfc6962-8leaf-tree.json")
    levels = [[bytes.fromhex(h) for h in level] for level in tree["node_hashes_hex_by_level"]]
    roots = {size: bytes.fromhex(h) for size, h in enumerate(tree["root_hashes_hex_by_tree_size"])}

    def hash_at(level: int, index: int) -> bytes:
        return levels[level][index]

    checked = 0
    for path in _cases("inclusion"):
        case = json.loads(path.read_text())
        if case["wantErr"] or b64(case["root"]) != roots.get(case["treeSize"]):
            continue
        assert merkle.inclusion_proof(case["leafIdx"], case["treeSize"], hash_at) == [
            b64(p) for p in case["proof"] or []
        ]
        checked += 1
    for path in _cases("consistency"):
        case = json.loads(path.read_text())
        if case["wantErr"] or case["size1"] == 0 or b64(case["root2"]) != roots.get(case["size2"]):
            continue
        assert merkle.consistency_proof(case["size1"], case["size2"], hash_at) == [
            b64(p) for p in case["proof"] or []
        ]
        checked += 1
    assert checked >= 8


# -- the RFC 6962 8-leaf test tree -------------------------------------------------------------


def test_rfc6962_test_tree_hashes_roots_and_every_proof() -> None:
    tree = load("transparency-dev-merkle/rfc6962-8leaf-tree.json")
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in tree["leaf_inputs_hex"]]
    levels = tree["node_hashes_hex_by_level"]
    assert [h.hex() for h in leaves] == levels[0]
    for size, want in enumerate(tree["root_hashes_hex_by_tree_size"]):
        assert merkle.root_of(leaves[:size]).hex() == want

    def hash_at(level: int, index: int) -> bytes:
        return bytes.fromhex(levels[level][index])

    roots = [bytes.fromhex(h) for h in tree["root_hashes_hex_by_tree_size"]]
    for n in range(1, 9):
        assert merkle.subtree_hash(0, n, hash_at) == roots[n]
        for i in range(n):
            assert merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(i, n, hash_at), roots[n])
        for m in range(1, n + 1):
            assert merkle.verify_consistency(m, n, roots[m], roots[n], merkle.consistency_proof(m, n, hash_at))


def test_rfc6962_checkpoints_and_proofs() -> None:
    v = load("generated/rfc6962-testtree-checkpoints.json")
    log = v["keys"]["log"]
    signer = note.Signer(log["name"], bytes.fromhex(log["ed25519_seed_hex"]))
    assert signer.vkey() == log["vkey"]
    assert signer.public_key.hex() == log["public_key_hex"] and f"{signer.key_id:08x}" == log["key_id_hex"]
    leaves = [bytes.fromhex(h) for h in v["leaf_hashes_hex"]]
    for name in ("checkpoint_size5", "checkpoint_size8"):
        cp = checkpoint.open_checkpoint(v[name]["signed_note"], log["vkey"])
        assert cp.root_hash == merkle.root_of(leaves[: cp.size])
        assert cp.to_text() == v[name]["text"]
        # Ed25519 is deterministic: we produce the same signed note byte for byte.
        assert checkpoint.sign_checkpoint(cp, signer) == v[name]["signed_note"]
    inc = v["inclusion"]
    assert merkle.verify_inclusion(
        bytes.fromhex(inc["leaf_hash_hex"]), inc["leaf_index"], inc["tree_size"],
        [bytes.fromhex(h) for h in inc["proof_hex"]], bytes.fromhex(inc["root_hex"]),
    )
    con = v["consistency"]
    assert merkle.verify_consistency(
        con["size1"], con["size2"], bytes.fromhex(con["root1_hex"]), bytes.fromhex(con["root2_hex"]),
        [bytes.fromhex(h) for h in con["proof_hex"]],
    )


def test_witness_cosignature_v1() -> None:
    v = load("generated/rfc6962-testtree-checkpoints.json")
    cosig = v["cosignature_v1"]
    text, sigs = note.open(cosig["checkpoint_with_cosignature"], [v["keys"]["witness"]["vkey"]])
    assert text == v["checkpoint_size8"]["text"]
    assert [s.timestamp for s in sigs] == [cosig["timestamp"]]
    # With only the log key, the witness line is an unknown signature and is ignored.
    cp = checkpoint.open_checkpoint(cosig["checkpoint_with_cosignature"], v["keys"]["log"]["vkey"])
    assert cp.size == 8


# -- signed notes ------------------------------------------------------------------------------


def test_c2sp_signed_note_example() -> None:
    c = load("signed-note/upstream-vectors.json")["c2sp_signed_note_example"]
    text, sigs = note.open(c["signed_note"], [c["vkey"]])
    assert text == "This is an example message.\n"
    assert [s.name for s in sigs] == ["example.com/foo"]


def test_go_note_keys_sign_and_open() -> None:
    g = load("signed-note/upstream-vectors.json")["go_sumdb_note"]
    signer = note.Signer.from_skey(g["peter_skey"])
    assert signer.vkey() == g["peter_vkey"]
    assert signer.skey() == g["peter_skey"]
    assert note.sign(g["text"], signer) == g["signed_by_peter"]
    both = g["signed_by_peter"] + g["enoch_signature_line"]
    text, sigs = note.open(both, [g["peter_vkey"], g["enoch_vkey"]])
    assert text == g["text"]
    assert {s.name for s in sigs} == {"PeterNeumann", "EnochRoot"}
    # One known key is enough; the other signature is ignored.
    assert [s.name for s in note.open(both, [g["enoch_vkey"]])[1]] == ["EnochRoot"]


def test_bad_verifier_keys_are_rejected() -> None:
    v = load("signed-note/upstream-vectors.json")
    bad = v["go_sumdb_note"]["bad_vkeys_must_reject"] + v["transparency_dev_formats_vkeys"]["invalid_vkeys"]
    for vkey in bad:
        with pytest.raises(note.MalformedKey):
            note.Verifier.from_vkey(vkey)
    good = v["transparency_dev_formats_vkeys"]
    assert note.Verifier.from_vkey(good["valid_ed25519_note_vkey"]).alg == note.ALG_ED25519
    assert note.Verifier.from_vkey(good["valid_cosignature_v1_vkey"]).alg == note.ALG_COSIGNATURE_V1


def test_cosignature_layouts_decode() -> None:
    v = load("signed-note/upstream-vectors.json")
    blob = b64(v["transparency_dev_formats_vkeys"]["cosignature_v1_signature_base64"])
    assert len(blob) == 76
    assert int.from_bytes(blob[4:12], "big") == v["transparency_dev_formats_vkeys"]["cosignature_v1_expected_timestamp"]
    line = v["c2sp_cosignature_example_line"]["line"]
    sig = note._parse_signature(line)
    assert f"{sig.key_id:08x}" == "8d66cf3f" and int.from_bytes(sig.signature[:8], "big") == 1679315147


def test_open_rejects_unknown_keys_bad_signatures_and_malformed_notes() -> None:
    g = load("signed-note/upstream-vectors.json")["go_sumdb_note"]
    with pytest.raises(note.UnverifiedNote, match="not signed by any known key"):
        note.open(g["signed_by_peter"], [g["enoch_vkey"]])
    tampered = g["signed_by_peter"].replace("cryptography", "Cryptography")
    with pytest.raises(note.BadSignature):
        note.open(tampered, [g["peter_vkey"]])
    for malformed in [
        "no signature block\n",
        g["text"] + "\n",
        g["text"] + "\n- PeterNeumann AAAA\n",
        g["signed_by_peter"].rstrip("\n"),
        g["signed_by_peter"].replace("\n\n", "\n\x01\n"),
        g["text"] + "\n\u2014 PeterNeumann not*base64\n",
    ]:
        with pytest.raises(note.MalformedNote):
            note.open(malformed, [g["peter_vkey"]])


# -- tiles and tlog-proof ----------------------------------------------------------------------


def test_tiled_log_300_is_reproduced(tmp_path: Path) -> None:
    meta = load("generated/tiled-log-300.json")
    ref = VECTORS / "generated" / "tiled-log-300"
    seeds = load("generated/rfc6962-testtree-checkpoints.json")["keys"]["log"]
    signer = note.Signer(seeds["name"], bytes.fromhex(seeds["ed25519_seed_hex"]))
    leaves = [merkle.leaf_hash(b"sensor-event-%04d" % i) for i in range(meta["size"])]
    store = tiles.TileStore(tmp_path)
    for start, end in [(0, 1), (1, 255), (255, 257), (257, 300)]:
        assert store.append(leaves[start:end]) == start
    assert store.root().hex() == meta["root_hex"]
    for rel, size in meta["files"].items():
        if rel.startswith("tile/entries"):
            continue
        assert (tmp_path / rel).read_bytes() == (ref / rel).read_bytes(), rel
        assert len((ref / rel).read_bytes()) == size
    cp = checkpoint.Checkpoint(meta["origin"], store.size, store.root())
    assert checkpoint.sign_checkpoint(cp, signer) == (ref / "checkpoint").read_text()
    assert checkpoint.open_checkpoint((ref / "checkpoint").read_text(), meta["vkey"]) == cp
    reopened = tiles.TileStore(tmp_path)
    inc = meta["inclusion_example"]
    assert [h.hex() for h in reopened.inclusion_proof(inc["leaf_index"])] == inc["proof_hex"]
    con = meta["consistency_example"]
    assert reopened.root(con["size1"]).hex() == con["root1_hex"]
    assert [h.hex() for h in reopened.consistency_proof(con["size1"])] == con["proof_hex"]


def test_tiled_log_300_reference_tiles_serve_proofs(tmp_path: Path) -> None:
    """Our reader works on tiles written by someone else (plus our state file)."""
    ref = VECTORS / "generated" / "tiled-log-300"
    meta = load("generated/tiled-log-300.json")
    for rel in ("tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((ref / rel).read_bytes())
    (tmp_path / tiles.STATE_FILE).write_text(json.dumps({"size": 300, "root": meta["root_hex"]}))
    store = tiles.TileStore(tmp_path)
    leaf = merkle.leaf_hash(b"sensor-event-0257")
    assert merkle.verify_inclusion(leaf, 257, 300, store.inclusion_proof(257), bytes.fromhex(meta["root_hex"]))
    assert store.root(300) == bytes.fromhex(meta["root_hex"])


def test_tile_paths() -> None:
    assert tiles.tile_path(0, 0) == "tile/0/000"
    assert tiles.tile_path(1, 0, 1) == "tile/1/000.p/1"
    assert tiles.tile_path(2, 1234067) == "tile/2/x001/x234/067"
    assert tiles.tile_path(0, 1000, 44) == "tile/0/x001/000.p/44"


def test_tlog_proof_file() -> None:
    text = (VECTORS / "generated" / "rfc6962-testtree-leaf3.tlog-proof").read_text()
    v = load("generated/rfc6962-testtree-checkpoints.json")
    assert text == v["tlog_proof"]
    parsed = proof.parse(text)
    assert parsed.index == 3 and parsed.extra is None
    assert [h.hex() for h in parsed.path] == v["inclusion"]["proof_hex"]
    assert parsed.checkpoint == v["cosignature_v1"]["checkpoint_with_cosignature"]
    assert parsed.to_text() == text
    leaf = bytes.fromhex(v["inclusion"]["leaf_hash_hex"])
    cp = proof.verify(parsed, leaf, v["keys"]["log"]["vkey"])
    assert cp.size == 8
    with pytest.raises(proof.ProofError):
        proof.verify(text, hashlib.sha256(b"other").digest(), v["keys"]["log"]["vkey"])


def test_tlog_proof_with_extra_data_round_trips() -> None:
    v = load("generated/rfc6962-testtree-checkpoints.json")
    parsed = proof.parse(v["tlog_proof"])
    with_extra = proof.TlogProof(parsed.index, parsed.path, parsed.checkpoint, b"batch 42")
    again = proof.parse(with_extra.to_text())
    assert again == with_extra
    for broken in [
        v["tlog_proof"].replace("index 3", "index 03"),
        v["tlog_proof"].replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        v["tlog_proof"].split("\n\n")[0],
    ]:
        with pytest.raises(proof.ProofError):
            proof.parse(broken)
