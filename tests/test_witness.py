"""The witness (c2sp.org/tlog-witness add-checkpoint), its HTTP server, the operator's client, collecting
cosignatures onto log/checkpoint, the CLI, and two witnesses run as real processes against a real log."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DEPLOYMENT, make_event, ndjson
from typer.testing import CliRunner

from pipelines import publish
from pipelines.cli import app
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest.stage import stage_file
from pipelines.log import verify, witness, witnessing, writer
from pipelines.log.witness_client import WitnessRefused, WitnessUnavailable, request_cosignature
from pipelines.tlog import checkpoint, cosignature, merkle, note
from pipelines.tlog import proof as tlog_proof
from pipelines.tlog.checkpoint import Checkpoint, sign_checkpoint
from pipelines.tlog.tiles import TileStore
from pipelines.tlog.witness_protocol import SIZE_CONTENT_TYPE, format_add_checkpoint

pytestmark = pytest.mark.integration

W1 = "witness.test/w1"


def hashes(n: int, salt: str) -> list[bytes]:
    return [merkle.leaf_hash(f"{salt}-{i}".encode()) for i in range(n)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"),
                              "SENSORLOG_WITNESSES": str(tmp_path / "witnesses.txt")})


@pytest.fixture
def log(settings: Settings) -> writer.Log:
    return writer.open_log(settings)


@pytest.fixture
def w(tmp_path: Path, log: writer.Log) -> witness.Witness:
    created = witness.init_witness(tmp_path / "w1", W1)
    witness.add_log(tmp_path / "w1", log.vkey)
    return created


def grow(log: writer.Log, n: int, salt: str) -> str:
    """Append n leaves; the new signed checkpoint note."""
    log.append(salt, log.size, hashes(n, salt))
    return writer.signed_checkpoint(log.settings)


def body(settings: Settings, old: int, signed: str) -> bytes:
    size = checkpoint.parse(note.parse_note(signed)[0]).size
    proof = writer.consistency_proof(settings, old, size) if 0 < old < size else []
    return format_add_checkpoint(old, proof, signed)


def forged(settings: Settings, size: int, root: bytes) -> str:
    """A checkpoint really signed by the log's key, for a tree the log never had."""
    signer = note.Signer.from_skey(Path(settings.key_file).read_text())
    return sign_checkpoint(Checkpoint(settings.log_origin, size, root), signer)


def text_of(signed: str) -> str:
    return note.parse_note(signed)[0]


# -- the witness state machine -----------------------------------------------------------------


def test_init_creates_a_private_cosigner_key_and_refuses_to_replace_it(tmp_path: Path) -> None:
    created = witness.init_witness(tmp_path / "w", W1)
    key = tmp_path / "w" / witness.KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cosignature.Cosigner.from_skey(key.read_text()).vkey() == created.vkey
    assert (tmp_path / "w" / witness.VKEY).read_text().strip() == created.vkey
    assert cosignature.cosigner_verifier(created.vkey).alg == 0x04
    with pytest.raises(witness.WitnessError, match="already"):
        witness.init_witness(tmp_path / "w", W1)
    assert witness.Witness(tmp_path / "w").vkey == created.vkey
    with pytest.raises(witness.WitnessError, match="witness init"):
        witness.Witness(tmp_path / "nowhere")


def test_first_checkpoint_with_old_size_zero_is_cosigned_and_recorded(settings, log, w) -> None:
    signed = grow(log, 5, "a")
    line = w.add_checkpoint(body(settings, 0, signed), timestamp=1_800_000_000)
    [cosig] = cosignature.verify_cosignatures(signed + line, [w.vkey])
    assert (cosig.name, cosig.timestamp) == (W1, 1_800_000_000)
    state = w.state(settings.log_origin)
    assert (state.size, state.root_hash, state.timestamp) == (5, log.checkpoint().root_hash, 1_800_000_000)
    # The recorded checkpoint carries the log's signature and the cosignature, and both verify.
    assert checkpoint.open_checkpoint(state.checkpoint, log.vkey).size == 5
    assert len(cosignature.verify_cosignatures(state.checkpoint, [w.vkey])) == 1


def test_the_state_is_recorded_before_the_cosignature_is_returned(settings, log, w, monkeypatch) -> None:
    def disk_full(path: Path, data: bytes, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(witness, "write_atomic", disk_full)
    with pytest.raises(OSError, match="No space"):  # no cosignature without the state on disk
        w.add_checkpoint(body(settings, 0, grow(log, 5, "a")))
    monkeypatch.undo()
    assert w.state(settings.log_origin) is None
    w.add_checkpoint(body(settings, 0, writer.signed_checkpoint(settings)))
    assert w.state(settings.log_origin).size == 5


def test_growth_needs_a_valid_consistency_proof(settings, log, w) -> None:
    w.add_checkpoint(body(settings, 0, grow(log, 5, "a")))
    signed = grow(log, 7, "b")
    good = body(settings, 5, signed)
    proof = writer.consistency_proof(settings, 5, 12)
    bad = format_add_checkpoint(5, [proof[0], merkle.leaf_hash(b"tampered"), *proof[2:]], signed)
    with pytest.raises(witness.Inconsistent, match="does not show that size 12") as err:
        w.add_checkpoint(bad)
    assert err.value.status == 422
    assert w.state(settings.log_origin).size == 5
    assert list((w.directory / witness.EVIDENCE).rglob("*.txt")), "a validly signed inconsistent checkpoint is kept"
    with pytest.raises(witness.Inconsistent):
        w.add_checkpoint(format_add_checkpoint(5, [], signed))  # no proof at all
    line = w.add_checkpoint(good)
    assert cosignature.verify_cosignatures(signed + line, [w.vkey])
    assert w.state(settings.log_origin).size == 12


def test_old_size_zero_carries_no_proof(settings, log, w) -> None:
    signed = grow(log, 5, "a")
    request = format_add_checkpoint(1, [merkle.leaf_hash(b"x")], signed).replace(b"old 1\n", b"old 0\n", 1)
    with pytest.raises(witness.Inconsistent, match="no consistency proof"):
        w.add_checkpoint(request)
    assert w.state(settings.log_origin) is None


def test_a_wrong_old_size_is_a_conflict_carrying_the_recorded_size(settings, log, w) -> None:
    with pytest.raises(witness.Conflict) as err:  # never cosigned: the recorded size is 0
        w.add_checkpoint(body(settings, 3, grow(log, 5, "a")))
    assert (err.value.status, err.value.recorded_size) == (409, 0)
    w.add_checkpoint(body(settings, 0, writer.signed_checkpoint(settings)))
    with pytest.raises(witness.Conflict) as err:
        w.add_checkpoint(body(settings, 0, grow(log, 2, "b")))
    assert err.value.recorded_size == 5 and "retry from 5" in err.value.message


def test_rollback_is_refused(settings, log, w) -> None:
    small = grow(log, 5, "a")
    big = grow(log, 3, "b")
    w.add_checkpoint(body(settings, 0, big))
    with pytest.raises(witness.BadRequest, match="rollback") as err:
        w.add_checkpoint(format_add_checkpoint(8, [], small))  # old size 8 > checkpoint size 5
    assert err.value.status == 400
    with pytest.raises(witness.Conflict, match="rollback") as conflict:
        w.add_checkpoint(format_add_checkpoint(5, [], small))
    assert conflict.value.recorded_size == 8
    assert w.state(settings.log_origin).size == 8


def test_a_fork_is_refused_and_the_state_unchanged(settings, log, w) -> None:
    signed = grow(log, 5, "a")
    w.add_checkpoint(body(settings, 0, signed))
    before = (w.directory / witness.STATE).joinpath(f"{witness.origin_hash(settings.log_origin)}.json").read_bytes()
    fork = forged(settings, 5, merkle.leaf_hash(b"another tree"))
    with pytest.raises(witness.Inconsistent, match="fork") as err:
        w.add_checkpoint(format_add_checkpoint(5, [], fork))
    assert err.value.status == 422
    after = (w.directory / witness.STATE).joinpath(f"{witness.origin_hash(settings.log_origin)}.json").read_bytes()
    assert after == before
    # Re-submitting the same checkpoint is fine (same size, same root): a fresh cosignature.
    assert w.add_checkpoint(format_add_checkpoint(5, [], signed)).startswith("\u2014 " + W1)


def test_unknown_logs_and_bad_signatures_are_refused(settings, log, w, tmp_path) -> None:
    signed = grow(log, 5, "a")
    stranger = note.Signer.from_skey(note.generate_key("other.test/log")[0])
    other = sign_checkpoint(Checkpoint("other.test/log", 1, merkle.leaf_hash(b"x")), stranger)
    with pytest.raises(witness.UnknownLog, match="other.test/log") as err:
        w.add_checkpoint(format_add_checkpoint(0, [], other))
    assert err.value.status == 404
    # Right origin, but signed by a key the witness was not given for it.
    impostor = note.Signer.from_skey(note.generate_key(settings.log_origin)[0])
    fake = sign_checkpoint(checkpoint.parse(text_of(signed)), impostor)
    with pytest.raises(witness.Forbidden, match="not signed by a key") as err:
        w.add_checkpoint(format_add_checkpoint(0, [], fake))
    assert err.value.status == 403
    # The log's key name and ID, but a signature that does not verify.
    line = signed.rstrip("\n").rsplit("\n", 1)[1]
    broken = signed.replace(line, line[:-8] + ("AAAAAAA=" if not line.endswith("AAAAAAA=") else "BBBBBBB="))
    with pytest.raises(witness.Forbidden, match="invalid signature"):
        w.add_checkpoint(format_add_checkpoint(0, [], broken))
    assert w.state(settings.log_origin) is None


@pytest.mark.parametrize("request_body, message", [
    (b"", "empty line"),
    (b"old 01\n\nx\n", "leading zeroes"),
    (b"new 0\n\nx\n", "must start with 'old"),
    (b"old 0\nnot base64!\n\nx\n", "not base64"),
    (b"old 0\n" + b"AAAA\n" + b"\nx\n", "not one base64 SHA-256"),
    (b"old 0\n" + b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n" * 64 + b"\nx\n", "at most 63"),
    (b"old 0\n\nnot a note\n", "malformed"),
    (b"\xff\xfe", "UTF-8"),
])
def test_malformed_requests_are_bad_requests(w, request_body: bytes, message: str) -> None:
    with pytest.raises(witness.BadRequest, match=message) as err:
        w.add_checkpoint(request_body)
    assert err.value.status == 400


def test_an_empty_tree_must_have_the_empty_root(settings, log, w) -> None:
    with pytest.raises(witness.Inconsistent, match="empty tree"):
        w.add_checkpoint(format_add_checkpoint(0, [], forged(settings, 0, merkle.leaf_hash(b"not empty"))))
    assert w.add_checkpoint(format_add_checkpoint(0, [], forged(settings, 0, merkle.EMPTY_ROOT)))
    assert w.state(settings.log_origin).size == 0


def test_concurrent_requests_from_the_same_old_size_cosign_only_one(settings, log, w) -> None:
    w.add_checkpoint(body(settings, 0, grow(log, 4, "a")))
    requests = []
    for n, salt in ((3, "b"), (5, "c")):
        requests.append(body(settings, 4, grow(log, n, salt)))
    barrier = threading.Barrier(len(requests))
    outcomes: list[str] = []

    def submit(request: bytes) -> None:
        barrier.wait()
        try:
            w.add_checkpoint(request)
            outcomes.append("cosigned")
        except witness.Conflict as exc:
            outcomes.append(f"conflict {exc.recorded_size}")

    threads = [threading.Thread(target=submit, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whichever came first is cosigned; the other's old size (4) is no longer the recorded size.
    size = w.state(settings.log_origin).size
    assert size in (7, 12)
    assert sorted(outcomes) == [f"conflict {size}", "cosigned"]


# -- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def server(w: witness.Witness) -> Iterator[witness.WitnessServer]:
    srv = witness.make_server(w, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def post(url: str, data: bytes, path: str = "/add-checkpoint") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url + path, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def test_http_status_codes_and_bodies(settings, log, w, server) -> None:
    signed = grow(log, 5, "a")
    status, _, data = post(server.url, body(settings, 0, signed))
    assert status == 200 and data.decode().startswith("\u2014 " + W1) and data.endswith(b"\n")
    assert cosignature.verify_cosignatures(signed + data.decode(), [w.vkey])
    status, content_type, data = post(server.url, body(settings, 0, grow(log, 2, "b")))
    assert (status, content_type, data) == (409, SIZE_CONTENT_TYPE, b"5\n")
    stranger = note.Signer.from_skey(note.generate_key("other.test/log")[0])
    other = sign_checkpoint(Checkpoint("other.test/log", 1, merkle.leaf_hash(b"x")), stranger)
    assert post(server.url, format_add_checkpoint(0, [], other))[0] == 404
    impostor = note.Signer.from_skey(note.generate_key(settings.log_origin)[0])
    status, _, data = post(server.url, format_add_checkpoint(5, [], sign_checkpoint(log.checkpoint(), impostor)))
    assert status == 403 and b"not signed by a key" in data
    assert post(server.url, format_add_checkpoint(5, [], forged(settings, 5, merkle.leaf_hash(b"f"))))[0] == 422
    assert post(server.url, b"garbage")[0] == 400
    assert post(server.url, b"x", path="/elsewhere")[0] == 404


def test_http_monitoring_endpoint_serves_the_cosigned_checkpoint(settings, log, w, server) -> None:
    url = f"{server.url}/{witness.origin_hash(settings.log_origin)}/checkpoint"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=30)
    assert err.value.code == 404
    err.value.close()
    post(server.url, body(settings, 0, grow(log, 5, "a")))
    with urllib.request.urlopen(url, timeout=30) as response:
        served = response.read().decode()
    assert checkpoint.open_checkpoint(served, log.vkey).size == 5
    assert [c.name for c in cosignature.verify_cosignatures(served, [w.vkey])] == [W1]


# -- the client --------------------------------------------------------------------------------


def test_client_retries_once_on_conflict_with_the_reported_size(settings, log, w, server) -> None:
    w.add_checkpoint(body(settings, 0, grow(log, 5, "a")))
    signed = grow(log, 7, "b")
    asked: list[tuple[int, int]] = []

    def proof(m: int, n: int) -> list[bytes]:
        asked.append((m, n))
        return writer.consistency_proof(settings, m, n)

    lines = request_cosignature(server.url, signed, proof, old_size=3)  # a wrong guess: 409 says 5
    assert asked == [(3, 12), (5, 12)]
    assert cosignature.verify_response(text_of(signed), lines, w.vkey)
    assert w.state(settings.log_origin).size == 12
    asked.clear()
    assert request_cosignature(server.url, signed, proof)  # old 0 → 409 (12) → same size, no proof
    assert asked == []


def test_client_errors_are_clear(settings, log, w, server) -> None:
    small = grow(log, 5, "a")
    w.add_checkpoint(body(settings, 0, grow(log, 3, "b")))
    with pytest.raises(WitnessRefused, match="already cosigned size 8.*rolled back") as err:
        request_cosignature(server.url, small, lambda m, n: writer.consistency_proof(settings, m, n))
    assert err.value.status == 409
    fork = forged(settings, 8, merkle.leaf_hash(b"f"))
    with pytest.raises(WitnessRefused, match="HTTP 422.*fork"):
        request_cosignature(server.url, fork, lambda m, n: [], old_size=8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WitnessUnavailable, match="unreachable"):
        request_cosignature(f"http://127.0.0.1:{port}", small, lambda m, n: [], timeout=5)


# -- collecting cosignatures onto log/checkpoint -----------------------------------------------


def write_witnesses(settings: Settings, *entries: tuple[str, str]) -> None:
    Path(settings.witnesses).write_text("# witnesses\n\n" + "".join(f"{v} {u}\n" for v, u in entries))


def test_no_witnesses_configured_is_a_no_op(settings, log) -> None:
    signed = grow(log, 3, "a")
    result = witnessing.collect_cosignatures(settings)
    assert (result.outcomes, result.written) == ((), False) and "no witnesses" in result.message
    assert writer.signed_checkpoint(settings) == signed
    Path(settings.witnesses).write_text("# only comments\n")
    assert witnessing.collect_cosignatures(settings).outcomes == ()


def test_malformed_witnesses_file_names_the_line(settings, log) -> None:
    Path(settings.witnesses).write_text("# ok\nnot-a-vkey http://x\n")
    with pytest.raises(witnessing.WitnessConfigError, match=r"witnesses.txt:2"):
        witnessing.collect_cosignatures(settings)
    _, vkey = note.generate_key("w.test/log-key")  # a 0x01 key is not a witness key
    Path(settings.witnesses).write_text(f"{vkey} http://x\n")
    with pytest.raises(witnessing.WitnessConfigError, match="not a cosignature/v1 key"):
        witnessing.read_witnesses(settings.witnesses)


def test_a_witness_that_is_down_does_not_stop_the_others(settings, log, w, server) -> None:
    grow(log, 5, "a")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    _, down_vkey = cosignature.generate_key("witness.test/down")
    write_witnesses(settings, (down_vkey, dead), (w.vkey, server.url))
    result = witnessing.collect_cosignatures(settings, timeout=10)
    assert result.cosigned == [W1] and result.written and result.cosignatures == 1
    [failed] = result.failed
    assert failed.witness == "witness.test/down" and "unreachable" in failed.message
    signed = writer.signed_checkpoint(settings)
    assert [c.name for c in cosignature.verify_cosignatures(signed, [w.vkey, down_vkey])] == [W1]
    assert json.dumps(result.to_dict())  # serialisable (the Airflow task returns it)


def test_a_response_that_does_not_verify_is_reported(settings, log, w, server, tmp_path) -> None:
    grow(log, 5, "a")
    _, wrong = cosignature.generate_key(W1)  # configured with another key than the witness's
    write_witnesses(settings, (wrong, server.url))
    result = witnessing.collect_cosignatures(settings)
    [failed] = result.failed
    assert "does not verify" in failed.message and not result.written
    assert cosignature.verify_cosignatures(writer.signed_checkpoint(settings), [w.vkey]) == []


def test_a_newer_checkpoint_signed_meanwhile_is_not_overwritten(settings, log, w, server, monkeypatch) -> None:
    grow(log, 5, "a")
    write_witnesses(settings, (w.vkey, server.url))
    real = witnessing.request_cosignature

    def slow_request(*args, **kwargs):
        lines = real(*args, **kwargs)
        grow(writer.open_log(settings), 2, "meanwhile")  # the publisher appends while witnesses answer
        return lines

    monkeypatch.setattr(witnessing, "request_cosignature", slow_request)
    result = witnessing.collect_cosignatures(settings)
    assert result.cosigned == [W1] and not result.written and "newer checkpoint" in result.message
    latest = writer.signed_checkpoint(settings)
    assert checkpoint.open_checkpoint(latest, log.vkey).size == 7
    assert cosignature.verify_cosignatures(latest, [w.vkey]) == []


def test_everything_that_reads_log_checkpoint_accepts_cosignatures(tmp_path, write_file) -> None:
    s = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
                           "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
                           "SENSORLOG_WITNESSES": str(tmp_path / "witnesses.txt")})
    uri = write_file("a.ndjson", ndjson([make_event(n=i) for i in range(4)]))
    publish.commit_batch(s, stage_file(uri, s, [DEPLOYMENT]).batch_id)
    wdir = tmp_path / "w1"
    wit = witness.init_witness(wdir, W1)
    witness.add_log(wdir, writer.public_key(s))
    srv = witness.make_server(wit, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        write_witnesses(s, (wit.vkey, srv.url))
        assert witnessing.collect_cosignatures(s).written
        signed = writer.signed_checkpoint(s)
        assert len(cosignature.verify_cosignatures(signed, [wit.vkey])) == 1
        # ledger readers, the verifier and the portal's log section
        latest = writer.latest_checkpoint(s)
        assert latest is not None and latest.size == 5
        proof_text = writer.tlog_proof(s, 0)  # carries the cosigned checkpoint, and still verifies
        first_leaf = TileStore(Path(s.log)).leaf_hashes(0, 1)[0]
        assert tlog_proof.verify(proof_text, first_leaf, writer.public_key(s)).size == 5
        assert len(cosignature.verify_cosignatures(tlog_proof.parse(proof_text).checkpoint, [wit.vkey])) == 1
        report = verify.verify_log(s.log, s.published, s.manifests)
        assert report.ok, [p.message for p in report.problems]
        from pipelines import portal
        warnings: list[str] = []
        info = portal._log_info(s, warnings)
        assert info is not None and info.checkpoint == signed and warnings == []
        # The publisher's next append opens the cosigned checkpoint, checks consistency, signs the next one.
        uri = write_file("b.ndjson", ndjson([make_event(n=i) for i in range(10, 13)]))
        publish.commit_batch(s, stage_file(uri, s, [DEPLOYMENT]).batch_id)
        assert writer.latest_checkpoint(s).size == 9
        assert witnessing.collect_cosignatures(s).cosigned == [W1]
        assert verify.verify_log(s.log, s.published, s.manifests, since=signed).ok
    finally:
        srv.shutdown()
        srv.server_close()


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_init_add_log_and_offline_cosign(settings, log, tmp_path) -> None:
    runner = CliRunner()
    wdir = str(tmp_path / "wcli")
    result = runner.invoke(app, ["witness", "init", "--dir", wdir, "--name", W1])
    assert result.exit_code == 0, result.output
    vkey = witness.Witness(wdir).vkey
    assert vkey in result.output
    assert runner.invoke(app, ["witness", "init", "--dir", wdir, "--name", W1]).exit_code == 2
    vkey_file = Path(settings.log) / writer.VKEY
    result = runner.invoke(app, ["witness", "add-log", "--dir", wdir, "--vkey", str(vkey_file)])
    assert result.exit_code == 0 and settings.log_origin in result.output
    signed = grow(log, 4, "a")
    request = tmp_path / "request.txt"
    request.write_bytes(body(settings, 0, signed))
    result = runner.invoke(app, ["witness", "cosign", "--dir", wdir, str(request)])
    assert result.exit_code == 0, result.output
    assert cosignature.verify_cosignatures(signed + result.stdout, [vkey])
    # Refusal: a fork of the cosigned size, read from stdin.
    fork = format_add_checkpoint(4, [], forged(settings, 4, merkle.leaf_hash(b"f")))
    result = runner.invoke(app, ["witness", "cosign", "--dir", wdir, "-"], input=fork)
    assert result.exit_code == 1 and "refused (HTTP 422)" in result.output and "fork" in result.output
    result = runner.invoke(app, ["witness", "cosign", "--dir", wdir, str(request)])
    assert result.exit_code == 1 and "HTTP 409, recorded size 4" in result.output


def test_cli_usage_errors_exit_2_without_a_traceback(settings, tmp_path) -> None:
    runner = CliRunner()
    for args in (
        ["witness", "cosign", "--dir", str(tmp_path / "missing"), "-"],
        ["witness", "serve", "--dir", str(tmp_path / "missing"), "--port", "0"],
        ["witness", "add-log", "--dir", str(tmp_path / "missing"), "--vkey", str(tmp_path / "nofile")],
        ["witness", "init", "--name", W1],  # --dir is required
        ["witness", "init", "--dir", str(tmp_path / "x"), "--name", "bad name"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    Path(settings.home).mkdir(parents=True, exist_ok=True)  # cosign reads a home: it must exist
    Path(settings.witnesses).write_text("garbage\n")
    result = runner.invoke(app, ["cosign"], env={"SENSORLOG_HOME": settings.home,
                                                 "SENSORLOG_WITNESSES": settings.witnesses})
    assert result.exit_code == 2 and "witnesses.txt:1" in result.output


# -- end to end: two witnesses as separate processes -------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env={**os.environ, **(env or {})}, timeout=300)


# A ceiling for a witness process that never starts listening, not a speed requirement.
def wait_until_listening(port: int, proc: subprocess.Popen, log: Path, deadline_s: float = 900) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"witness exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"witness on port {port} did not accept connections: {log.read_text()}")


def test_two_witness_processes_cosign_a_growing_log_and_refuse_a_fork(settings, log, tmp_path) -> None:
    grow(log, 5, "a")
    runner = CliRunner()  # init and add-log through the CLI in-process; the servers are real processes
    witnesses: list[tuple[Path, str, str]] = []  # (dir, vkey, url)
    procs: list[subprocess.Popen] = []
    try:
        for name in ("witness.test/alpha", "witness.test/beta"):
            wdir = tmp_path / name.rsplit("/", 1)[1]
            done = runner.invoke(app, ["witness", "init", "--dir", str(wdir), "--name", name])
            assert done.exit_code == 0, done.output
            done = runner.invoke(app, ["witness", "add-log", "--dir", str(wdir),
                                       "--vkey", str(Path(settings.log) / writer.VKEY)])
            assert done.exit_code == 0, done.output
            port = free_port()
            with (tmp_path / f"{wdir.name}.out").open("w") as handle:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pipelines.cli", "witness", "serve", "--dir", str(wdir),
                     "--host", "127.0.0.1", "--port", str(port)],
                    stdout=handle, stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
                ))
            vkey = (wdir / witness.VKEY).read_text().strip()
            witnesses.append((wdir, vkey, f"http://127.0.0.1:{port}"))
        for (wdir, vkey, url), proc in zip(witnesses, procs, strict=True):
            out = tmp_path / f"{wdir.name}.out"
            wait_until_listening(int(url.rsplit(":", 1)[1]), proc, out)
            printed = out.read_text()
            assert url in printed and vkey in printed  # serve prints its URL and vkey
        write_witnesses(settings, *((vkey, url) for _, vkey, url in witnesses))
        vkeys = [vkey for _, vkey, _ in witnesses]

        # 1. First collection: both witnesses see the log for the first time (old size 0).
        result = witnessing.collect_cosignatures(settings)
        assert result.cosigned == ["witness.test/alpha", "witness.test/beta"], result.failed
        signed = writer.signed_checkpoint(settings)
        assert checkpoint.open_checkpoint(signed, log.vkey).size == 5
        assert [c.name for c in cosignature.verify_cosignatures(signed, vkeys)] == [
            "witness.test/alpha", "witness.test/beta"]
        assert signed.split("\n\n", 1)[1].startswith(f"\u2014 {settings.log_origin} ")  # the log's line first

        # 2. The log grows; the second collection goes through the consistency proof from size 5.
        grow(log, 9, "b")
        result = cli("cosign", env={"SENSORLOG_HOME": settings.home, "SENSORLOG_WITNESSES": settings.witnesses})
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("ok   witness.test/") == 2
        signed = writer.signed_checkpoint(settings)
        head = checkpoint.open_checkpoint(signed, log.vkey)
        assert head.size == 14
        assert len(cosignature.verify_cosignatures(signed, vkeys)) == 2
        for wdir, _, _ in witnesses:
            state = witness.Witness(wdir).state(settings.log_origin)
            assert (state.size, state.root_hash) == (14, head.root_hash)
        for wdir, _, _ in witnesses:  # the remembered size was right: no 409 round trip was needed
            served = (tmp_path / f"{wdir.name}.out").read_text()
            assert served.count('"POST /add-checkpoint HTTP/1.1" 200') == 2 and "conflict" not in served

        # 3. A fork: the log's key signs a different tree of the same size. The witness refuses it.
        wdir, _, url = witnesses[0]
        state_file = wdir / witness.STATE / f"{witness.origin_hash(settings.log_origin)}.json"
        before = state_file.read_bytes()
        fork = forged(settings, 14, merkle.leaf_hash(b"a rewritten history"))
        with pytest.raises(WitnessRefused, match="fork") as err:
            request_cosignature(url, fork, lambda m, n: [], old_size=14)
        assert err.value.status == 422
        assert state_file.read_bytes() == before
        # Offline, against the same state directory, the same refusal.
        done = runner.invoke(app, ["witness", "cosign", "--dir", str(wdir), "-"],
                             input=format_add_checkpoint(14, [], fork))
        assert done.exit_code == 1 and "fork" in done.output
        assert state_file.read_bytes() == before
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_settings_default_witnesses_file_is_under_home(tmp_path) -> None:
    s = Settings.from_env({"SENSORLOG_HOME": str(tmp_path)})
    assert s.witnesses == str(tmp_path / "witnesses.txt")
    assert replace(s, witnesses="").witnesses == ""
