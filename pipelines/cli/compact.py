"""``sensorlog compact``: merge small published files (what the ingest DAG's ``compact`` task does).

Exit 0 when the partitions are compacted (or nothing needed it), 1 when compaction was refused or
failed (a file no manifest lists, a changed file, an S3 root, a filesystem that cannot exchange
directories), 2 for a bad option. Prints one summary line.
"""

from __future__ import annotations

import typer

from pipelines.cli._output import console
from pipelines.config import Settings


def compact_cmd(
    max_rows: int = typer.Option(500_000, "--max-rows", min=1, help="Rows per compacted file at most"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be merged; change nothing"),
) -> None:
    """Merge each partition's small Parquet files into few large ones; verify and prove follow the records."""
    from pipelines.publish import compact

    result = compact.compact(Settings.from_existing_home(), max_rows, dry_run=dry_run)
    verb = "would merge" if dry_run else "merged"
    if not result.merged:
        console.print(f"[green]ok[/green] nothing to compact: {result.files_before} files")
        return
    console.print(
        f"[green]ok[/green] {verb} {result.merged} files into {result.written} in {result.partitions} partitions"
        f" ({result.rows} rows): {result.files_before} → {result.files_after} files in {result.seconds:.1f} s"
    )
