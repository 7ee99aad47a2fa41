"""The auditor's report: one self-contained static HTML file (Jinja2, everything inline).

Charts are matplotlib figures rendered to inline SVG. Why matplotlib SVG rather than Vega-Lite:
the report must open offline, forever, from an e-mail attachment or an archive, so it cannot depend
on a JavaScript runtime or a CDN; an SVG is drawn by the browser itself, its text stays selectable
and searchable, and matplotlib is already a pinned dependency (Altair would add a second charting
stack plus a headless renderer to get the same static SVG).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from pipelines import layout, storage

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType
from pipelines.audit.model import SEVERITIES, SEVERITY_OF_KIND, AuditResult, iso
from pipelines.config import Settings
from pipelines.portal.dtpr_card import data_class_label
from pipelines.registry import Registry, RetentionRule, load_registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "audit_report.html.j2"
REPORT_NAME = "audit_report.html"
STATUS_COLOURS = {
    "ok": "#2e7d32",
    "due_soon": "#f9a825",
    "overdue": "#c62828",
    "no_policy": "#6a1b9a",
    "unknown": "#757575",
}
LINE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
# Chart text is plain text: a data class such as "$x^{$" is drawn as written, never parsed as TeX.
PLAIN_TEXT: dict[RcKeyType, Any] = {"text.parse_math": False, "text.usetex": False}


def _limit_days(period: str | None) -> float | None:
    """The declared period in days for plotting (months as 30 days); None for undeclared/indefinite."""
    if period is None:
        return None
    duration = RetentionRule("x", period).duration
    return None if duration is None else duration / timedelta(days=1)


def _svg(figure: Figure, salt: str) -> str:
    # A per-chart salt keeps matplotlib's generated element ids unique within the one HTML page.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        buf = io.StringIO()
        figure.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return _XML_PROLOGUE.sub("", buf.getvalue(), count=1)


def _day_label(value: float, _position: object = None) -> str:
    day = round(value)
    return date.fromordinal(day).isoformat() if 1 <= day <= date.max.toordinal() else ""


def retention_chart(ledger: pa.Table, deployment_id: str) -> str | None:
    """Inline SVG for one deployment: records retained per data class (top) and the age of the
    oldest retained record against the declared period (bottom), per local day.

    Days are plotted as day numbers with ISO dates for labels, so any day a date can hold draws
    (matplotlib's own date axis stops at year 1 and pads its range below it)."""
    with rc_context(PLAIN_TEXT):
        return _retention_chart(ledger, deployment_id)


def _retention_chart(ledger: pa.Table, deployment_id: str) -> str | None:
    rows = ledger.filter(pc.equal(ledger["deployment_id"], deployment_id))
    if rows.num_rows == 0:
        return None
    figure = Figure(figsize=(8.0, 3.8))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1]})
    for n, data_class in enumerate(sorted(set(rows["data_class"].to_pylist()))):
        part = rows.filter(pc.equal(rows["data_class"], data_class))
        days = [d.toordinal() for d in part["day"].to_pylist()]
        colour = LINE_COLOURS[n % len(LINE_COLOURS)]
        label = data_class_label(data_class)
        top.plot(days, part["retained"].to_pylist(), color=colour, linewidth=1.4, label=label)
        ages = [a if a is not None else 0.0 for a in part["oldest_retained_age_days"].to_pylist()]
        bottom.plot(days, ages, color=colour, linewidth=1.4, label=f"{label}: oldest retained")
        limits = [_limit_days(p) for p in part["declared_period"].to_pylist()]
        if any(limit is not None for limit in limits):
            bottom.step(
                days,
                limits,
                where="post",
                color=colour,
                linestyle="--",
                linewidth=1.0,
                label=f"{label}: declared limit",
            )
        overdue = [(d, a) for d, a, s in zip(days, ages, part["status"].to_pylist(), strict=True) if s == "overdue"]
        if overdue:
            bottom.scatter(*zip(*overdue, strict=True), color=STATUS_COLOURS["overdue"], s=12, zorder=3)
    top.set_ylabel("records retained")
    bottom.set_ylabel("oldest age (days)")
    for axis in (top, bottom):
        axis.grid(True, linewidth=0.3)
        axis.spines[["top", "right"]].set_visible(False)
        axis.legend(fontsize=7, loc="upper left", frameon=False)
    bottom.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(_day_label))
    figure.autofmt_xdate()
    return _svg(figure, deployment_id)


def _finding_rows(result: AuditResult) -> list[dict[str, Any]]:
    rows = result.finding_dicts()
    for row in rows:
        numbers = dict(row["numbers"])
        row["evidence_total"] = numbers.pop("evidence_total", len(row["evidence"]))
        row["numbers_text"] = ", ".join(f"{k}: {v}" for k, v in numbers.items() if v is not None)
    return rows


def _last_day_statuses(ledger: pa.Table) -> dict[str, int]:
    if ledger.num_rows == 0:
        return {}
    last = pc.max(ledger["day"])
    return dict(Counter(ledger.filter(pc.equal(ledger["day"], last))["status"].to_pylist()))


def _deployments(result: AuditResult, registry: Registry | None) -> list[dict[str, Any]]:
    ids = sorted(set(result.ledger["deployment_id"].to_pylist()) | set(result.findings["deployment_id"].to_pylist()))
    findings_by_dep = Counter(result.findings["deployment_id"].to_pylist())
    out = []
    for dep_id in ids:
        deployment = registry.get(dep_id) if registry else None
        out.append(
            {
                "id": dep_id,
                "name": deployment.name if deployment else dep_id,
                "kind": deployment.kind if deployment else "",
                "findings": findings_by_dep.get(dep_id, 0),
                "chart": retention_chart(result.ledger, dep_id),
            }
        )
    return out


def render_report(result: AuditResult, registry: Registry | None = None) -> str:
    """The report as one HTML string; ``registry`` only adds deployment names."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    counts = result.counts()
    return env.get_template(TEMPLATE).render(
        as_of=iso(result.as_of),
        as_of_date=result.as_of_date.isoformat(),
        as_of_source=result.as_of_source,
        newest_event=iso(result.newest_event),
        later_events=(
            iso(result.newest_event_in_log)
            if result.newest_event_in_log is not None and result.newest_event_in_log > result.as_of
            else None
        ),
        until=iso(result.until),
        timezone=result.timezone,
        deployment=result.options.deployment,
        grace_days=result.options.grace / timedelta(days=1),
        silence_days=result.options.silence_days,
        checkpoint=result.checkpoint,
        declarations=result.declarations,
        severities=list(reversed(SEVERITIES)),
        severity_counts=counts["severity"],
        kind_counts=counts["kind"],
        severity_of_kind=SEVERITY_OF_KIND,
        findings=_finding_rows(result),
        lateness=result.lateness.to_pylist(),
        statuses=_last_day_statuses(result.ledger),
        status_colours=STATUS_COLOURS,
        deployments=_deployments(result, registry),
    )


def report_path(settings: Settings, name: str = REPORT_NAME) -> str:
    return storage.join(layout.reports_dir(settings), name)


def write_report(settings: Settings, result: AuditResult, name: str = REPORT_NAME) -> str:
    """Render and write the report under the reports folder; returns its URI."""
    try:
        registry: Registry | None = load_registry(settings.registry, timezone=settings.timezone)
    except Exception:  # noqa: BLE001 - names are a nicety; a report without them beats no report
        registry = None
    uri = report_path(settings, name)
    storage.write_bytes(uri, render_report(result, registry).encode(), "text/html; charset=utf-8")
    return uri
