"""``sensorlog witness …`` (run a witness) and ``sensorlog cosign`` (the log operator collects
cosignatures), registered on the app in ``pipelines.cli``.

Exit codes: 0 success; 1 a refusal (``witness cosign``) or a witness that did not cosign
(``cosign``); 2 a usage or configuration error (missing or malformed key, directory, file or option).
Messages go to stderr; cosignature lines and the served URL go to stdout, as plain text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pipelines import witness, witnessing
from pipelines.config import Settings
from pipelines.ledger import LedgerError
from pipelines.tlog import note

witness_app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Run a transparency-log witness (c2sp.org/tlog-witness): check that logs only grow, then cosign.",
)

DIR_HELP = "The witness's state directory (key, accepted logs, last cosigned checkpoint per log)"


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(message.rstrip("\n") + "\n")
    return typer.Exit(code)


def _open(directory: str) -> witness.Witness:
    try:
        return witness.Witness(directory)
    except (witness.WitnessError, note.NoteError, OSError) as exc:
        raise _fail(f"witness: {exc}", 2) from None


@witness_app.command("init")
def init_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    name: str = typer.Option(..., "--name", help="The witness's key name, a schema-less URL (witness.example/w1)"),
) -> None:
    """Create a witness: a new cosigner key (mode 0600) and an empty list of accepted logs."""
    try:
        w = witness.init_witness(directory, name)
    except (witness.WitnessError, note.NoteError, OSError) as exc:
        raise _fail(f"witness init: {exc}", 2) from None
    sys.stdout.write(f"witness {w.name} created in {directory}\nvkey {w.vkey}\n")


@witness_app.command("add-log")
def add_log_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    vkey: str = typer.Option(..., "--vkey", help="File holding the log's verifier key (e.g. log/log.vkey)"),
    origin: str = typer.Option(None, "--origin", help="The log's origin line (default: the key's name)"),
) -> None:
    """Accept checkpoints of a log signed by the given key."""
    try:
        text = Path(vkey).read_text().strip()
    except OSError as exc:
        raise _fail(f"witness add-log: cannot read {vkey}: {exc.strerror}", 2) from None
    try:
        added = witness.add_log(directory, text, origin)
    except (witness.WitnessError, note.NoteError, ValueError, OSError) as exc:
        raise _fail(f"witness add-log: {exc}", 2) from None
    sys.stdout.write(f"accepting checkpoints of {added} signed by {text}\n")


@witness_app.command("cosign")
def cosign_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    request: str = typer.Argument("-", help="An add-checkpoint request body (file, or - for stdin)"),
) -> None:
    """Offline add-checkpoint: check a request body and print the cosignature line (exit 1 on refusal)."""
    w = _open(directory)
    try:
        body = sys.stdin.buffer.read() if request == "-" else Path(request).read_bytes()
    except OSError as exc:
        raise _fail(f"witness cosign: cannot read {request}: {exc.strerror}", 2) from None
    try:
        lines = w.add_checkpoint(body)
    except witness.Conflict as exc:
        raise _fail(f"refused (HTTP 409, recorded size {exc.recorded_size}): {exc.message}", 1) from None
    except witness.Refusal as exc:
        raise _fail(f"refused (HTTP {exc.status}): {exc.message}", 1) from None
    except (witness.WitnessError, OSError) as exc:
        raise _fail(f"witness cosign: {exc}", 2) from None
    sys.stdout.write(lines)


@witness_app.command("serve")
def serve_cmd(
    directory: str = typer.Option(..., "--dir", help=DIR_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not log each request to stderr"),
) -> None:
    """Serve POST /add-checkpoint (and GET /<sha256(origin)>/checkpoint) over HTTP until interrupted."""
    w = _open(directory)
    if not 0 <= port <= 65535:
        raise _fail(f"witness serve: --port {port} is not a TCP port", 2)
    try:
        server = witness.make_server(w, host, port, quiet=quiet)
    except OSError as exc:
        raise _fail(f"witness serve: cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    sys.stdout.write(f"witness {w.name} listening on {server.url} (POST {server.url}/add-checkpoint)\n"
                     f"vkey {w.vkey}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def operator_cosign_cmd(
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each witness"),
) -> None:
    """Ask the configured witnesses (SENSORLOG_WITNESSES) to cosign the log's latest checkpoint."""
    settings = Settings.from_env()
    try:
        result = witnessing.collect_cosignatures(settings, timeout=timeout)
    except (witnessing.WitnessConfigError, LedgerError, note.NoteError, OSError) as exc:
        raise _fail(f"cosign: {exc}", 2) from None
    for outcome in result.outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        detail = f"cosigned at {outcome.timestamp}" if outcome.ok else outcome.message
        sys.stdout.write(f"{mark} {outcome.witness} {outcome.url}: {detail}\n")
    sys.stdout.write(result.message + "\n")
    if result.failed:
        raise typer.Exit(1)
