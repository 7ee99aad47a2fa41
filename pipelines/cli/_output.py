"""What the ``sensorlog`` commands print, and where: the one pair of consoles, the progress bars, error
messages, the per-deployment summary and the text of proofs.

Results go to stdout (``console``); errors, warnings and lists of what was written go to stderr
(``err_console``). Piped stdout gets a fixed width of 130 columns, so tables are not squeezed to 80.
Lines a reader may copy (paths, hashes, proof lines) are printed with ``line``, which never wraps.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.log.prove import ConsistencyProof, EventProof

console = Console() if sys.stdout.isatty() else Console(width=130)
# soft_wrap: a path or hash cut in two by the terminal width could not be copied or grepped.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

ProgressFactory = Callable[[str, int], Callable[[str], None]]

# "registry: …", "not staged: …", "--since: …", "witness init: …": the part of a message naming its source.
_SOURCE = re.compile(r"-{0,2}[a-z][a-z -]*")


def line(text: str) -> None:
    """One line on stdout (rich markup allowed), never wrapped."""
    console.print(text, soft_wrap=True, highlight=False)


def print_error(message: str) -> None:
    """An error on stderr, one message per line: the source a line starts with (``registry:``) in red,
    or the whole line when it names none."""
    for text in message.splitlines() or [""]:
        source, sep, rest = text.partition(": ")
        if sep and _SOURCE.fullmatch(source):
            err_console.print(Text.assemble((f"{source}:", "red"), f" {rest}"))
        else:
            err_console.print(Text(text, style="red"))


@contextmanager
def progress_bars() -> Iterator[ProgressFactory]:
    """Yields a factory: ``factory(label, total)`` returns a tick function for one progress bar."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:

        def factory(label: str, total: int) -> Callable[[str], None]:
            task_id = bars.add_task(label, total=total)
            return lambda _item: bars.advance(task_id)

        yield factory


@contextmanager
def leaf_progress(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """``verify``'s bar on stderr, gone when done: yields ``update(done, total)``."""
    with Progress(
        TextColumn("leaves"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=quiet,
    ) as bars:
        task = bars.add_task("verify", total=None)
        yield lambda done, total: bars.update(task, completed=done, total=total)


def print_summary(s: Settings, totals: dict | None) -> None:
    """``sensorlog status`` (and the end of ``run`` and ``demo``): per deployment, what is published and
    quarantined; the conservation totals of ``totals`` (this run) or of every batch; where things are."""
    from pipelines import flow, storage, summary

    rows = summary.per_deployment(s)
    table = Table(title="sensorlog: per deployment", show_footer=True)
    table.add_column("deployment", footer="total")
    table.add_column("kind")
    for name, attr in (
        ("collected", "collected"),
        ("deleted", "deleted"),
        ("accessed", "accesses"),
        ("quarantined", "quarantined"),
    ):
        table.add_column(name, justify="right", footer=f"{sum(getattr(r, attr) for r in rows):,}")
    for r in rows:
        style = "red" if r.quarantined else None
        table.add_row(
            r.deployment_id,
            r.kind,
            f"{r.collected:,}",
            f"{r.deleted:,}",
            f"{r.accesses:,}",
            f"{r.quarantined:,}",
            style=style,
        )
    console.print(table)
    console.print("collected/deleted count records; accessed counts access events; quarantined counts rows.")
    unattributed = summary.unattributed_quarantine(s)
    if unattributed:
        console.print(
            f"[yellow]{unattributed} quarantined rows or files name no deployment[/yellow] "
            f"(unreadable lines or files): see {s.quarantine}"
        )
    label = "this run" if totals else "all batches"
    totals = totals or summary.manifest_totals(s)
    console.print(
        f"{label}: {totals['batches']} batches, {totals['rows_in']:,} rows in = {totals['published']:,} published"
        f" + {totals['quarantined']:,} quarantined + {totals['duplicates']:,} duplicates dropped;"
        f" {totals['file_errors']} unreadable files quarantined whole"
    )
    if totals.get("declarations"):
        console.print(f"declarations logged: {totals['declarations']} deployment record version(s)")
    for label, where in (
        ("published", s.published),
        ("manifests", s.manifests),
        ("quarantine", s.quarantine),
        ("log", s.log),
    ):
        if storage.exists(where):
            console.print(f"{label:<11} {where}")
    for skipped in flow.landing(s).skipped:
        console.print(f"[yellow]skipped in the landing zone:[/yellow] {escape(str(skipped))}")


def event_proof_text(p: EventProof) -> str:
    """What ``prove --event`` prints: ``#`` comment lines, the leaf bytes on one line, an empty line,
    then the tlog-proof verbatim (from ``c2sp.org/tlog-proof@v1`` to the end)."""
    return (
        f"# event       {p.source}/{p.event_id}\n"
        f"# table       {p.table}\n"
        f"# file        {p.file}\n"
        f"# leaf index  {p.index}\n"
        f"# leaf hash   {p.leaf_hash.hex()}  (SHA-256 of 0x00 || the leaf bytes below)\n"
        f"# checkpoint  {p.checkpoint.origin}, tree size {p.checkpoint.size}\n"
        f"# log key     {p.vkey}\n"
        "# leaf bytes (RFC 8785 JSON of the row, one line; also base64 in the proof's extra line):\n"
        f"{p.leaf_bytes.decode('utf-8')}\n"
        "\n"
        f"{p.proof}"
    )


def consistency_text(p: ConsistencyProof, *, hex_hashes: bool = False) -> str:
    """``#`` comment lines (sizes and roots), then one proof hash per line, in RFC 9162 order,
    base64 (as in tlog-proof and checkpoints) or lowercase hex."""

    def enc(h: bytes) -> str:
        return h.hex() if hex_hashes else base64.b64encode(h).decode()

    def source(signed: bool, size: int) -> str:
        return f"signed checkpoint log/checkpoints/{size}" if signed else "tile store, no checkpoint at this size"

    lines = [
        f"# consistency proof (RFC 9162 section 2.1.4) from tree size {p.old_size} to {p.new_size},"
        f" {len(p.hashes)} {'hex' if hex_hashes else 'base64'} hash(es), one per line",
        f"# old root {enc(p.old_root)}  ({source(p.old_signed, p.old_size)})",
        f"# new root {enc(p.new_root)}  ({source(p.new_signed, p.new_size)})",
        *(enc(h) for h in p.hashes),
    ]
    return "\n".join(lines) + "\n"
