"""What the ``sensorlog`` commands print, and where: the one pair of consoles, the progress bars, error
messages, the per-deployment summary and the text of proofs.

Results go to stdout (``console``); errors, warnings and lists of what was written go to stderr
(``err_console``). Piped stdout never wraps a line and gets a fixed width of 130 columns for the tables
rich draws; ``print_table`` prints a table as tab-separated lines instead when piped or when it is wider
than the terminal. Lines a reader may copy (paths, hashes, proof lines) are printed with ``line``, which
never wraps.
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
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.log.prove import ConsistencyProof, EventProof

# Piped, no line is ever broken by rich (soft_wrap): a reader greps or cuts whole lines; tables are drawn
# 130 wide, or as tab-separated lines by print_table.
console = Console() if sys.stdout.isatty() else Console(width=130, soft_wrap=True)
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


class _RowsPerSecond(ProgressColumn):
    """Rows a bar's items held, per second since it started (blank until one is counted)."""

    def render(self, task: Task) -> Text:
        rows = task.fields.get("rows", 0)
        elapsed = task.finished_time if task.finished else task.elapsed  # a done bar's rate stops moving
        if not rows or not elapsed:
            return Text("")
        return Text(f"{rows / elapsed:,.0f} rows/s", style="progress.data.speed")


class _Current(ProgressColumn):
    """The file a bar is on: its name only (no folder), cut with an ellipsis when the line is short of room."""

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("current", ""), no_wrap=True, overflow="ellipsis", style="dim")


def _batch_of(settings: Settings, item: str) -> tuple[str, int] | None:
    """(its landed file's name, rows in) when ``item`` is a batch id with a manifest, else None."""
    from pipelines import layout, storage
    from pipelines.records import Manifest

    if "/" in item or "\\" in item:
        return None  # a file's path or URI, not a batch id
    uri = layout.manifest_file(settings, item)
    try:
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
    except Exception:  # noqa: BLE001 - a progress bar never fails a run; the item is shown as given
        return None
    return manifest.source_file.rsplit("/", 1)[-1], manifest.rows_in


@contextmanager
def progress_bars(settings: Settings | None = None) -> Iterator[ProgressFactory]:
    """Yields a factory: ``factory(label, total)`` returns a tick function for one progress bar. Each
    bar shows done/total, its ETA and the file it is on; given ``settings``, a tick naming a published
    batch (``flow.run``'s publish bar) also counts that batch's rows, for rows per second."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        _RowsPerSecond(),
        _Current(),
        console=console,
        transient=False,
    ) as bars:

        def factory(label: str, total: int) -> Callable[[str], None]:
            task_id = bars.add_task(label, total=total, rows=0, current="")
            counted = [0]

            def tick(item: str) -> None:
                batch = _batch_of(settings, item) if settings is not None else None
                name, rows = batch if batch is not None else (item.rstrip("/").rsplit("/", 1)[-1], 0)
                counted[0] += rows
                bars.update(task_id, advance=1, rows=counted[0], current=name)

            return tick

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


def print_table(table: Table) -> None:
    """A table on stdout: drawn by rich on a terminal wide enough for all of it; otherwise (piped, or a
    terminal narrower than the table) as plain lines, the header then one line per row and the footer,
    cells separated by tabs, so that no id, path or number is cut, folded or wrapped mid-word."""
    # Measured with room to spare: a table measured at the console's width is squeezed to fit it.
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    if console.is_terminal and natural <= console.width:
        console.print(table)
        return

    def plain(cell: object) -> str:
        return Text.from_markup(cell).plain if isinstance(cell, str) else str(getattr(cell, "plain", cell))

    columns = table.columns
    lines = [[plain(c.header) for c in columns]]
    lines += [list(cells) for cells in zip(*([plain(cell) for cell in c.cells] for c in columns), strict=True)]
    if table.show_footer:
        lines.append([plain(c.footer) for c in columns])
    # Straight to the file: rich would expand the tabs to spaces.
    console.file.write("".join("\t".join(cells) + "\n" for cells in lines))
    console.file.flush()


def print_summary(s: Settings, totals: dict | None) -> None:
    """``sensorlog status`` (and the end of ``run`` and ``demo``): per deployment, what is published and
    quarantined; the conservation totals of ``totals`` (this run) or of every batch; where things are.

    Every quarantined row is in the table's quarantined column, the rows that name no deployment on
    a row of their own, so its total is the quarantined rows the manifests count; files quarantined
    whole are counted apart (they hold no row), from the same query (``summary.quarantine_counts``)."""
    from pipelines import flow, resolutions, storage, summary
    from pipelines.ingest import corrections

    rows = summary.per_deployment(s)
    counts = summary.quarantine_counts(s)
    table = Table(title="sensorlog: per deployment", show_footer=True)
    # Ids and kinds are never wrapped (a reader copies or greps them); print_table falls back to plain
    # lines when the table does not fit.
    table.add_column("deployment", footer="total", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    cells = [(r.deployment_id, r.kind, r.collected, r.deleted, r.accesses, r.quarantined) for r in rows]
    if counts.unattributed:
        cells.append(("(no deployment)", "(unreadable lines)", 0, 0, 0, counts.unattributed))
    for index, name in enumerate(("collected", "deleted", "accessed", "quarantined"), start=2):
        footer = f"{sum(int(c[index]) for c in cells):,}"
        table.add_column(name, justify="right", footer=footer, no_wrap=True)
    for deployment_id, kind, *numbers in cells:
        quarantined = numbers[-1]
        table.add_row(deployment_id, kind, *(f"{n:,}" for n in numbers), style="red" if quarantined else None)
    print_table(table)
    line("collected/deleted count records; accessed counts access events; quarantined counts rows.")
    if counts.unattributed or counts.files:
        line(
            f"[yellow]quarantine: {counts.rows:,} rows ({counts.unattributed:,} of them unreadable lines that name"
            f" no deployment) and {counts.files:,} files quarantined whole[/yellow]: see {escape(s.quarantine)}"
        )
    entries = resolutions.by_batch(s)
    if entries:
        rows_q, open_q = sum(e.rows for e in entries), sum(e.open for e in entries)
        line(
            f"quarantine resolutions: {rows_q - open_q:,} of {rows_q:,} resolved, {open_q:,} open"
            " (a file quarantined whole counts as one; `sensorlog quarantine list --open`)"
        )
    if superseded := corrections.superseded_in(s):
        line(
            f"{len(superseded)} batch(es) superseded by a correction: their rows stay in the log and are left out"
            " of the counts above (docs/corrections.md)"
        )
    label = "this run" if totals else "all batches"
    totals = totals or summary.manifest_totals(s)
    line(
        f"{label}: {totals['batches']} batches, {totals['rows_in']:,} rows in = {totals['published']:,} published"
        f" + {totals['quarantined']:,} quarantined + {totals['duplicates']:,} duplicates dropped;"
        f" {totals['file_errors']} unreadable files quarantined whole"
    )
    if totals.get("declarations"):
        line(f"declarations logged: {totals['declarations']} deployment record version(s)")
    for label, where in (
        ("published", s.published),
        ("manifests", s.manifests),
        ("quarantine", s.quarantine),
        ("log", s.log),
    ):
        if storage.exists(where):
            line(f"{label:<11} {escape(where)}")
    for skipped in flow.landing(s).skipped:
        line(f"[yellow]skipped in the landing zone:[/yellow] {escape(str(skipped))}")


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
