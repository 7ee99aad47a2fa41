"""Retention audit: declared against observed retention and access, over the published log.

``run_audit`` computes an ``AuditResult`` (retention ledger, findings, lateness statistics) with
DuckDB over the published Parquet partitions; ``write_outputs`` publishes the derived tables;
``publish`` is the audit DAG's single task. Semantics are documented in ``retention`` (what counts
as deleted and when it was due) and ``findings`` (one line per finding kind); severities in ``model``.
"""

from pipelines.audit.model import (
    DEFAULT_GRACE,
    DEFAULT_SILENCE_DAYS,
    FINDING_KINDS,
    SEVERITIES,
    SEVERITY_OF_KIND,
    AuditOptions,
    AuditResult,
    iso,
    parse_as_of,
    severity_rank,
)
from pipelines.audit.run import AuditGateFailed, checkpoint_info, output_paths, publish, run_audit, write_outputs

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_SILENCE_DAYS",
    "FINDING_KINDS",
    "SEVERITIES",
    "SEVERITY_OF_KIND",
    "AuditGateFailed",
    "AuditOptions",
    "AuditResult",
    "checkpoint_info",
    "iso",
    "output_paths",
    "parse_as_of",
    "publish",
    "run_audit",
    "severity_rank",
    "write_outputs",
]
