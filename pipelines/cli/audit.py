"""``sensorlog audit``: the retention audit from the command line (the audit DAG's function, plus views).

Exit codes: 0 done; 2 bad arguments or registry; 3 findings at or above ``--fail-on`` exist
(``AuditGateFailed``).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pipelines.cli._output import console, err_console
from pipelines.config import Settings
from pipelines.errors import GATE, USAGE, reported_as

if TYPE_CHECKING:
    from pipelines.audit import AuditResult

FORMATS = ("table", "json", "csv")
SEVERITY_STYLES = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
# The numbers worth a glance in the table view; the JSON and CSV views carry all of them.
HEADLINE = ("days_late", "days", "records_retained", "records", "organisation", "role", "since", "stated", "changed")
CSV_COLUMNS = ("id", "kind", "severity", "deployment_id", "data_class", "period_start", "period_end", "policy_version")
STAMP_COLUMNS = ("as_of", "as_of_date", "newest_event")


def _findings_table(result: AuditResult) -> Table:
    table = Table(title=f"sensorlog audit: {result.findings.num_rows} finding(s)", show_lines=True)
    table.add_column("severity")
    for name in ("kind", "deployment", "data class", "period (UTC)", "numbers"):
        table.add_column(name, overflow="fold")
    table.add_column("evidence", justify="right")
    for f in result.finding_dicts():
        numbers = f["numbers"]
        headline = [f"{k}={numbers[k]}" for k in HEADLINE if numbers.get(k) is not None]
        table.add_row(
            f"[{SEVERITY_STYLES[f['severity']]}]{f['severity']}[/]",
            f["kind"],
            f["deployment_id"],
            f["data_class"] or "—",
            f"{_short(f['period_start'])}\n→ {_short(f['period_end'])}",
            "\n".join(headline),
            str(numbers.get("evidence_total", len(f["evidence"]))),
        )
    return table


def _short(moment: str) -> str:
    # 2026-08-15T04:00:00Z -> 2026-08-15 04:00Z: minutes are enough on screen; JSON keeps the rest.
    return f"{moment[:10]} {moment[11:16]}Z" if len(moment) >= 16 else moment


def _lateness_table(result: AuditResult) -> Table:
    table = Table(title="deletion lateness per deployment (days after due)")
    table.add_column("deployment")
    for name in ("days deleted", "late", "p50", "p95", "max"):
        table.add_column(name, justify="right")
    for row in result.lateness.to_pylist():
        table.add_row(
            row["deployment_id"],
            str(row["deletions"]),
            str(row["late"]),
            *(f"{row[k]:.2f}" if row[k] is not None else "—" for k in ("p50_days", "p95_days", "max_days")),
        )
    return table


def _print_table(result: AuditResult) -> None:
    from pipelines.audit import SEVERITIES

    console.print(_findings_table(result))
    if result.lateness.num_rows:
        console.print(_lateness_table(result))
    counts = result.counts()["severity"]
    summary = ", ".join(f"[{SEVERITY_STYLES[s]}]{counts[s]} {s}[/]" for s in reversed(SEVERITIES))
    console.print(f"{_as_of_line(result)}: {summary}")
    if result.checkpoint and "size" in result.checkpoint:
        console.print(f"checkpoint: size {result.checkpoint['size']}, root {result.checkpoint['root_hash']}")
    if result.declarations == "log":
        console.print("judged against the declarations logged in the log (each day by the version logged by then)")
    else:
        console.print("[yellow]judged against the registry folder: the log holds no declaration yet[/yellow]")


def _as_of_line(result: AuditResult) -> str:
    stamp = result.stamp()
    when = "today" if stamp["as_of_source"] == "today" else "given"
    return (
        f"as of {stamp['as_of_date']} ({when}; {stamp['as_of']}, {result.timezone}), "
        f"newest event seen {stamp['newest_event'] or 'none'}"
    )


def _print_csv(result: AuditResult) -> None:
    # Every row repeats when the audit judged, so a CSV pasted anywhere still says it.
    stamp = result.stamp()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, "numbers", "evidence", *STAMP_COLUMNS])
    for f in result.finding_dicts():
        writer.writerow(
            [
                *("" if f[c] is None else f[c] for c in CSV_COLUMNS),
                json.dumps(f["numbers"], sort_keys=True),
                json.dumps(f["evidence"]),
                *(stamp[c] or "" for c in STAMP_COLUMNS),
            ]
        )


def _report_name(as_of: str | None, deployment: str | None, result: AuditResult) -> str:
    from pipelines.audit import report as audit_report

    if not as_of and not deployment:
        return audit_report.REPORT_NAME
    stamp = result.as_of.strftime("%Y%m%dT%H%M%SZ")
    return f"audit_report-{deployment or 'all'}-{stamp}.html"


def audit_cmd(
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Audit as of this date (local midnight) or ISO datetime; default: today in the city's time zone",
    ),
    deployment: str = typer.Option(None, "--deployment", help="Only this deployment id"),
    format: str = typer.Option("table", "--format", help="Output: table, json or csv"),
    fail_on: str = typer.Option(
        None, "--fail-on", metavar="SEVERITY", help=f"Exit {GATE} if a finding at or above it exists"
    ),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the auditor's HTML report"),
    log: str = typer.Option(
        None, "--log", metavar="DIR",
        help="Audit a published site's log folder (with --data) instead of the operator's home: prints only",
    ),
    data: str = typer.Option(None, "--data", metavar="DIR", help="The published site's data folder (with --log)"),
) -> None:
    """Retention audit: ledger, findings with evidence, lateness, and the auditor's report.

    Judged as of today (the current date in the city's time zone; SENSORLOG_NOW overrides the clock)
    unless --as-of says otherwise, so records fall due and stopped feeds turn silent with no new event.

    A full audit (no --as-of, no --deployment) also publishes the retention_ledger and findings tables;
    a scoped one only prints (and writes a report named after its scope), so it never replaces them.

    With --log and --data it audits a published site from its files alone (the events and the
    declarations they are judged against are both in the log), with no SENSORLOG_HOME, and writes
    nothing: run `sensorlog verify` on the same folders to check they are the log's.
    """
    from pipelines.audit import AuditOptions, parse_as_of, run_audit, severity_rank, write_outputs
    from pipelines.audit import report as audit_report

    if format not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}", param_hint="--format")
    if fail_on is not None:
        try:
            severity_rank(fail_on)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--fail-on") from err
    if (log is None) != (data is None):
        raise typer.BadParameter("give both --log and --data (a published site's two folders)", param_hint="--log")
    if log is not None:
        _audit_site(log, data, as_of, deployment, format, fail_on)
        return
    settings = Settings.from_existing_home()
    with reported_as("audit", ValueError, exit_code=USAGE):  # a bad --as-of or SENSORLOG_NOW, an unknown deployment
        options = AuditOptions(as_of=parse_as_of(as_of, settings.timezone), deployment=deployment)
        result = run_audit(settings, options)

    written = write_outputs(settings, result) if not as_of and not deployment else {}
    if report:
        written["report"] = audit_report.write_report(settings, result, _report_name(as_of, deployment, result))

    _print(result, format)
    for label, uri in written.items():
        err_console.print(f"{label:<17} {uri}")
    _gate(result, fail_on)


def _print(result: AuditResult, format: str) -> None:
    if format == "json":
        typer.echo(result.to_json())
    elif format == "csv":
        _print_csv(result)
    else:
        _print_table(result)


def _audit_site(log: str, data: str, as_of: str | None, deployment: str | None, format: str,
                fail_on: str | None) -> None:
    from pipelines.audit.site import audit_site

    # SiteAuditError and DeclarationError are ValueErrors: folders that are not a site, a bad record
    with reported_as("audit", ValueError, OSError, exit_code=USAGE):
        result = audit_site(log, data, as_of=as_of, deployment=deployment)
    _print(result, format)
    err_console.print(
        f"audited the published site {data} against the declarations it logs"
        f" (checkpoint size {result.checkpoint['size'] if result.checkpoint else '?'}); nothing was written"
    )
    _gate(result, fail_on)


def _gate(result: AuditResult, fail_on: str | None) -> None:
    from pipelines.audit import AuditGateFailed

    if fail_on is not None:
        n = result.at_or_above(fail_on)
        if n:
            raise AuditGateFailed(f"{n} finding(s) at or above {fail_on.lower()}")  # exits 3
