"""Retention audit: declared against observed retention and access, over the published log.

``run_audit`` computes an ``AuditResult`` (retention ledger, findings, lateness statistics) with
DuckDB over the published Parquet partitions, as of today in the city's zone unless told otherwise;
``write_outputs`` publishes the derived tables; ``publish`` (audit, write, report) and ``gate``
(judge what was published) are the audit DAG's two tasks (``task``); ``report`` renders the
auditor's report. Semantics are documented in ``retention`` (what counts as deleted and when it was
due) and ``findings`` (one line per finding kind); severities in ``model``.
"""

from pipelines.audit.model import (
    DEFAULT_GRACE,
    DEFAULT_SILENCE_DAYS,
    FINDING_KINDS,
    SEVERITIES,
    SEVERITY_OF_KIND,
    AuditOptions,
    AuditResult,
    default_as_of,
    iso,
    severity_rank,
)
from pipelines.audit.run import (
    AuditGateFailed,
    check_gate,
    checkpoint_info,
    output_paths,
    run_audit,
    write_outputs,
)
from pipelines.audit.task import gate, publish
from pipelines.clock import NOW_ENV, current_time, parse_as_of

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_SILENCE_DAYS",
    "FINDING_KINDS",
    "NOW_ENV",
    "SEVERITIES",
    "SEVERITY_OF_KIND",
    "AuditGateFailed",
    "AuditOptions",
    "AuditResult",
    "check_gate",
    "checkpoint_info",
    "current_time",
    "default_as_of",
    "gate",
    "iso",
    "output_paths",
    "parse_as_of",
    "publish",
    "run_audit",
    "severity_rank",
    "write_outputs",
]
