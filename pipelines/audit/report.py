"""The auditor's report: self-contained static HTML (Jinja2, everything inline).

A small audit is one page with every finding and every chart. Beyond INLINE_FINDINGS findings or
INLINE_DEPLOYMENTS deployments (a city-sized registry: thousands of either), one page would weigh
megabytes and take a browser minutes, so the report becomes a summary page (counts by severity and kind,
the most severe findings, the deployments with the most findings, the worst lateness) next to a folder
named like it with one page per deployment (its findings, its chart, its lateness) and the list of every
deployment in pages of LIST_ROWS. Each page stays bounded whatever the audit found; the findings
table (``derived/findings``) has every finding and all its evidence.

Charts are matplotlib figures rendered to inline SVG. Why matplotlib SVG rather than Vega-Lite:
the report must open offline, forever, from an e-mail attachment or an archive, so it cannot depend
on a JavaScript runtime or a CDN; an SVG is drawn by the browser itself, its text stays selectable
and searchable, and matplotlib is already a pinned dependency (Altair would add a second charting
stack plus a headless renderer to get the same static SVG).
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
from collections import Counter, defaultdict
from datetime import date, timedelta
from html import escape as html_escape
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
from pipelines.audit.model import SEVERITIES, SEVERITY_OF_KIND, AuditResult, iso, severity_rank
from pipelines.config import Settings
from pipelines.portal.dtpr_card import data_class_label
from pipelines.registry import Registry, RetentionRule, home_registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "audit_report.html.j2"
REPORT_NAME = "audit_report.html"
INLINE_FINDINGS = 500  # up to this many findings (and INLINE_DEPLOYMENTS), the report is one page
INLINE_DEPLOYMENTS = 50
SUMMARY_FINDINGS = 200  # the most severe findings on the summary page of a split report
SUMMARY_DEPLOYMENTS = 200  # deployments with the most findings named on the summary page
SUMMARY_LATENESS = 100  # deployments with the most late deletions on the summary page
DEPLOYMENT_FINDINGS = 1000  # findings on one deployment's page, most severe first
LIST_ROWS = 1000  # deployments per page of the list of every deployment
_SAFE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,100}")
# Status names are printed in these colours on white, so each keeps at least 4.5:1 contrast (WCAG AA).
STATUS_COLOURS = {
    "ok": "#2e7d32",
    "due_soon": "#8a6100",
    "overdue": "#c62828",
    "no_policy": "#6a1b9a",
    "unknown": "#616161",
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


def _svg(figure: Figure, salt: str, label: str) -> str:
    # A per-chart salt keeps matplotlib's generated element ids unique within the one HTML page.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        buf = io.StringIO()
        figure.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = _XML_PROLOGUE.sub("", buf.getvalue(), count=1)
    # An image to screen readers, named; the numbers are in the table beside it (chart_table).
    named = f'<svg role="img" aria-label="{html_escape(label, quote=True)}"'
    return svg.replace("<svg", named, 1)


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
    return _svg(figure, deployment_id, chart_label(deployment_id))


def chart_label(deployment_id: str) -> str:
    return (f"Retention over time for {deployment_id}: records retained per data class, and the age of the "
            "oldest retained record against the declared limit, per day. The numbers are in the table below.")


def chart_table(ledger: pa.Table, deployment_id: str) -> list[dict[str, Any]]:
    """The chart's numbers as rows (day, data class, retained, oldest age, declared limit, status): the
    chart's text alternative, for screen readers and for anyone who wants the values."""
    rows = ledger.filter(pc.equal(ledger["deployment_id"], deployment_id))
    out = []
    for r in rows.select(["day", "data_class", "retained", "oldest_retained_age_days", "declared_period",
                          "status"]).to_pylist():
        limit = _limit_days(r["declared_period"])
        age = r["oldest_retained_age_days"]
        out.append({"day": r["day"].isoformat(), "data_class": data_class_label(r["data_class"]),
                    "retained": r["retained"], "age": None if age is None else round(age, 1),
                    "limit": None if limit is None else round(limit, 1), "status": r["status"]})
    out.sort(key=lambda r: (r["day"], r["data_class"]))
    return out


def number_text(value: Any) -> str:
    """A finding's number or value in words: lists as "a, b", never Python's ``['a']``."""
    if isinstance(value, list | tuple):
        return ", ".join(number_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k} {number_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def prove_command(source: str, event_id: str) -> str:
    """The command that proves one evidence row from the published site (run in the site's folder):
    ``--event SOURCE/ID``, quoted for a POSIX shell."""
    return f"sensorlog prove --log log --data data --event {shlex.quote(f'{source}/{event_id}')}"


def _finding_rows(result: AuditResult) -> list[dict[str, Any]]:
    rows = result.finding_dicts()
    for row in rows:
        numbers = dict(row["numbers"])
        row["evidence_total"] = numbers.pop("evidence_total", len(row["evidence"]))
        row["numbers_text"] = ", ".join(f"{k.replace('_', ' ')}: {number_text(v)}" for k, v in numbers.items()
                                        if v is not None)
        row["evidence"] = [{**e, "prove": prove_command(str(e["source"]), str(e["id"]))} for e in row["evidence"]]
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
                "chart_rows": chart_table(result.ledger, dep_id),
            }
        )
    return out


def _common(result: AuditResult) -> dict[str, Any]:
    counts = result.counts()
    return {
        "as_of": iso(result.as_of),
        "as_of_date": result.as_of_date.isoformat(),
        "as_of_source": result.as_of_source,
        "newest_event": iso(result.newest_event),
        "later_events": (
            iso(result.newest_event_in_log)
            if result.newest_event_in_log is not None and result.newest_event_in_log > result.as_of
            else None
        ),
        "until": iso(result.until),
        "timezone": result.timezone,
        "deployment": result.options.deployment,
        "grace_days": result.options.grace / timedelta(days=1),
        "silence_days": result.options.silence_days,
        "checkpoint": result.checkpoint,
        "declarations": result.declarations,
        "severities": list(reversed(SEVERITIES)),
        "severity_counts": counts["severity"],
        "kind_counts": counts["kind"],
        "severity_of_kind": SEVERITY_OF_KIND,
        "status_colours": STATUS_COLOURS,
        "page": "full",
        "root": "",
        "folder": "",
        "findings_total": result.findings.num_rows,
        "findings_more": 0,
        "deployments_total": 0,
        "deployments_more": 0,
        "lateness_more": 0,
        "list_pages": [],
        "current": None,
        "summary_href": None,
    }


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def is_split(result: AuditResult) -> bool:
    """Whether the report is a summary page with per-deployment pages (else one page holds everything)."""
    ids = set(result.ledger["deployment_id"].to_pylist()) | set(result.findings["deployment_id"].to_pylist())
    return result.findings.num_rows > INLINE_FINDINGS or len(ids) > INLINE_DEPLOYMENTS


def render_report(result: AuditResult, registry: Registry | None = None) -> str:
    """The report's first page as one HTML string (the whole report when it is not split); ``registry``
    only adds deployment names."""
    if is_split(result):
        return render_pages(result, registry)[""]
    return _environment().get_template(TEMPLATE).render(
        **_common(result),
        findings=_finding_rows(result),
        lateness=result.lateness.to_pylist(),
        statuses=_last_day_statuses(result.ledger),
        deployments=_deployments(result, registry),
    )


def page_name(deployment_id: str) -> str:
    """A deployment page's file name: its id when that is a safe file name, else a slug with a hash."""
    if _SAFE_ID.fullmatch(deployment_id):
        return f"{deployment_id}.html"
    slug = re.sub(r"[^a-z0-9]+", "-", deployment_id.lower()).strip("-")[:60] or "deployment"
    return f"{slug}-{hashlib.sha256(deployment_id.encode('utf-8')).hexdigest()[:10]}.html"


def _rank(row: dict[str, Any]) -> tuple[int, str, str]:
    return (-severity_rank(row["severity"]), str(row["period_start"]), str(row["id"]))


def render_pages(result: AuditResult, registry: Registry | None = None, folder: str = "audit_report") -> dict[str, str]:
    """A split report: ``""`` is the summary page; every other key is a path under ``folder`` (the
    summary's sibling folder): ``<deployment page>`` and ``deployments-<n>.html``."""
    env = _environment()
    template = env.get_template(TEMPLATE)
    findings = sorted(_finding_rows(result), key=_rank)
    by_dep: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in findings:
        by_dep[row["deployment_id"]].append(row)
    lateness = {row["deployment_id"]: row for row in result.lateness.to_pylist()}
    ids = sorted(set(result.ledger["deployment_id"].to_pylist()) | set(by_dep) | set(lateness))
    rows: list[dict[str, Any]] = []
    for dep_id in ids:
        deployment = registry.get(dep_id) if registry else None
        severities = Counter(f["severity"] for f in by_dep.get(dep_id, []))
        rows.append({
            "id": dep_id,
            "name": deployment.name if deployment else dep_id,
            "kind": deployment.kind if deployment else "",
            "findings": sum(severities.values()),
            "by_severity": severities,
            "href": f"{folder}/{page_name(dep_id)}",
            "late": (lateness.get(dep_id) or {}).get("late") or 0,
        })
    ranked = sorted(rows, key=lambda r: (tuple(-r["by_severity"].get(s, 0) for s in reversed(SEVERITIES)), r["id"]))
    list_pages = [rows[i:i + LIST_ROWS] for i in range(0, len(rows), LIST_ROWS)] or [[]]
    list_paths = [f"deployments-{n}.html" for n in range(1, len(list_pages) + 1)]
    worst_late = sorted(result.lateness.to_pylist(), key=lambda r: (-(r.get("late") or 0), r["deployment_id"]))
    common = _common(result)
    common["deployments_total"] = len(rows)
    pages: dict[str, str] = {}
    pages[""] = template.render(
        **{**common, "page": "summary", "folder": folder,
           "findings_more": max(0, len(findings) - SUMMARY_FINDINGS),
           "deployments_more": max(0, len(rows) - SUMMARY_DEPLOYMENTS),
           "lateness_more": max(0, len(worst_late) - SUMMARY_LATENESS),
           "list_pages": [f"{folder}/{p}" for p in list_paths]},
        findings=[{**f, "href": f"{folder}/{page_name(f['deployment_id'])}"} for f in findings[:SUMMARY_FINDINGS]],
        lateness=worst_late[:SUMMARY_LATENESS],
        statuses=_last_day_statuses(result.ledger),
        deployments=[{**r, "chart": None, "chart_rows": []} for r in ranked[:SUMMARY_DEPLOYMENTS]],
        summary_rows=ranked[:SUMMARY_DEPLOYMENTS],
    )
    for n, page_rows in enumerate(list_pages, 1):
        pages[f"{folder}/{list_paths[n - 1]}"] = template.render(
            **{**common, "page": "list", "root": "../", "list_pages": list_paths, "current": n,
               "summary_href": f"../{folder}.html"},
            findings=[], lateness=[], statuses={}, deployments=[],
            summary_rows=[{**r, "href": page_name(r["id"])} for r in page_rows],
        )
    for r in rows:
        own = by_dep.get(r["id"], [])
        pages[f"{folder}/{page_name(r['id'])}"] = template.render(
            **{**common, "page": "deployment", "root": "../", "deployment": r["id"],
               "summary_href": f"../{folder}.html",
               "findings_total": len(own), "findings_more": max(0, len(own) - DEPLOYMENT_FINDINGS),
               "severity_counts": {s: r["by_severity"].get(s, 0) for s in SEVERITIES},
               "kind_counts": dict(sorted(Counter(f["kind"] for f in own).items()))},
            findings=own[:DEPLOYMENT_FINDINGS],
            lateness=[lateness[r["id"]]] if r["id"] in lateness else [],
            statuses={},
            deployments=[{**r, "chart": retention_chart(result.ledger, r["id"]),
                          "chart_rows": chart_table(result.ledger, r["id"])}],
            summary_rows=[],
        )
    return pages


def report_path(settings: Settings, name: str = REPORT_NAME) -> str:
    return storage.join(layout.reports_dir(settings), name)


def write_report(settings: Settings, result: AuditResult, name: str = REPORT_NAME) -> str:
    """Render and write the report under the reports folder; returns its URI."""
    try:
        registry: Registry | None = home_registry(settings)
    except Exception:  # noqa: BLE001 - names are a nicety; a report without them beats no report
        registry = None
    uri = report_path(settings, name)
    if not is_split(result):
        storage.write_bytes(uri, render_report(result, registry).encode(), "text/html; charset=utf-8")
        return uri
    folder = name.removesuffix(".html")
    for path, html in render_pages(result, registry, folder).items():
        target = uri if not path else report_path(settings, path)
        storage.write_bytes(target, html.encode(), "text/html; charset=utf-8")
    return uri
