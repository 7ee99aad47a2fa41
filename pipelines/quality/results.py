"""The stored Validation Results of published batches.

Staging stores a result per validation call (per table, and per ``GX_BATCH_ROWS`` rows of a large
file) under the batch id (GX's run name) and records their keys; a batch staged again (its staging went
stale, or two processes staged the same bytes) stores new ones. Once the batch's manifest is written,
only the results it names are kept, in both stores, so each published batch has exactly its results.

A call over the rows of several files (``stage.stage_files_together``) stores one result under a run
name of its group's (``<first batch id>-and-<n>``), which every batch of the group names: it is never
removed here, since another batch's manifest may name it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipelines import layout
from pipelines.config import Settings
from pipelines.quality.project import suite_name
from pipelines.schemas import EVENT_TABLES


def _run_dirs(store: Path, batch_id: str) -> Iterable[Path]:
    # <store>/<suite name, a folder per dotted part>/<run name = batch id>/<run time>/<batch identifier>.json
    for table in EVENT_TABLES:
        run = store.joinpath(*suite_name(table).split("."), batch_id)
        if run.is_dir():
            yield from (p for p in run.iterdir() if p.is_dir())


def keep_only(settings: Settings, batch_id: str, results: Iterable[Mapping[str, Any]]) -> None:
    """Remove the stored results of ``batch_id`` other than ``results`` (``{"table", "key"}``)."""
    kept = {tuple(r["key"][-3:-1]) for r in results}  # (run name, run time) of each kept result
    for store in (layout.validations_dir(settings), layout.public_validations_dir(settings)):
        for run_time in list(_run_dirs(Path(store), batch_id)):
            if (batch_id, run_time.name) not in kept:
                shutil.rmtree(run_time, ignore_errors=True)
