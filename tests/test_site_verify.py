"""Verification from the published site alone, the way a resident or an auditor does it: a copy of
the built site (and the same site served over HTTP on loopback), a clean shell without
``SENSORLOG_HOME``, and nothing else.

The site is built once per module from the small two-step city of ``test_verify``; every tamper
test changes its own copy of the site, never the operator's home.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from outside import clean_env, run
from test_verify import City, published_city
from test_witness import free_port, wait_until_listening

from pipelines import site_files
from pipelines.config import Settings
from pipelines.log.reader import HttpSource, StorageSource
from pipelines.log.verify import Report, verify_log
from pipelines.portal import build_portal
from pipelines.tlog import bundles, leaf, merkle, note
from pipelines.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from pipelines.tlog.tiles import TILE_WIDTH, tile_path

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
WAIT = 600  # seconds a subprocess may take on a loaded machine: a limit, never a measurement


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return published_city(tmp_path_factory)


@pytest.fixture(scope="module")
def built(city: City, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_portal(Settings.from_env({"SENSORLOG_HOME": str(city.home)}), str(out))
    return out


@pytest.fixture
def site(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "copy"))


def verify_site(site: Path, **kwargs: object) -> Report:
    return verify_log(site / "log", site / "data", site=site, **kwargs)


def checks(report: Report) -> set[str]:
    return {p.check for p in report.problems}


# -- a serving site ------------------------------------------------------------------------------


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        return


# -- the untouched site --------------------------------------------------------------------------


def test_the_site_holds_a_complete_tlog_tiles_log(built: Path) -> None:
    """A generic tlog-tiles client needs only the checkpoint, the tiles and the entry bundles: walk them
    with nothing sensorlog-specific and rebuild the signed root from the entries."""
    log = built / "log"
    key = (log / "log.vkey").read_text().strip()
    head = open_checkpoint((log / "checkpoint").read_text(), key)
    assert head.size > 0
    entries: list[bytes] = []
    full, width = divmod(head.size, TILE_WIDTH)
    for n in range(full):
        data = (log / bundles.bundle_path(n)).read_bytes()
        got = bundles.decode_bundle(data)
        assert len(got) == TILE_WIDTH
        tile = (log / tile_path(0, n)).read_bytes()
        assert b"".join(merkle.leaf_hash(e) for e in got) == tile
        entries.extend(got)
    if width:
        entries.extend(bundles.decode_bundle((log / bundles.bundle_path(full, width)).read_bytes(), width))
        assert (log / tile_path(0, full, width)).exists()
    assert merkle.root_of(merkle.leaf_hash(e) for e in entries) == head.root_hash
    # Every entry is the RFC 8785 JSON of a row or of a manifest, and names its table.
    tables = {json.loads(e)["table"] for e in entries}
    assert "manifest" in tables and "collection" in tables


def test_verify_from_a_copied_site_in_a_clean_shell(site: Path) -> None:
    done = run(["sensorlog", "verify", "--log", "log", "--data", "data"], site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFIED" in done.stdout
    assert "SHA256SUMS is signed by the log key" in done.stdout
    assert "entry bundles hold exactly the recomputed leaves" in done.stdout
    assert "stored tiles above level 0" in done.stdout
    assert "trusting this key on first use" in done.stdout
    assert "Traceback" not in done.stderr


def test_strict_refuses_a_key_trusted_on_first_use_and_accepts_a_pinned_one(site: Path, tmp_path: Path) -> None:
    done = run(["sensorlog", "verify", "--log", "log", "--data", "data", "--strict"], site)
    assert done.returncode == 1 and "trusting this key on first use" in done.stdout
    pinned = tmp_path / "pinned.vkey"
    shutil.copy(site / "log" / "log.vkey", pinned)
    done = run(["sensorlog", "verify", "--log", "log", "--data", "data", "--strict", "--vkey", str(pinned)], site)
    assert done.returncode == 0, done.stdout


def test_verify_over_http_on_loopback(served: str, site: Path) -> None:
    done = run(["sensorlog", "verify", "--log", f"{served}/log", "--data", f"{served}/data"], site.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFIED" in done.stdout
    report = verify_log(HttpSource(f"{served}/log"), HttpSource(f"{served}/data"), site=HttpSource(served))
    assert report.ok, report.problems
    assert report.rows > 0
    # Proofs over HTTP too: an inclusion proof checked against the served data, and a consistency proof.
    proof = site.parent / "http.tlog-proof"
    done = run(["sensorlog", "prove", "--log", f"{served}/log", "--data", f"{served}/data", "--index", "1",
                "--proof-file", str(proof)], site.parent)
    assert done.returncode == 0, done.stderr
    assert run(["sensorlog", "check-proof", str(proof), "--vkey", str(site / "log" / "log.vkey")],
               site.parent).returncode == 0
    size = report.checkpoint.size
    done = run(["sensorlog", "prove", "--log", f"{served}/log", "--consistency", "1", str(size)], site.parent)
    assert done.returncode == 0 and "consistency proof" in done.stdout, done.stderr


def _log_signer(city: City) -> note.Signer:
    """The operator's own key: what a dishonest operator signs with."""
    return note.Signer.from_skey((city.home / "keys" / "log.key").read_text())


def _resign_list(site: Path, signer: note.Signer, add: list[str] = ()) -> None:
    """Rewrite SHA256SUMS over the site's current files (plus ``add``), signed by ``signer``."""
    listed = (site / "SHA256SUMS").read_text()
    lines = listed[: listed.rindex("\n\n")].splitlines()
    paths = [m.group(1) for line in lines if (m := re.match(r"^[0-9a-f]{64}  (.+)$", line))]
    body = lines[:2] + [f"{hashlib.sha256((site / p).read_bytes()).hexdigest()}  {p}" for p in sorted({*paths, *add})]
    (site / "SHA256SUMS").write_text(note.sign("\n".join(body) + "\n", signer))


def test_an_unlogged_parquet_file_is_found_over_http_through_the_signed_list(
    city: City, served: str, site: Path
) -> None:
    """HTTP cannot list folders: the signed file list tells a verifier which files exist, so a Parquet
    file the operator publishes (and lists) without logging it is named even over HTTP."""
    first = next((site / "data").glob("event_type=collection/*/*.parquet"))
    extra = first.with_name("f" * 64 + ".parquet")
    shutil.copy(first, extra)
    _resign_list(site, _log_signer(city), [str(extra.relative_to(site))])
    report = verify_log(HttpSource(f"{served}/log"), HttpSource(f"{served}/data"), site=HttpSource(served))
    assert any(p.check == "extra" and p.subject.endswith(extra.name) for p in report.problems), report.problems


def test_a_file_added_to_a_copy_is_named_by_the_local_listing(site: Path) -> None:
    first = next((site / "data").glob("event_type=collection/*/*.parquet"))
    extra = first.with_name("e" * 64 + ".parquet")
    shutil.copy(first, extra)
    report = verify_site(site)
    assert any(p.check == "extra" and p.subject.endswith(extra.name) for p in report.problems)
    assert any(p.check == "files" and p.subject.endswith(extra.name) for p in report.problems)


def test_every_how_to_verify_command_on_a_deployment_page_runs_as_written(site: Path, tmp_path: Path) -> None:
    page = next((site / "deployments").glob("*.html")).read_text()
    blocks = re.findall(r'<code class="verify-commands">(.*?)</code>', page, re.S)
    assert len(blocks) == 2, "the page shows the site-wide and the per-deployment commands"
    work = Path(shutil.copytree(site, tmp_path / "resident"))
    for block in blocks:
        for line in unescape(block).splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            done = run(line, work)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
    assert list(work.glob("leaf-*.tlog-proof"))


def test_the_key_fingerprint_is_on_every_page_and_sign(site: Path) -> None:
    vkey = (site / "log" / "log.vkey").read_text().strip()
    digest = hashlib.sha256(vkey.encode()).hexdigest()[:32]
    spaced = " ".join(digest[i:i + 4] for i in range(0, 32, 4))
    key = note.Verifier.from_vkey(vkey)
    key_id = f"{key.name}+{key.key_id:08x}"
    for page in (site / "deployments").glob("*.html"):
        text = page.read_text()
        assert spaced in text and key_id in text, page.name
    for sign in (site / "signs").glob("*.svg"):
        assert spaced in sign.read_text(), sign.name


def test_proofs_from_the_site_check_with_the_key_alone(site: Path, tmp_path: Path) -> None:
    head = open_checkpoint((site / "log" / "checkpoint").read_text(), (site / "log" / "log.vkey").read_text())
    manifest = json.loads(next((site / "log" / "manifests").glob("*.json")).read_text())
    manifest_leaf = manifest["leaves"]["manifest_leaf"]
    for index in (0, manifest_leaf, head.size - 1):
        proof = tmp_path / f"{index}.tlog-proof"
        done = run(["sensorlog", "prove", "--log", "log", "--data", "data", "--index", str(index),
                    "--proof-file", str(proof)], site)
        assert done.returncode == 0, done.stderr
        checked = run(["sensorlog", "check-proof", str(proof), "--vkey", "log/log.vkey"], site)
        assert checked.returncode == 0 and "VALID" in checked.stdout, checked.stdout
    # A proof whose leaf was changed does not check.
    text = (tmp_path / "0.tlog-proof").read_text()
    extra = re.search(r"^extra (.*)$", text, re.M).group(1)
    changed = base64.b64decode(extra).replace(b'"source":"', b'"source":"x')  # every row has a source
    assert changed != base64.b64decode(extra)
    (tmp_path / "bad.tlog-proof").write_text(text.replace(extra, base64.b64encode(changed).decode()))
    bad = run(["sensorlog", "check-proof", str(tmp_path / "bad.tlog-proof"), "--vkey", "log/log.vkey"], site)
    assert bad.returncode == 1 and "INVALID" in bad.stdout
    # The manifest leaf is the manifest file, byte for byte under RFC 8785.
    leaf_text = tmp_path / "m.json"
    leaf_text.write_bytes(leaf.manifest_leaf_bytes(manifest))
    done = run(["sensorlog", "check-proof", str(tmp_path / f"{manifest_leaf}.tlog-proof"), "--vkey",
                "log/log.vkey", "--leaf-data", str(leaf_text)], site)
    assert done.returncode == 0, done.stdout


def test_prove_an_event_from_the_site_by_source_and_id(site: Path) -> None:
    entry = bundles.decode_bundle((site / "log" / bundles.bundle_path(0)).read_bytes())[3]
    row = json.loads(entry)
    done = run(["sensorlog", "prove", "--log", "log", "--event", f"{row['source']}/{row['event_id']}"], site)
    assert done.returncode == 0, done.stderr
    assert entry.decode() in done.stdout
    missing = run(["sensorlog", "prove", "--log", "log", "--event", "https://nowhere.example/x/none"], site)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


# -- tampering with the site copy ----------------------------------------------------------------


def _first_parquet(site: Path) -> Path:
    return sorted((site / "data").glob("event_type=collection/*/*.parquet"))[0]


def _rewrite(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def test_a_changed_value_in_the_site_parquet_fails(site: Path) -> None:
    path = _first_parquet(site)
    table = pq.read_table(path)
    records = table.column("records").to_pylist()
    records[0] += 1
    _rewrite(path, table.set_column(table.schema.get_field_index("records"), "records", pa.array(records, pa.int64())))
    report = verify_site(site)
    assert not report.ok
    assert any(path.name in p.subject for p in report.problems)


def test_a_deleted_row_fails(site: Path) -> None:
    path = next(p for p in sorted((site / "data").glob("event_type=collection/*/*.parquet"))
                if pq.read_metadata(p).num_rows > 1)
    table = pq.read_table(path)
    _rewrite(path, table.slice(1))
    report = verify_site(site)
    assert "file" in checks(report)


def test_a_dropped_file_fails_naming_it(site: Path) -> None:
    path = _first_parquet(site)
    path.unlink()
    report = verify_site(site)
    assert any(p.check == "file" and path.name in p.subject and "missing" in p.message for p in report.problems)


def test_swapped_files_fail(site: Path) -> None:
    a, b = sorted((site / "data").glob("event_type=collection/*/*.parquet"))[:2]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    assert "file" in checks(verify_site(site))


def test_a_flipped_bit_in_a_level_1_tile_fails(site: Path) -> None:
    tiles = sorted(p for p in (site / "log" / "tile" / "1").rglob("*") if p.is_file())
    assert tiles, "the demo log must have level-1 tiles"
    data = bytearray(tiles[0].read_bytes())
    data[0] ^= 1
    tiles[0].write_bytes(bytes(data))
    report = verify_site(site)
    assert any(p.check == "tiles" and "tile/1/" in p.subject for p in report.problems), report.problems


def test_a_changed_entry_bundle_fails(site: Path) -> None:
    path = site / "log" / bundles.bundle_path(0)
    entries = bundles.decode_bundle(path.read_bytes())
    changed = entries[5].replace(b'"source":"', b'"source":"x')  # a row (the first are declarations)
    assert changed != entries[5]
    entries[5] = changed
    path.write_bytes(bundles.encode_bundle(entries))
    report = verify_site(site)
    assert any(p.check == "entries" and "entry 5" in p.message for p in report.problems), report.problems


def test_a_changed_row_in_the_one_file_extract_fails(site: Path) -> None:
    """The extract a portal user downloads holds the logged rows: a changed value is named even if the
    attacker also fixes the file list's hash (which needs the log key, so here it simply fails twice)."""
    path = site / "data" / "collection" / "collection.parquet"
    table = pq.read_table(path)
    records = table.column("records").to_pylist()
    records[-1] += 1
    _rewrite(path, table.set_column(table.schema.get_field_index("records"), "records", pa.array(records, pa.int64())))
    report = verify_site(site)
    assert any(p.check == "extract" and p.subject == "collection/collection.parquet" for p in report.problems)


def test_a_changed_page_fails_the_signed_file_list(site: Path) -> None:
    page = next((site / "deployments").glob("*.html"))
    page.write_text(page.read_text().replace("<h1", "<h1 data-x", 1))
    report = verify_site(site)
    assert any(p.check == "files" and p.subject.endswith(page.name) for p in report.problems)


def test_a_rewritten_file_list_signed_by_another_key_fails(site: Path) -> None:
    signer = note.Signer.from_skey(note.generate_key("sensorlog.example/riverton")[0])
    listed = (site / "SHA256SUMS").read_text()
    text = listed[: listed.rindex("\n\n") + 1]
    (site / "SHA256SUMS").write_text(note.sign(text, signer))
    report = verify_site(site)
    assert any(p.check == "files" and p.subject == "SHA256SUMS" for p in report.problems)


def test_a_rollback_to_an_older_checkpoint_is_caught_with_since(city: City, site: Path, tmp_path: Path) -> None:
    """An older, genuinely signed state served as the latest: plain verify cannot know (it warns that the
    key is trusted on first use); with the checkpoint saved earlier it fails as a rollback."""
    saved = (site / "log" / "checkpoint").read_text()
    old_site = tmp_path / "old-site"
    build_portal(Settings.from_env({"SENSORLOG_HOME": str(city.old)}), str(old_site))
    plain = verify_site(old_site)
    assert plain.ok and any("trusting this key on first use" in w for w in plain.warnings)
    report = verify_site(old_site, since=saved)
    assert "rollback" in checks(report)


def test_a_full_rekey_is_caught_with_a_pinned_key(site: Path) -> None:
    """The attacker re-signs every checkpoint and the file list with a new key and publishes it."""
    log = site / "log"
    pinned = (log / "log.vkey").read_text()
    origin = note.Verifier.from_vkey(pinned.strip()).name
    skey, vkey = note.generate_key(origin)
    signer = note.Signer.from_skey(skey)
    (log / "log.vkey").write_text(vkey + "\n")
    for path in [log / "checkpoint", *(log / "checkpoints").iterdir()]:
        head = open_checkpoint(path.read_text(), pinned)
        path.write_text(sign_checkpoint(head, signer))
    listed = (site / "SHA256SUMS").read_text()
    body = listed[: listed.rindex("\n\n") + 1]
    fixed = [
        f"{hashlib.sha256((site / m.group(2)).read_bytes()).hexdigest()}  {m.group(2)}"
        if (m := re.match(r"^([0-9a-f]{64})  (.+)$", line)) else line
        for line in body.splitlines()
    ]
    (site / "SHA256SUMS").write_text(note.sign("\n".join(fixed) + "\n", signer))
    assert verify_site(site).ok  # self-consistent: only an anchor outside the site can tell
    report = verify_site(site, expected_vkey=pinned)
    assert "key" in checks(report)


def test_a_checkpoint_forked_at_the_same_size_is_caught_with_since(city: City, site: Path) -> None:
    """The operator signs a second, different tree of the same size (a split view): an auditor holding
    the other one sees the fork."""
    log = site / "log"
    head = open_checkpoint((log / "checkpoint").read_text(), (log / "log.vkey").read_text())
    other = Checkpoint(head.origin, head.size, hashlib.sha256(b"another history").digest())
    forked = sign_checkpoint(other, _log_signer(city))
    report = verify_site(site, since=forked)
    assert any(p.check == "rollback" and "forked" in p.message for p in report.problems), report.problems


def test_an_empty_data_folder_is_a_failure_not_a_pass(site: Path) -> None:
    shutil.rmtree(site / "data")
    (site / "data").mkdir()
    report = verify_site(site)
    assert not report.ok
    done = run(["sensorlog", "verify", "--log", "log", "--data", "data"], site)
    assert done.returncode == 1 and "VERIFIED" not in done.stdout


def test_a_missing_log_is_a_clear_error(tmp_path: Path) -> None:
    done = run(["sensorlog", "verify", "--log", str(tmp_path / "nothing"), "--data", str(tmp_path)], tmp_path)
    assert done.returncode == 1 and "log/log.vkey" in done.stdout and "Traceback" not in done.stderr


def test_sha256sum_still_checks_the_signed_list(site: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum is not installed")
    done = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=site, capture_output=True, text=True,
                          timeout=WAIT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_signed_list_parses_and_binds_the_checkpoint(site: Path) -> None:
    key = (site / "log" / "log.vkey").read_text()
    listed = site_files.open_list((site / "SHA256SUMS").read_text(), key)
    head = open_checkpoint((site / "log" / "checkpoint").read_text(), key)
    assert (listed.size, listed.root) == (head.size, head.root_hash)
    assert "log/checkpoint" in listed.files and "index.html" in listed.files
    source = StorageSource(str(site))
    assert all(hashlib.sha256(source.read(p)).hexdigest() == d for p, d in list(listed.files.items())[:50])


# -- witnesses -----------------------------------------------------------------------------------


def test_two_loopback_witnesses_cosign_the_site_and_a_fork_fails_verify(city: City, tmp_path: Path) -> None:
    """Two witnesses run as their own processes; the operator collects their cosignatures, the portal
    publishes them, and `verify --witness` accepts the site. A fork (another tree of the same size,
    signed by the log key) is refused by a witness, and a site serving it fails --min-witnesses 1."""
    home = Path(shutil.copytree(city.home, tmp_path / "home"))
    env = {**clean_env(), "SENSORLOG_HOME": str(home)}
    procs: list[subprocess.Popen[bytes]] = []
    keys: list[Path] = []
    lines = []
    try:
        for name in ("witness.test/alpha", "witness.test/beta"):
            wdir = tmp_path / name.rsplit("/", 1)[1]
            for args in (["witness", "init", "--dir", str(wdir), "--name", name],
                         ["witness", "add-log", "--dir", str(wdir), "--vkey", str(home / "log" / "log.vkey")]):
                done = subprocess.run(["sensorlog", *args], env=env, capture_output=True, text=True, timeout=WAIT)
                assert done.returncode == 0, done.stdout + done.stderr
            port = free_port()
            out = tmp_path / f"{wdir.name}.out"
            with out.open("w") as handle:
                procs.append(subprocess.Popen(["sensorlog", "witness", "serve", "--dir", str(wdir), "--port",
                                               str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT))
            wait_until_listening(port, procs[-1], out)
            vkey = (wdir / "witness.vkey").read_text().strip()
            key_file = tmp_path / f"{wdir.name}.vkey"
            key_file.write_text(vkey + "\n")
            keys.append(key_file)
            lines.append(f"{vkey} http://127.0.0.1:{port}\n")
        (home / "witnesses.txt").write_text("".join(lines))
        done = subprocess.run(["sensorlog", "cosign"], env=env, capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stdout + done.stderr

        site = tmp_path / "site"
        build_portal(Settings.from_env({"SENSORLOG_HOME": str(home)}), str(site))
        args = ["sensorlog", "verify", "--log", "log", "--data", "data"]
        for k in keys:
            args += ["--witness", str(k)]
        ok = run(args, site)
        assert ok.returncode == 0, ok.stdout
        assert "cosigned by 2 of your witnesses" in ok.stdout
        page = next((site / "deployments").glob("*.html")).read_text()
        assert "witness.test/alpha" in page and "witness.test/beta" in page  # the page names its witnesses

        # The fork: the operator signs another tree of the same size and tries to get it witnessed.
        head = open_checkpoint((home / "log" / "checkpoint").read_text(), (home / "log" / "log.vkey").read_text())
        fork = sign_checkpoint(Checkpoint(head.origin, head.size, hashlib.sha256(b"split view").digest()),
                               note.Signer.from_skey((home / "keys" / "log.key").read_text()))
        request = tmp_path / "fork.request"
        request.write_text(f"old {head.size}\n\n{fork}")
        refused = subprocess.run(["sensorlog", "witness", "cosign", "--dir", str(tmp_path / "alpha"),
                                  str(request)], env=env, capture_output=True, text=True, timeout=WAIT)
        assert refused.returncode == 1 and "fork" in (refused.stdout + refused.stderr)
        (site / "log" / "checkpoint").write_text(fork)  # served to residents without any cosignature
        forked = run(["sensorlog", "verify", "--log", "log", "--data", "data", "--witness", str(keys[0]),
                      "--min-witnesses", "1"], site)
        assert forked.returncode == 1
        assert "log/checkpoint" in forked.stdout and "no witness vouches" in forked.stdout
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=WAIT)


def test_verify_a_log_exported_to_s3(city: City, bucket: str) -> None:
    """``log export`` to an s3:// prefix (a real S3 endpoint on loopback), verified through the storage
    layer; a removed object is named."""
    import boto3

    from pipelines.log.export import export_to

    s = Settings.from_env({"SENSORLOG_HOME": str(city.home)})
    out = f"s3://{bucket}/riverton"
    export_to(s, out, with_data=True)
    report = verify_log(f"{out}/log", f"{out}/data")
    assert report.ok, report.problems
    assert report.rows > 0 and any("entry bundles" in line for line in report.passed)
    client = boto3.client("s3")
    key = next(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="riverton/data/event_type=")["Contents"])
    client.delete_object(Bucket=bucket, Key=key)
    broken = verify_log(f"{out}/log", f"{out}/data")
    assert any(p.check == "file" and key.endswith(p.subject) for p in broken.problems), broken.problems
