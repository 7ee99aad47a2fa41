"""A landed file's validation summary: rows checked and failed per expectation, per table.

The summary is what a batch's manifest carries as ``validation``::

    {"<table>": {"rows": <rows checked>, "failed": {"<reason>": <rows failing it>, ...}}, ...}

``reason`` is the quarantine reason: ``gx:<expectation type>[<column>]`` for a suite's expectation
(``pipelines.ingest.validate.reason_for``), and ``registry:``, ``clock:``, ``plausibility:`` or
``privacy:`` for the checks that need outside knowledge. Only failing checks are listed; a row failing
two checks counts under both. Lines that could not be parsed into a row are not in it (the manifest's
``quarantined`` counts them with the rest).

When anything fails, one WARNING line through ``logging`` (so an Airflow task's log shows it) names the
file, its line count and each failing expectation with its count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("pipelines.quality")

# How many failing checks the WARNING line names before it says "and N more".
LINE_REASONS = 12


def add(summary: dict[str, dict[str, Any]], table: str, rows: int, failed: Mapping[str, int]) -> None:
    """Add one validation call's counts for ``table`` into ``summary`` (in place)."""
    entry = summary.setdefault(table, {"rows": 0, "failed": {}})
    entry["rows"] += rows
    for reason, n in failed.items():
        entry["failed"][reason] = entry["failed"].get(reason, 0) + n
    entry["failed"] = dict(sorted(entry["failed"].items()))


def failing(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Rows failing each check over all tables, as ``<table>: <reason>`` → count."""
    return {f"{table}: {reason}": n for table, entry in summary.items() for reason, n in entry["failed"].items()}


def warning_line(source: str, lines: int, unparsed: int, summary: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The WARNING line for a file, or None when every line parsed and every row passed."""
    counts = failing(summary)
    if not counts and not unparsed:
        return None
    rows = sum(entry["rows"] for entry in summary.values())
    named = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{reason} {n}" for reason, n in named[:LINE_REASONS]]
    if len(named) > LINE_REASONS:
        parts.append(f"and {len(named) - LINE_REASONS} more")
    text = f"validation of {source}: {lines} lines, {rows} rows checked"
    if unparsed:
        text += f", {unparsed} lines not parsed"
    if parts:
        text += "; failing: " + ", ".join(parts)
    return text


def log_file(source: str, lines: int, unparsed: int, summary: Mapping[str, Mapping[str, Any]]) -> None:
    line = warning_line(source, lines, unparsed, summary)
    if line is not None:
        log.warning("%s", line)


def result_path(key: Iterable[str]) -> str:
    """Where GX's filesystem store keeps the result of ``key`` (a ValidationResultIdentifier's tuple),
    relative to the quality folder; ``docs_path`` is its Data Docs page, relative to the same folder
    for the operator's site and to ``<site>/quality/`` for the portal's public copy."""
    return "validations/" + "/".join(key) + ".json"


def key_of(result: str) -> tuple[str, ...]:
    """The key of a stored result from its ``result_path``."""
    return tuple(result.removeprefix("validations/").removesuffix(".json").split("/"))


def docs_path(key: Iterable[str]) -> str:
    return "data_docs/validations/" + "/".join(key) + ".html"


def result_refs(results: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], ...]:
    """The manifest's ``validation_results``: for each stored result (``{"table", "key"}``) of a batch."""
    return tuple(
        {"table": str(r["table"]), "result": result_path(r["key"]), "docs": docs_path(r["key"])} for r in results
    )
