"""``sensorlog verify`` and ``sensorlog prove`` (registered on the app in ``pipelines.cli``).

verify: a verdict with ``rich``; exit 0 only when every check holds, 1 when one does not (the first
failure is repeated on the last line), 2 for a usage error.

prove: plain text on stdout, so that it can be piped or saved (rich would wrap long lines):

* ``--event SOURCE/ID`` (or ``--source`` and ``--id``, or ``--index N``): ``#`` comment lines, the
  leaf bytes (RFC 8785 JSON) on one line, an empty line, then the c2sp.org/tlog-proof@v1 text up to
  the end, signed checkpoint included. ``--proof-file``/``--leaf-file`` also write those two parts.
* ``--consistency M N``: ``#`` lines with the two roots, then the RFC 9162 consistency proof from
  tree size M to N, one hash per line, base64 (default) or hex (``--hex``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines import log_export, logsource, prove, prove_static, site_files, verify
from pipelines.config import Settings
from pipelines.tlog.tiles import StoreError

# soft_wrap: a file path or hash cut in two by the terminal width could not be copied or grepped.
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


WITNESS_HELP = "A witness's verifier key (file or text); repeat for more"


def _settings(log: str | None, published: str | None, manifests: str | None) -> Settings:
    s = Settings.from_env()
    overrides = {k: str(Path(v).resolve()) if "://" not in v else v
                 for k, v in (("log", log), ("published", published), ("manifests", manifests)) if v}
    return dataclasses.replace(s, **overrides)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        err_console.print(f"[red]{what}:[/red] cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from exc


def _default_site(log: str) -> str | None:
    """A site's root, when ``log`` is its ``log/`` folder and the signed file list sits next to it."""
    root = logsource.parent(log)
    try:
        logsource.open_source(root).read(site_files.FILE_NAME)
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
    if log:
        log_where = log
        data_where = data or logsource.parent(log).rstrip("/") + "/data"
        manifests_where = manifests
        site_where = site or _default_site(log)
    else:
        s = Settings.from_env()
        log_where, data_where = s.log, data or s.published
        manifests_where, site_where = manifests or s.manifests, site
    witness = witness or []
    if min_witnesses < 0 or (min_witnesses > len(witness) and witness):
        err_console.print("[red]usage:[/red] --min-witnesses must be between 0 and the number of --witness keys")
        raise typer.Exit(2)
    since_text = _read(Path(since), "--since") if since else None
    expected = _read(Path(vkey), "--vkey") if vkey else None
    witness_keys = tuple(_key_text(w, "--witness") for w in witness)
    if not quiet:
        console.print(f"[bold]sensorlog verify[/bold]  log {log_where}  data {data_where}"
                      + (f"  site {site_where}" if site_where else ""))
    try:
        wheres = (log_where, data_where, manifests_where, site_where)
        sources = [logsource.open_source(w) if w else None for w in wheres]
    except logsource.SourceError as exc:
        err_console.print(f"[red]verify:[/red] {exc}")
        raise typer.Exit(2) from exc
    with Progress(
        TextColumn("leaves"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=quiet,
    ) as bars:
        task = bars.add_task("verify", total=None)
        report = verify.verify_log(
            sources[0], sources[1], sources[2],
            since=since_text, since_name=f"--since {since}" if since else "--since checkpoint",
            expected_vkey=expected, witnesses=witness_keys, min_witnesses=min_witnesses, strict=strict,
            site=sources[3],
            progress=lambda done, total: bars.update(task, completed=done, total=total),
        )
    if not quiet:
        for line in report.passed:
            console.print(f"[green]✓[/green] {line}")
    for problem in report.problems:
        console.print(f"[red]✗[/red] [bold]{problem.subject}[/bold]: {problem.message}")
    for check, count in report.suppressed.items():
        what = "later stored checkpoints differ too" if check == "root" else f"more {check} problems not shown"
        console.print(f"[red]✗[/red] … and {count} {what}")
    if not quiet:
        for line in report.warnings:
            console.print(f"[yellow]![/yellow] {line}")
    if report.ok:
        size = report.checkpoint.size if report.checkpoint else 0
        console.print(
            f"[bold green]VERIFIED[/bold green]: {report.files} files, {report.rows} rows and"
            f" {report.manifests} manifests make up the signed tree of size {size}"
        )
        return
    first = report.first
    console.print(f"[bold red]FAILED[/bold red] ({len(report.problems)} problems); first: {first}")
    raise typer.Exit(1)


def _key_text(value: str, what: str) -> str:
    """A verifier key given as a file path or as the key text itself."""
    path = Path(value)
    if path.is_file():
        return _read(path, what).strip()
    if "+" in value and " " not in value.strip():
        return value.strip()
    err_console.print(f"[red]{what}:[/red] {value} is neither a file nor a verifier key")
    raise typer.Exit(2)


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
    chosen = [x is not None for x in (event, source or event_id, index, consistency)]
    if sum(chosen) != 1 or (source is None) != (event_id is None):
        err_console.print("[red]usage:[/red] give one of --event SOURCE/ID, --source S --id I, --index N,"
                          " --consistency M N")
        raise typer.Exit(2)
    try:
        if event is not None:
            source, event_id = prove.split_event(event)
        if log:
            static = prove_static.StaticLog.open(logsource.open_source(log))
            data_src = logsource.open_source(data) if data else None
            if consistency is not None:
                typer.echo(prove.format_consistency(prove_static.consistency(static, *consistency),
                                                    hex_hashes=hex_hashes), nl=False)
                return
            result = (prove_static.prove_index(static, index, data_src) if index is not None
                      else prove_static.prove_event(static, source, event_id, data_src))
        else:
            s = _settings(None, published, manifests)
            if consistency is not None:
                typer.echo(prove.format_consistency(prove.consistency(s, *consistency), hex_hashes=hex_hashes),
                           nl=False)
                return
            result = prove.prove_index(s, index) if index is not None else prove.prove_event(s, source, event_id)
    except (prove.ProveError, StoreError, ValueError, OSError) as exc:
        err_console.print(f"[red]prove:[/red] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(prove.format_event_proof(result), nl=False)
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
    text = _read(Path(proof), "proof")
    key = _key_text(vkey, "--vkey")
    witness = witness or []
    leaf_bytes = None
    if leaf_data:
        try:
            leaf_bytes = Path(leaf_data).read_bytes().rstrip(b"\n")
        except OSError as exc:
            err_console.print(f"[red]--leaf-data:[/red] cannot read {leaf_data}: {exc.strerror}")
            raise typer.Exit(2) from exc
    try:
        checked = prove_static.check_proof(text, key, leaf_bytes=leaf_bytes,
                                           witnesses=[_key_text(w, "--witness") for w in witness],
                                           min_witnesses=min_witnesses)
    except prove.ProveError as exc:
        console.print(f"[bold red]INVALID[/bold red]: {exc}")
        raise typer.Exit(1) from exc
    row = checked.row or {}
    what = (f"manifest of batch {row.get('batch_id')}" if row.get("table") == "manifest"
            else f"{row.get('table')} event {row.get('source')}/{row.get('event_id')}")
    console.print(f"[green]✓[/green] leaf {checked.index} ({what}), leaf hash {checked.leaf_hash.hex()}")
    console.print(f"[green]✓[/green] checkpoint signed by the log key: {checked.checkpoint.origin},"
                  f" size {checked.checkpoint.size}")
    if checked.witnesses:
        console.print(f"[green]✓[/green] cosigned by {', '.join(checked.witnesses)}")
    console.print(f"[bold green]VALID[/bold green]: leaf {checked.index} is in the log's tree of size"
                  f" {checked.checkpoint.size}")


def log_export_cmd(
    out: str = typer.Option(..., "--out", help="Folder or s3:// prefix to write the static log to"),
    with_data: bool = typer.Option(False, "--with-data", help="Also copy the logged Parquet files under data/"),
) -> None:
    """Write the complete static log (tlog-tiles tiles and entry bundles, checkpoints, key, manifests)."""
    try:
        result = log_export.export_to(Settings.from_env(), out, with_data=with_data)
    except (log_export.ExportError, OSError, ValueError) as exc:
        err_console.print(f"[red]log export:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"ok tree size {result.size}: {result.files} files ({result.entries} entries,"
                  f" {result.data_files} data files) → {out}/log in {result.seconds} s")
