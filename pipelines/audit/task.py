"""The audit DAG's two tasks (``dags/sensorlog_audit.py``), each one call: ``publish`` audits as of
today and writes the ledger, findings and auditor's report; ``gate`` then judges what was published."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pipelines import storage
from pipelines.audit.model import AuditOptions
from pipelines.audit.run import check_gate, output_paths, run_audit, write_outputs
from pipelines.config import Settings


def publish(
    settings: Settings, fail_on: str | None = None, report: bool = True, now: datetime | None = None
) -> dict[str, Any]:
    """The audit DAG's publishing task: audit everything as of today, write ledger, findings and
    report. Returns a small summary (fit for XCom).

    The DAG never passes ``fail_on``: its gate is a separate task (``gate``) after this one, so the
    outputs and Asset events exist whatever the gate decides. ``fail_on`` here is the same gate run
    in-process after writing (``sensorlog demo --no-airflow``, scripts).
    """
    # The report brings Jinja2 and matplotlib: imported when one is written, so that importing
    # pipelines.audit (which every parse of the audit DAG file does) stays light. It hides no cycle.
    from pipelines.audit import report as audit_report

    result = run_audit(settings, AuditOptions(now=now))
    outputs = write_outputs(settings, result)
    if report:
        outputs["report"] = audit_report.write_report(settings, result)
    counts = result.counts()
    summary_ = {
        **result.stamp(),
        "findings": result.findings.num_rows,
        "by_severity": counts["severity"],
        "by_kind": counts["kind"],
        "outputs": outputs,
    }
    if fail_on:
        check_gate(counts["severity"], fail_on, outputs["findings_json"])
    return summary_


def gate(settings: Settings, fail_on: str | None) -> dict[str, Any]:
    """The audit DAG's gate task: judge the findings the audit published (``findings.json``).

    Reads the published document rather than recomputing, so the gate decides on exactly what the
    portal shows and costs nothing; with ``fail_on`` None it only reports. Raises
    ``AuditGateFailed`` when findings at or above ``fail_on`` exist, and ``FileNotFoundError`` when
    the audit has published nothing yet.
    """
    uri = output_paths(settings)["findings_json"]
    doc = json.loads(storage.read_bytes(uri))
    by_severity = {s: int(n) for s, n in doc["counts"]["severity"].items()}
    out = {"fail_on": fail_on, "as_of": doc.get("as_of"), "by_severity": by_severity, "at_or_above": 0}
    if fail_on:
        out["at_or_above"] = check_gate(by_severity, fail_on, uri)
    return out
