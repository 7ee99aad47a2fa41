"""The transparency log: ``verify``, ``prove``, ``check-proof``, ``log export``, ``cosign`` (the operator
collects cosignatures) and the ``witness`` group (run a witness).

verify: a verdict with ``rich``; exit 0 only when every check holds, 1 when one does not (the first
failure is repeated on the last line), 2 for a usage error.

prove: plain text on stdout, so that it can be piped or saved (rich would wrap long lines):

* ``--event SOURCE/ID`` (or ``--source`` and ``--id``, or ``--index N``): ``#`` comment lines, the
  leaf bytes (RFC 8785 JSON) on one line, an empty line, then the c2sp.org/tlog-proof@v1 text up to
  the end, signed checkpoint included. ``--proof-file``/``--leaf-file`` also write those two parts.
* ``--consistency M N``: ``#`` lines with the two roots, then the RFC 9162 consistency proof from
  tree size M to N, one hash per line, base64 (default) or hex (``--hex``).
  Exit 1 when there is nothing to prove, 2 for a usage error.

check-proof: ``VALID`` (exit 0) or ``INVALID`` (exit 1); 2 for a key or file that cannot be read.

witness and cosign: exit 0 on success; 1 a refusal (``witness cosign``) or a witness that did not
cosign (``cosign``); 2 a usage or configuration error (missing or malformed key, directory, file or
option). Messages go to stderr; cosignature lines and the served URL go to stdout, as plain text.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli._output import consistency_text, event_proof_text, leaf_progress, line
from pipelines.config import Settings
from pipelines.errors import USAGE, UsageError, reported_as

WITNESS_HELP = "A witness's verifier key (file or text); repeat for more"
DIR_HELP = "The witness's state directory (key, accepted logs, last cosigned checkpoint per log)"

log_app = typer.Typer(no_args_is_help=True, help="The published transparency log.")
witness_app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Run a transparency-log witness (c2sp.org/tlog-witness): check that logs only grow, then cosign.",
)


def _settings(log: str | None, published: str | None, manifests: str | None) -> Settings:
    s = Settings.from_existing_home()
    overrides = {k: str(Path(v).resolve()) if "://" not in v else v
                 for k, v in (("log", log), ("published", published), ("manifests", manifests)) if v}
    return dataclasses.replace(s, **overrides)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror}") from exc


def _key_text(value: str, what: str) -> str:
    """A verifier key given as a file path or as the key text itself."""
    path = Path(value)
    if path.is_file():
        return _read(path, what).strip()
    if "+" in value and " " not in value.strip():
        return value.strip()
    raise UsageError(f"{what}: {value} is neither a file nor a verifier key")


def _default_site(log: str) -> str | None:
    """A site's root, when ``log`` is its ``log/`` folder and the signed file list sits next to it."""
    from pipelines import site_files
    from pipelines.log import reader

    root = reader.parent(log)
    try:
        reader.open_source(root).read(site_files.FILE_NAME)
    except OSError:
        return None
    return root


def verify_cmd(
    log: str = typer.Option(None, "--log", help="A published log: folder, http(s):// URL or s3:// prefix"
                            " (default: the operator's own log)"),
    data: str = typer.Option(None, "--data", "--published", help="The logged Parquet files' root (holding the"
                             " event_type= folders); default: data/ next to --log, or the configured one"),
    manifests: str = typer.Option(None, "--manifests", help="Manifest folder (default: manifests/ in --log,"
                                  " or the configured one)"),
    site: str = typer.Option(None, "--site", help="The site holding the signed SHA256SUMS (default: the folder"
                             " above --log, when it has one)"),
    since: str = typer.Option(None, "--since", help="A signed checkpoint you saved earlier: prove the log only grew"),
    vkey: str = typer.Option(None, "--vkey", help="The log's verifier key you expect (else log.vkey is trusted"
                             " on first use)"),
    witness: Annotated[list[str] | None, typer.Option("--witness", help=WITNESS_HELP)] = None,
    min_witnesses: int = typer.Option(0, "--min-witnesses", help="Cosignatures required (default: every --witness)"),
    strict: bool = typer.Option(False, "--strict", help="Fail unless --vkey, --since or --witness anchors the key"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict and the failures"),
) -> None:
    """Recompute the log from the published Parquet and check it against the signed checkpoints,
    tiles, entry bundles, signed file list and witness cosignatures."""
    from pipelines.log import reader, verify

    if log:
        log_where = log
        data_where = data or reader.parent(log).rstrip("/") + "/data"
        manifests_where = manifests
        site_where = site or _default_site(log)
    else:
        s = Settings.from_existing_home()
        log_where, data_where = s.log, data or s.published
        manifests_where, site_where = manifests or s.manifests, site
    witness = witness or []
    if min_witnesses < 0 or (min_witnesses > len(witness) and witness):
        raise UsageError("usage: --min-witnesses must be between 0 and the number of --witness keys")
    since_text = _read(Path(since), "--since") if since else None
    expected = _read(Path(vkey), "--vkey") if vkey else None
    witness_keys = tuple(_key_text(w, "--witness") for w in witness)
    if not quiet:
        line(f"[bold]sensorlog verify[/bold]  log {log_where}  data {data_where}"
             + (f"  site {site_where}" if site_where else ""))
    with reported_as("verify", reader.SourceError, exit_code=USAGE):
        # The log and the data always have a place (an option or the configured default).
        log_source, data_source = reader.open_source(log_where), reader.open_source(data_where)
        manifests_source, site_source = (reader.open_source(w) if w else None for w in (manifests_where, site_where))
    with leaf_progress(quiet) as progress:
        report = verify.verify_log(
            log_source, data_source, manifests_source,
            since=since_text, since_name=f"--since {since}" if since else "--since checkpoint",
            expected_vkey=expected, witnesses=witness_keys, min_witnesses=min_witnesses, strict=strict,
            site=site_source, progress=progress,
        )
    if not quiet:
        for passed in report.passed:
            line(f"[green]✓[/green] {passed}")
    for problem in report.problems:
        line(f"[red]✗[/red] [bold]{problem.subject}[/bold]: {problem.message}")
    for check, count in report.suppressed.items():
        what = "later stored checkpoints differ too" if check == "root" else f"more {check} problems not shown"
        line(f"[red]✗[/red] … and {count} {what}")
    if not quiet:
        for warning in report.warnings:
            line(f"[yellow]![/yellow] {warning}")
    if report.ok:
        size = report.checkpoint.size if report.checkpoint else 0
        line(
            f"[bold green]VERIFIED[/bold green]: {report.files} files, {report.rows} rows and"
            f" {report.manifests} manifests make up the signed tree of size {size}"
        )
        return
    line(f"[bold red]FAILED[/bold red] ({len(report.problems)} problems); first: {report.first}")
    raise typer.Exit(1)


def prove_cmd(
    event: str = typer.Option(None, "--event", help="SOURCE/ID of a published event (split on the last '/')"),
    source: str = typer.Option(None, "--source", help="The event's source (with --id)"),
    event_id: str = typer.Option(None, "--id", help="The event's id (with --source)"),
    index: int = typer.Option(None, "--index", help="Prove the published row at this leaf index"),
    consistency: tuple[int, int] = typer.Option(
        None, "--consistency", help="Print a consistency proof from tree size M to tree size N", metavar="M N"
    ),
    hex_hashes: bool = typer.Option(False, "--hex", help="Consistency proof hashes in hex instead of base64"),
    proof_file: str = typer.Option(None, "--proof-file", help="Also write the tlog-proof to this file"),
    leaf_file: str = typer.Option(None, "--leaf-file", help="Also write the exact leaf bytes to this file"),
    log: str = typer.Option(None, "--log", help="A published log (folder, URL or s3://) to prove from;"
                            " default: the operator's own log"),
    data: str = typer.Option(None, "--data", help="With --log: also check the row against this data root's Parquet"),
    published: str = typer.Option(None, "--published", help="Published Parquet root of the operator's home"),
    manifests: str = typer.Option(None, "--manifests", help="Manifest directory of the operator's home"),
) -> None:
    """Print an event's leaf and inclusion proof (C2SP tlog-proof), or a consistency proof."""
    from pipelines.log import prove, prove_static, reader
    from pipelines.tlog.tiles import StoreError

    chosen = [x is not None for x in (event, source or event_id, index, consistency)]
    if sum(chosen) != 1 or (source is None) != (event_id is None):
        raise UsageError("usage: give one of --event SOURCE/ID, --source S --id I, --index N, --consistency M N")
    with reported_as("prove", prove.ProveError, StoreError, ValueError, OSError):
        if event is not None:
            source, event_id = prove.split_event(event)
        if log:
            static = prove_static.StaticLog.open(reader.open_source(log))
            data_src = reader.open_source(data) if data else None
            if consistency is not None:
                typer.echo(consistency_text(prove_static.consistency(static, *consistency), hex_hashes=hex_hashes),
                           nl=False)
                return
            result = (prove_static.prove_index(static, index, data_src) if index is not None
                      else prove_static.prove_event(static, source, event_id, data_src))
        else:
            s = _settings(None, published, manifests)
            if consistency is not None:
                typer.echo(consistency_text(prove.consistency(s, *consistency), hex_hashes=hex_hashes), nl=False)
                return
            result = prove.prove_index(s, index) if index is not None else prove.prove_event(s, source, event_id)
    typer.echo(event_proof_text(result), nl=False)
    if proof_file:
        Path(proof_file).write_text(result.proof)
    if leaf_file:
        Path(leaf_file).write_bytes(result.leaf_bytes)


def check_proof_cmd(
    proof: str = typer.Argument(..., help="A c2sp.org/tlog-proof file (as `sensorlog prove --proof-file` writes)"),
    vkey: str = typer.Option(..., "--vkey", help="The log's verifier key (file or text)"),
    leaf_data: str = typer.Option(None, "--leaf-data", help="The leaf bytes (else the proof's extra data is used)"),
    witness: Annotated[list[str] | None, typer.Option("--witness", help=WITNESS_HELP)] = None,
    min_witnesses: int = typer.Option(0, "--min-witnesses", help="Cosignatures required (default: every --witness)"),
) -> None:
    """Check a proof someone handed you: no log, no data, only the log's key."""
    from pipelines.log import prove, prove_static

    text = _read(Path(proof), "proof")
    key = _key_text(vkey, "--vkey")
    witness = witness or []
    leaf_bytes = None
    if leaf_data:
        try:
            leaf_bytes = Path(leaf_data).read_bytes().rstrip(b"\n")
        except OSError as exc:
            raise UsageError(f"--leaf-data: cannot read {leaf_data}: {exc.strerror}") from exc
    try:
        checked = prove_static.check_proof(text, key, leaf_bytes=leaf_bytes,
                                           witnesses=[_key_text(w, "--witness") for w in witness],
                                           min_witnesses=min_witnesses)
    except prove.ProveError as exc:  # a verdict on stdout, not an error
        line(f"[bold red]INVALID[/bold red]: {exc}")
        raise typer.Exit(1) from exc
    row = checked.row or {}
    what = (f"manifest of batch {row.get('batch_id')}" if row.get("table") == "manifest"
            else f"{row.get('table')} event {row.get('source')}/{row.get('event_id')}")
    line(f"[green]✓[/green] leaf {checked.index} ({what}), leaf hash {checked.leaf_hash.hex()}")
    line(f"[green]✓[/green] checkpoint signed by the log key: {checked.checkpoint.origin},"
         f" size {checked.checkpoint.size}")
    if checked.witnesses:
        line(f"[green]✓[/green] cosigned by {', '.join(checked.witnesses)}")
    line(f"[bold green]VALID[/bold green]: leaf {checked.index} is in the log's tree of size"
         f" {checked.checkpoint.size}")


@log_app.command("export")
def log_export_cmd(
    out: str = typer.Option(..., "--out", help="Folder or s3:// prefix to write the static log to"),
    with_data: bool = typer.Option(False, "--with-data", help="Also copy the logged Parquet files under data/"),
) -> None:
    """Write the complete static log (tlog-tiles tiles and entry bundles, checkpoints, key, manifests)."""
    from pipelines.log import export

    with reported_as("log export", export.ExportError, OSError, ValueError):
        result = export.export_to(Settings.from_existing_home(), out, with_data=with_data)
    line(f"ok tree size {result.size}: {result.files} files ({result.entries} entries,"
         f" {result.data_files} data files) → {out}/log in {result.seconds} s")


def cosign_cmd(
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each witness"),
) -> None:
    """Ask the configured witnesses (SENSORLOG_WITNESSES) to cosign the log's latest checkpoint."""
    from pipelines.log import witnessing
    from pipelines.log.writer import LedgerError
    from pipelines.tlog import note

    settings = Settings.from_existing_home()
    with reported_as("cosign", witnessing.WitnessConfigError, LedgerError, note.NoteError, OSError, exit_code=USAGE):
        result = witnessing.collect_cosignatures(settings, timeout=timeout)
    for outcome in result.outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        detail = f"cosigned at {outcome.timestamp}" if outcome.ok else outcome.message
        sys.stdout.write(f"{mark} {outcome.witness} {outcome.url}: {detail}\n")
    sys.stdout.write(result.message + "\n")
    if result.failed:
        raise typer.Exit(1)


# -- sensorlog witness … ---------------------------------------------------------------------------


def _open_witness(directory: str):
    from pipelines.log import witness
    from pipelines.tlog import note

    with reported_as("witness", witness.WitnessError, note.NoteError, OSError, exit_code=USAGE):
        return witness.Witness(directory)


@witness_app.command("init")
def witness_init_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    name: str = typer.Option(..., "--name", help="The witness's key name, a schema-less URL (witness.example/w1)"),
) -> None:
    """Create a witness: a new cosigner key (mode 0600) and an empty list of accepted logs."""
    from pipelines.log import witness
    from pipelines.tlog import note

    with reported_as("witness init", witness.WitnessError, note.NoteError, OSError, exit_code=USAGE):
        w = witness.init_witness(directory, name)
    sys.stdout.write(f"witness {w.name} created in {directory}\nvkey {w.vkey}\n")


@witness_app.command("add-log")
def witness_add_log_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    vkey: str = typer.Option(..., "--vkey", help="File holding the log's verifier key (e.g. log/log.vkey)"),
    origin: str = typer.Option(None, "--origin", help="The log's origin line (default: the key's name)"),
) -> None:
    """Accept checkpoints of a log signed by the given key."""
    from pipelines.log import witness
    from pipelines.tlog import note

    try:
        text = Path(vkey).read_text().strip()
    except OSError as exc:
        raise UsageError(f"witness add-log: cannot read {vkey}: {exc.strerror}") from exc
    with reported_as("witness add-log", witness.WitnessError, note.NoteError, ValueError, OSError, exit_code=USAGE):
        added = witness.add_log(directory, text, origin)
    sys.stdout.write(f"accepting checkpoints of {added} signed by {text}\n")


@witness_app.command("cosign")
def witness_cosign_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    request: str = typer.Argument("-", help="An add-checkpoint request body (file, or - for stdin)"),
) -> None:
    """Offline add-checkpoint: check a request body and print the cosignature line (exit 1 on refusal)."""
    from pipelines.log import witness

    w = _open_witness(directory)
    try:
        body = sys.stdin.buffer.read() if request == "-" else Path(request).read_bytes()
    except OSError as exc:
        raise UsageError(f"witness cosign: cannot read {request}: {exc.strerror}") from exc
    # A refusal (witness.Refusal) reaches the boundary: "refused (HTTP <status>…): <why>", exit 1.
    with reported_as("witness cosign", witness.WitnessError, OSError, exit_code=USAGE):
        lines = w.add_checkpoint(body)
    sys.stdout.write(lines)


@witness_app.command("serve")
def witness_serve_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not log each request to stderr"),
) -> None:
    """Serve POST /add-checkpoint (and GET /<sha256(origin)>/checkpoint) over HTTP until interrupted."""
    from pipelines.log import witness

    w = _open_witness(directory)
    if not 0 <= port <= 65535:
        raise UsageError(f"witness serve: --port {port} is not a TCP port")
    try:
        server = witness.make_server(w, host, port, quiet=quiet)
    except OSError as exc:
        raise UsageError(f"witness serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sys.stdout.write(f"witness {w.name} listening on {server.url} (POST {server.url}/add-checkpoint)\n"
                     f"vkey {w.vkey}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

