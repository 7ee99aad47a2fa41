"""``sensorlog prove``: the printed inclusion proof verifies with a short, independent checker.

The checker below is written from RFC 9162 (§2.1.1 tree hash, §2.1.3 inclusion) and the C2SP
signed-note / tlog-checkpoint / tlog-proof texts, with hashlib and cryptography only: it never
calls the project's tlog code, so a bug shared by the prover and the project's verifier cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from test_verify import City, change_records, pick, published_city
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.log.prove import ProveError, split_event
from pipelines.tlog import merkle

pytestmark = pytest.mark.integration

runner = CliRunner()


# -- the independent checker ---------------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf_hash: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 read backwards: PATH(m, D[n]) is PATH(m, D[0:k]) + [MTH(D[k:n])] when m < k,
    else PATH(m - k, D[k:n]) + [MTH(D[0:k])], k the largest power of two below n."""
    if size == 1:
        assert not path, "proof too long"
        return leaf_hash
    assert path, "proof too short"
    k = 1 << ((size - 1).bit_length() - 1)
    if index < k:
        return _node(root_from_path(leaf_hash, index, k, path[:-1]), path[-1])
    return _node(path[-1], root_from_path(leaf_hash, index - k, size - k, path[:-1]))


def open_note(note_text: str, vkey: str) -> str:
    """C2SP signed-note: the text, if an Ed25519 signature by ``vkey`` over it verifies."""
    name, key_id, key = vkey.strip().split("+", 2)
    raw = base64.b64decode(key)
    assert raw[0] == 0x01 and len(raw) == 33
    expected_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert expected_id.hex() == key_id
    text, _, signatures = note_text.rpartition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        signer, _, blob = line.removeprefix("\u2014 ").partition(" ")
        sig = base64.b64decode(blob)
        if signer == name and sig[:4] == expected_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], text.encode())
            return text
    raise AssertionError("no signature by the log key")


def check_proof(leaf_bytes: bytes, proof_text: str, vkey: str) -> tuple[int, int]:
    """Verify a tlog-proof for ``leaf_bytes`` with ``vkey``; return (index, tree size)."""
    head, _, checkpoint_note = proof_text.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    if lines[1].startswith("extra "):
        lines.pop(1)
    assert lines[1].startswith("index ")
    index = int(lines[1].removeprefix("index "))
    path = [base64.b64decode(h) for h in lines[2:]]
    origin, size, root = open_note(checkpoint_note, vkey).splitlines()[:3]
    assert origin == vkey.split("+")[0]
    leaf_hash = hashlib.sha256(b"\x00" + leaf_bytes).digest()
    assert root_from_path(leaf_hash, index, int(size), path) == base64.b64decode(root), "root does not match"
    return index, int(size)


def parse_output(text: str) -> tuple[bytes, str]:
    """``prove --event`` output: the leaf bytes line and the tlog-proof (from its header to the end)."""
    leaf_line = next(line for line in text.splitlines() if line and not line.startswith("#"))
    return leaf_line.encode(), text[text.index("c2sp.org/tlog-proof@v1\n"):]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return published_city(tmp_path_factory)


def env(home: Path) -> dict[str, str]:
    return {"SENSORLOG_HOME": str(home)}


def some_row(home: Path, table: str) -> dict:
    out = pick(home, table, 1)
    return pq.read_table(home / "published" / out.rel).slice(0, 1).to_pylist()[0]


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["collection", "access", "deletion", "lifecycle"])
def test_printed_proof_verifies_independently(city: City, table: str, tmp_path: Path) -> None:
    row = some_row(city.home, table)
    result = runner.invoke(
        app,
        ["prove", "--event", f"{row['source']}/{row['event_id']}", "--proof-file", str(tmp_path / "p.tlog-proof"),
         "--leaf-file", str(tmp_path / "leaf.json")],
        env=env(city.home),
    )
    assert result.exit_code == 0, result.output
    leaf_bytes, proof_text = parse_output(result.output)
    vkey = (city.home / "log" / "log.vkey").read_text()
    index, size = check_proof(leaf_bytes, proof_text, vkey)
    # The proof is about this event, at its published position, in the latest signed tree.
    leaf = json.loads(leaf_bytes)
    assert (leaf["source"], leaf["event_id"], leaf["table"]) == (row["source"], row["event_id"], table)
    assert index == row["leaf_index"]
    assert hashlib.sha256(b"\x00" + leaf_bytes).hexdigest() == row["leaf_hash"]
    assert size == int((city.home / "log" / "checkpoint").read_text().splitlines()[1])
    # The extra line carries the same leaf bytes, and the files hold the two parts verbatim.
    extra = next(line for line in proof_text.splitlines() if line.startswith("extra "))
    assert base64.b64decode(extra.removeprefix("extra ")) == leaf_bytes
    assert (tmp_path / "p.tlog-proof").read_text() == proof_text
    assert (tmp_path / "leaf.json").read_bytes() == leaf_bytes


def test_independent_checker_rejects_bad_proofs(city: City) -> None:
    """The checker is not vacuous: a changed leaf, path hash or signing key each fail it."""
    row = some_row(city.home, "collection")
    result = runner.invoke(app, ["prove", "--event", f"{row['source']}/{row['event_id']}"], env=env(city.home))
    leaf_bytes, proof_text = parse_output(result.output)
    vkey = (city.home / "log" / "log.vkey").read_text()
    with pytest.raises(AssertionError, match="root does not match"):
        check_proof(leaf_bytes.replace(b'"records":', b'"records":1'), proof_text, vkey)
    lines = proof_text.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("index ")) + 1
    lines[at] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(AssertionError, match="root does not match"):
        check_proof(leaf_bytes, "\n".join(lines), vkey)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    name = vkey.split("+")[0]
    other_id = hashlib.sha256(name.encode() + b"\n\x01" + other).digest()[:4].hex()
    other_key = base64.b64encode(b"\x01" + other).decode()
    other_vkey = f"{name}+{other_id}+{other_key}"
    with pytest.raises(AssertionError, match="no signature"):
        check_proof(leaf_bytes, proof_text, other_vkey)
    size = proof_text.split("\n\n")[1].splitlines()[1]
    forged = proof_text.replace(f"\n{size}\n", "\n999999\n")  # claim a bigger tree
    assert forged != proof_text
    with pytest.raises((InvalidSignature, AssertionError)):
        check_proof(leaf_bytes, forged, vkey)


def test_source_and_id_options_and_index_give_the_same_proof(city: City) -> None:
    row = some_row(city.home, "access")
    by_event = runner.invoke(app, ["prove", "--event", f"{row['source']}/{row['event_id']}"], env=env(city.home))
    by_parts = runner.invoke(app, ["prove", "--source", row["source"], "--id", row["event_id"]], env=env(city.home))
    by_index = runner.invoke(app, ["prove", "--index", str(row["leaf_index"])], env=env(city.home))
    assert by_event.exit_code == by_parts.exit_code == by_index.exit_code == 0
    assert by_event.output == by_parts.output == by_index.output


def test_split_event_on_the_last_slash() -> None:
    assert split_event("https://vendor.example/a/b/ev-1") == ("https://vendor.example/a/b", "ev-1")
    for bad in ("no-slash", "/id-only", "source/"):
        with pytest.raises(ProveError):
            split_event(bad)


def test_usage_and_unknown_event(city: City) -> None:
    assert runner.invoke(app, ["prove"], env=env(city.home)).exit_code == 2
    assert runner.invoke(app, ["prove", "--source", "x"], env=env(city.home)).exit_code == 2
    unknown = runner.invoke(app, ["prove", "--event", "https://nobody.example/feed/nothing"], env=env(city.home))
    assert unknown.exit_code == 1 and "no published row" in unknown.output
    manifest = json.loads(next((city.home / "manifests").glob("*.json")).read_text())
    leaf = manifest["leaves"]["manifest_leaf"]
    proof = city.home.parent / f"manifest-{leaf}.tlog-proof"
    result = runner.invoke(app, ["prove", "--index", str(leaf), "--proof-file", str(proof)], env=env(city.home))
    assert result.exit_code == 0 and "# table       manifest" in result.output  # provable like a row
    checked = runner.invoke(app, ["check-proof", str(proof), "--vkey", str(city.home / "log" / "log.vkey")])
    assert checked.exit_code == 0 and "manifest of batch" in checked.output, checked.output


def test_prove_refuses_a_row_that_differs_from_the_log(city: City, tmp_path: Path) -> None:
    home = Path(shutil.copytree(city.home, tmp_path / "home"))
    out = pick(home)
    change_records(home, out, 0, fix_leaf_hash=True)
    row = pq.read_table(home / "published" / out.rel).slice(0, 1).to_pylist()[0]
    result = runner.invoke(app, ["prove", "--event", f"{row['source']}/{row['event_id']}"], env=env(home))
    assert result.exit_code == 1 and "the log recorded" in result.output


def test_consistency_proof_between_signed_sizes(city: City) -> None:
    old = (city.old / "log" / "checkpoint").read_text().splitlines()
    new = (city.home / "log" / "checkpoint").read_text().splitlines()
    m, n = int(old[1]), int(new[1])
    b64 = runner.invoke(app, ["prove", "--consistency", str(m), str(n)], env=env(city.home))
    hexed = runner.invoke(app, ["prove", "--consistency", str(m), str(n), "--hex"], env=env(city.home))
    assert b64.exit_code == hexed.exit_code == 0, b64.output
    proof = [base64.b64decode(line) for line in b64.output.splitlines() if not line.startswith("#")]
    assert proof == [bytes.fromhex(line) for line in hexed.output.splitlines() if not line.startswith("#")]
    assert "signed checkpoint" in b64.output
    # Checked against the two roots the log signed (the old one from the auditor's own copy).
    assert merkle.verify_consistency(m, n, base64.b64decode(old[2]), base64.b64decode(new[2]), proof)
    bad = runner.invoke(app, ["prove", "--consistency", str(n), str(m)], env=env(city.home))
    assert bad.exit_code == 1


def test_consistency_between_unsigned_sizes_says_so(city: City) -> None:
    result = runner.invoke(app, ["prove", "--consistency", "3", "5"], env=env(city.home))
    assert result.exit_code == 0
    assert "tile store, no checkpoint at this size" in result.output
    assert [line for line in result.output.splitlines() if not line.startswith("#")]
