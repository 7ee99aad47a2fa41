"""Run the audit over the published log and write its outputs (what the CLI and the DAG call)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout, storage, summary
from pipelines.audit import context, findings, relocation, retention, unclear
from pipelines.audit.model import DUE_SOON, AuditOptions, AuditResult, default_as_of, iso, severity_rank
from pipelines.config import Settings
from pipelines.errors import GATE, SensorlogError
from pipelines.log import writer
from pipelines.registry import Registry, declarations, home_registry
from pipelines.registry.declarations import Declared

NO_LIMIT = 2**62  # leaf_index bound when there is no checkpoint to bound it


class AuditGateFailed(SensorlogError, RuntimeError):
    """Findings at or above the configured severity exist (the DAG task fails with this; the
    command line exits 3)."""

    exit_code = GATE


def checkpoint_info(settings: Settings) -> dict[str, Any] | None:
    """The latest signed checkpoint as {origin, size, root_hash}, None when there is no log (the audit
    also runs on a published folder without one); a checkpoint that fails to verify is reported, not
    hidden.
    """
    try:
        checkpoint = writer.latest_checkpoint(settings)
    except Exception as exc:  # noqa: BLE001 - any failure to verify is itself what the auditor must see
        return {"error": f"{type(exc).__name__}: {exc}"}
    if checkpoint is None:
        return None
    return {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
        "root_hash_hex": checkpoint.root_hash.hex(),
    }


def horizon(as_of: datetime, timezone: str) -> tuple[datetime, date]:
    """(end of the last audited local day, that day). ``as_of`` at local midnight audits up to it."""
    day = context.local_date(as_of, timezone)
    start = context.local_midnight(day, timezone)
    if start == as_of:
        return as_of, day - timedelta(days=1)
    return context.local_midnight(day + timedelta(days=1), timezone), day


def _params(con: duckdb.DuckDBPyConnection, options: AuditOptions, as_of: datetime, tz: str) -> None:
    until, last_day = horizon(as_of, tz)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE params AS
        SELECT $as_of::TIMESTAMPTZ AS as_of, $until::TIMESTAMPTZ AS until, $last_day::DATE AS last_day,
               $grace::BIGINT AS grace_us, $due_soon::BIGINT AS due_soon_us, $silence::INTEGER AS silence_days,
               $deployment::VARCHAR AS deployment, NULL::DATE AS log_first_day
        """,
        {
            "as_of": as_of,
            "until": until,
            "last_day": last_day,
            "grace": options.grace // timedelta(microseconds=1),
            "due_soon": DUE_SOON // timedelta(microseconds=1),
            "silence": options.silence_days,
            "deployment": options.deployment,
        },
    )


def _calendar(con: duckdb.DuckDBPyConnection, tz: str) -> None:
    lo, hi, log_first = retention.span(con)
    (last_day,) = con.execute("SELECT last_day FROM params").fetchall()[0]
    firsts = [context.local_date(t, tz) for t in (lo, log_first) if t is not None]
    lasts = [context.local_date(t, tz) for t in (hi,) if t is not None]
    first = min([*firsts, last_day])
    first = first - timedelta(days=1) if first > date.min else first  # a window in year 1 has no day before
    last = max([*lasts, last_day]) + timedelta(days=1)
    con.register("days", context.calendar_table(first, last, tz))
    if log_first is not None:
        con.execute("UPDATE params SET log_first_day = $d", {"d": context.local_date(log_first, tz)})


def _registry_tables(con: duckdb.DuckDBPyConnection, declared: Declared, deployment: str | None, tz: str) -> None:
    registry = declared.registry
    scoped = Registry({deployment: registry[deployment]}) if deployment else registry
    con.register("policies", context.policy_table(declared))
    con.register("deployments", context.deployment_table(scoped))
    con.register("declared", context.declared_table(registry))
    retroactive = context.retroactive_table(declared, tz)
    if deployment:
        retroactive = retroactive.filter(pc.equal(retroactive.column("deployment_id"), deployment))
    con.register("retroactive", retroactive)
    con.register("unclear", unclear.unclear_table(declared))
    con.register("moves", relocation.undeclared_moves(con, registry, tz))
    con.register("severity", findings.severity_table())


def _access_table(con: duckdb.DuckDBPyConnection, declared: Declared) -> None:
    tuples = con.sql("SELECT DISTINCT deployment_id, day, organisation, role FROM acc").to_arrow_table()
    con.register("denied", context.denied_access(declared, tuples))


def declarations_for(settings: Settings, limit: int, registry: Registry | None = None) -> Declared:
    """What the audit judges against: the declarations logged below ``limit`` when the log holds any,
    else the registry folder (a published folder from before declarations were logged, or built by
    hand). ``registry``, when given, is judged instead (tests, what-if runs)."""
    if registry is not None:
        return Declared.from_registry(registry)
    logged = declarations.load_declared(settings.published, None if limit == NO_LIMIT else limit)
    return logged or Declared.from_registry(home_registry(settings))


def run_audit(settings: Settings, options: AuditOptions | None = None, registry: Registry | None = None) -> AuditResult:
    """Compute the retention ledger, findings and lateness statistics from the published log.

    Only rows covered by the latest checkpoint are read (``leaf_index < size``), so the result is
    exactly what that checkpoint commits to. ``as_of`` defaults to today in the city's time zone
    (``default_as_of``, by ``options.now`` or the clock), never to the newest event: when every feed
    stops, records still fall due and deployments still turn silent.
    """
    options = options or AuditOptions()
    tz = settings.timezone
    checkpoint = checkpoint_info(settings)
    limit = checkpoint["size"] if checkpoint and "size" in checkpoint else NO_LIMIT
    declared = declarations_for(settings, limit, registry)
    if options.deployment and options.deployment not in declared.histories:
        where = "the logged declarations" if declared.logged else f"the registry {settings.registry}"
        raise ValueError(f"deployment {options.deployment!r} is not in {where}")
    con = summary.connect(settings)
    try:
        # No progress bar: it would land in the middle of ``--format json`` output.
        con.execute("SET enable_progress_bar = false; SET TimeZone = 'UTC'")
        newest_in_log = retention.snapshot(con, limit)
        as_of = (options.as_of or default_as_of(tz, options.now)).astimezone(UTC)
        _params(con, options, as_of, tz)
        retention.load_events(con)
        newest = retention.newest_counted(con)
        _calendar(con, tz)
        _registry_tables(con, declared, options.deployment, tz)
        retention.build(con)
        _access_table(con, declared)
        until = con.execute("SELECT until FROM params").fetchall()[0][0].astimezone(UTC)
        return AuditResult(
            as_of=as_of,
            until=until,
            timezone=tz,
            options=options,
            ledger=retention.ledger(con),
            findings=findings.compute(con),
            lateness=retention.lateness(con),
            checkpoint=checkpoint,
            newest_event=newest.astimezone(UTC) if newest else None,
            newest_event_in_log=newest_in_log.astimezone(UTC) if newest_in_log else None,
            declarations="log" if declared.logged else "registry",
        )
    finally:
        con.close()


def _parquet_bytes(table: pa.Table, result: AuditResult) -> bytes:
    # Derived tables are not leaves of the log; they name the checkpoint and moment they came from.
    meta = {
        b"sensorlog.as_of": (iso(result.as_of) or "").encode(),
        b"sensorlog.as_of_date": result.as_of_date.isoformat().encode(),
        b"sensorlog.newest_event": (iso(result.newest_event) or "").encode(),
        b"sensorlog.checkpoint": json.dumps(result.checkpoint).encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


# What a full audit publishes: each output's key, its derived table and its file name in that table's folder.
OUTPUTS = {
    "retention_ledger": ("retention_ledger", "retention_ledger.parquet"),
    "findings": ("findings", "findings.parquet"),
    "findings_json": ("findings", "findings.json"),
}


def output_paths(settings: Settings) -> dict[str, str]:
    return {key: storage.join(layout.derived_dir(settings, table), name) for key, (table, name) in OUTPUTS.items()}


def write_outputs(settings: Settings, result: AuditResult) -> dict[str, str]:
    """Write the ledger and findings (Parquet, JSON) through the storage layer; returns their URIs."""
    paths = output_paths(settings)
    parquet = "application/vnd.apache.parquet"
    storage.write_bytes(paths["retention_ledger"], _parquet_bytes(result.ledger, result), parquet)
    storage.write_bytes(paths["findings"], _parquet_bytes(result.findings, result), parquet)
    storage.write_bytes(paths["findings_json"], result.to_json().encode(), "application/json")
    # A home audited before the derived tables had their own root still holds them under published/,
    # where they break a Hive-partitioned glob over the event tables. They are recomputed, never logged,
    # so the old copies go once the new ones are written; only the files the audit itself wrote there.
    for table, name in OUTPUTS.values():
        folder = layout.legacy_derived_dir(settings, table)
        old = storage.join(folder, name)
        if old in paths.values():
            continue  # SENSORLOG_DERIVED set to the published root: that is where they were just written
        storage.delete(old)
        if not storage.is_s3(folder):
            with contextlib.suppress(OSError):  # left alone unless empty (S3 has no folders to remove)
                os.rmdir(folder)
    return paths


def check_gate(by_severity: dict[str, int], fail_on: str, where: str) -> int:
    """How many findings are at or above ``fail_on``; raises ``AuditGateFailed`` when any are."""
    floor = severity_rank(fail_on)
    n = sum(count for severity, count in by_severity.items() if severity_rank(severity) >= floor)
    if n:
        total = sum(by_severity.values())
        raise AuditGateFailed(
            f"{n} finding(s) at or above severity {fail_on.lower()!r} "
            f"(of {total}; by severity {by_severity}); see {where}"
        )
    return n
