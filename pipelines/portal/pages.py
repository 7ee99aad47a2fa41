"""The static HTML: an index of all deployments and one page per deployment.

Jinja2 with autoescape on; registry and log text is always escaped. Links between pages are relative
(``root`` is ``""`` on the index and ``"../"`` on a deployment page), so the site can be moved or
served under any prefix. The only absolute links are the registry's own (feedback forms, policy
documents) and the licences', which are navigation, never loaded by the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from pipelines.config import PACKAGE_DIR
from pipelines.portal.activity import Activity
from pipelines.portal.declared import History
from pipelines.portal.dtpr_card import data_class_label, dtpr_card, render_retention_text
from pipelines.portal.i18n import EN, Translator, kind_label
from pipelines.portal.options import PortalOptions
from pipelines.portal.registry_export import page_path
from pipelines.portal.svg import MapPoint, bar_chart, clusters, kind_colours, legend, map_panel, place_label
from pipelines.registry import Deployment, Registry
from pipelines.registry.taxonomy import load_taxonomy

TEMPLATE_DIR = PACKAGE_DIR / "templates" / "portal"
# The retention ledger columns a resident needs, in this order (others stay in the downloads).
RETENTION_COLUMNS = ("data_class", "day", "declared_period", "retained", "oldest_retained_age_days", "next_due",
                     "status")


@dataclass(frozen=True)
class LogInfo:
    checkpoint: str  # the signed note, as published
    vkey: str
    key_id: str = ""  # "<name>+<8 hex digits>", as signed-note signature lines name the key
    fingerprint: str = ""  # verify.fingerprint: what a resident compares with the street sign
    witnesses: tuple[str, ...] = ()  # names on the checkpoint's other signature lines


@dataclass(frozen=True)
class Common:
    """What every page needs."""

    options: PortalOptions
    generated: str
    log: LogInfo | None
    timezone: str
    today: date


@dataclass(frozen=True)
class DatasetView:
    name: str
    title: str
    description: str
    rows: int | None
    schema_path: str | None
    files: list[dict[str, str]]  # path, label, size


@cache
def environment() -> Environment:
    """One environment per process, so each template is compiled once, not once per page."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def status(deployment: Deployment, today: date) -> str:
    if deployment.commissioned > today:
        return "planned"
    if deployment.decommissioned is not None and deployment.decommissioned < today:
        return "decommissioned"
    return "active"


def _english(lang: str) -> Callable[[Any], Markup]:
    """Marks text that exists only in English (registry prose, sensorlog's own sentences)."""

    def wrap(text: Any) -> Markup:
        if text is None:
            return Markup("")
        return Markup(f'<span lang="en">{escape(text)}</span>') if lang != "en" else Markup(escape(text))

    return wrap


def _when(timezone: str) -> Callable[[Any], Markup]:
    zone = ZoneInfo(timezone)

    def when(value: Any) -> Markup:
        if isinstance(value, datetime):
            local = value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
            try:
                local = local.astimezone(zone)
            except OverflowError:  # its local day is before year 1 (or after 9999): shown in UTC
                pass
            return Markup(f'<time datetime="{escape(local.isoformat())}">{escape(local.strftime("%Y-%m-%d %H:%M %Z"))}'
                          "</time>")
        if isinstance(value, date):
            return Markup(f'<time datetime="{value.isoformat()}">{value.isoformat()}</time>')
        return Markup(escape("–" if value is None else value))

    return when


# Run in the site's folder: the first verifies everything and trusts the key on first use; the next
# two keep the key and today's checkpoint; the last pins both, so a replaced key or a rolled-back log
# fails next time.
VERIFY_COMMANDS = (
    "sensorlog verify --log log --data data --site .\n"
    "cp log/log.vkey my-saved.vkey\n"
    "cp log/checkpoint my-saved-checkpoint\n"
    "sensorlog verify --log log --data data --site . --vkey my-saved.vkey --since my-saved-checkpoint --strict"
)


def prove_commands(index: int) -> str:
    """Prove one published row from the site and check the proof as a resident would."""
    return (
        f"sensorlog prove --log log --data data --index {index} --proof-file leaf-{index}.tlog-proof\n"
        f"sensorlog check-proof leaf-{index}.tlog-proof --vkey log/log.vkey"
    )


def _globals(common: Common, root: str) -> dict[str, Any]:
    lang = common.options.lang
    english = _english(lang)
    return {
        "lang": lang,
        "t": Translator(lang),
        "root": root,
        "publisher": common.options.publisher,
        "license_url": common.options.license_url,
        "license_title": common.options.license_title or common.options.license_url,
        "generated": common.generated,
        "log": common.log,
        "en": english,
        "label": lambda slug: english(data_class_label(slug)),
        "when": _when(common.timezone),
        # Commands that work from a copy of this site alone (tests run each line as written).
        "verify_command": VERIFY_COMMANDS,
        "verify_deployment_command": None,
    }


def _kind(kind: str, lang: str) -> Markup:
    text, text_lang = kind_label(kind, lang)
    return Markup(f'<span lang="en">{escape(text)}</span>') if text_lang != lang else Markup(escape(text))


# -- index ---------------------------------------------------------------------------------------


def _index_rows(registry: Registry, activity: dict[str, Activity], findings: dict[str, int] | None,
                common: Common) -> list[dict[str, Any]]:
    lang = common.options.lang
    taxonomy = load_taxonomy()
    rows = []
    for d in registry:
        act = activity.get(d.id, Activity())
        purposes = [taxonomy.element(p).name(lang) for p in d.purposes]
        kind_text = kind_label(d.kind, lang)[0]
        rows.append({
            "id": d.id,
            "name": d.name,
            "href": page_path(d.id),
            "kind_label": _kind(d.kind, lang),
            "accountable": d.accountable_organisation,
            "purposes": purposes,
            "status": status(d, common.today),
            "collected": sum(act.collected.values()),
            "accesses": act.access_events,
            "findings": None if findings is None else findings.get(d.id, 0),
            "search": " ".join([d.name, d.id, d.kind, kind_text, d.accountable_organisation, d.vendor, *purposes,
                                d.area or "", d.address or ""]),
        })
    return rows


def _maps(registry: Registry, t: Translator, lang: str) -> tuple[list[dict[str, Any]], Markup]:
    points = [
        MapPoint(d.id, d.name, d.kind, d.lat, d.lon, d.bbox, page_path(d.id), d.mobility == "mobile")
        for d in registry
        if d.lat is not None and d.lon is not None
    ]
    if not points:
        return [], Markup("")
    colours = kind_colours([p.kind for p in points])
    maps = []
    for group in clusters(points):
        caption = t.text("map_panel", count=len(group), place=place_label(group))
        maps.append({"svg": map_panel(group, colours, caption), "caption": caption})
    labels = {k: kind_label(k, lang)[0] for k in colours}
    return maps, legend(colours, labels)


def render_index(common: Common, registry: Registry, activity: dict[str, Activity],
                 findings: dict[str, int] | None, datasets: list[DatasetView]) -> str:
    env = environment()
    g = _globals(common, "")
    maps, legend_markup = _maps(registry, g["t"], common.options.lang)
    return env.get_template("index.html").render(
        **g,
        rows=_index_rows(registry, activity, findings, common),
        maps=maps,
        legend=legend_markup,
        datasets=datasets,
    )


# -- deployment pages ------------------------------------------------------------------------------


def _location(d: Deployment) -> str:
    parts = [p for p in (d.address, d.area) if p]
    if d.lat is not None and d.lon is not None:
        parts.append(f"{d.lat:.4f}, {d.lon:.4f}")
    parts.append(d.mobility)
    return " · ".join(parts)


def _is_web(url: str) -> bool:
    # The registry schema already demands http(s); a link is still never emitted with another scheme
    # (a javascript: URL in a registry file must not become a script on the city's site).
    return url.startswith(("https://", "http://"))


def _feedback(d: Deployment) -> list[dict[str, Any]]:
    out = []
    for kind in ("form", "email", "phone", "postal"):
        value = d.feedback.get(kind)
        if not value:
            continue
        href = {"form": value if _is_web(value) else None, "email": f"mailto:{value}", "phone": "tel:" + "".join(
            c for c in value if c.isdigit() or c == "+")}.get(kind)
        out.append({"kind": kind, "value": value, "href": href, "external": kind == "form"})
    return out


def _class_rows(d: Deployment, act: Activity, lang: str) -> list[dict[str, Any]]:
    classes = list(dict.fromkeys([*d.data_classes, *act.collected, *act.deleted]))
    policy = d.current_policy
    rows = []
    for c in classes:
        rule = policy.rule_for(c)
        rows.append({
            "slug": c,
            "label": _english(lang)(data_class_label(c)),
            "collected": act.collected.get(c, 0),
            "deleted": act.deleted.get(c, 0),
            # A class the deployment never declared has no rule: say so rather than leave it blank.
            "retention": render_retention_text(rule, lang) if rule else "Not declared in the registry.",
        })
    return rows


def _display(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _retention_view(rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if rows is None:
        return None
    if not rows:
        return {"columns": [], "rows": []}
    columns = [c for c in RETENTION_COLUMNS if c in rows[0]] or [c for c in rows[0] if c != "deployment_id"]
    return {
        "columns": [c.replace("_", " ") for c in columns],
        "rows": [[data_class_label(r[c]) if c == "data_class" and r.get(c) else _display(r.get(c)) for c in columns]
                 for r in rows],
    }


def _parsed(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _finding_view(row: dict[str, Any]) -> dict[str, Any]:
    numbers = _parsed(row.get("numbers"))
    evidence = _parsed(row.get("evidence"))
    start, end = row.get("period_start"), row.get("period_end")
    period = " – ".join(_display(v) for v in (start, end) if v is not None) or "–"
    return {
        "id": row.get("id"),
        "kind": str(row.get("kind", "")).replace("_", " "),
        "severity": row.get("severity") or "–",
        "data_class": data_class_label(row["data_class"]) if row.get("data_class") else "–",
        "period": period,
        "numbers": [(str(k).replace("_", " "), _display(v)) for k, v in numbers.items()]
        if isinstance(numbers, dict) else [],
        "evidence": len(evidence) if isinstance(evidence, list) else None,
    }


def _chart(act: Activity, t: Translator, lang: str) -> tuple[Markup | None, Markup, list[dict[str, Any]]]:
    if not act.days or not act.daily:
        return None, Markup(""), []
    colours = kind_colours(list(act.daily))
    labels = {c: data_class_label(c) for c in act.daily}
    totals = act.daily_totals
    description = t.text("chart_desc", first=act.days[0].isoformat(), last=act.days[-1].isoformat(),
                         peak=f"{max(totals):,}")
    chart = bar_chart(act.days, act.daily, colours, t.text("collected_per_day"), description, labels)
    rows = [
        {"day": day.isoformat(), "values": [act.daily[c][i] for c in act.daily], "total": totals[i]}
        for i, day in enumerate(act.days)
    ]
    return chart, legend(colours, labels), rows


def check_declaration_command(history: History) -> str:
    """Check, from the site's folder, that the current version of a deployment record is in the log."""
    return f"sensorlog check-proof {history.current.proof_path} --vkey log/log.vkey"


def _declared_view(history: History | None, t: Translator) -> dict[str, Any] | None:
    """The page's declaration history, newest version first; None when nothing is logged."""
    if history is None or not history.versions:
        return None
    current = history.current
    return {
        "since": current.declared_day.isoformat(),  # what the audit counts it from
        "sequence": current.sequence,
        "policy_version": current.policy_version,
        "effective_from": current.effective_from,
        "record": current.record_path,
        "proof": current.proof_path,
        "history": history.path,
        "pending": history.pending,
        "command": check_declaration_command(history),
        "versions": [
            {
                "sequence": v.sequence,
                "logged_at": v.logged_at,
                "change": v.change,
                # A kind this portal has no word for is shown as logged, never dropped.
                "change_label": t.markup(f"change_{v.change}") if f"change_{v.change}" in EN else escape(v.change),
                "retroactive": v.retroactive,
                "fields": list(v.changed_fields),
                "leaf_index": v.leaf_index,
                "record": v.record_path,
                "proof": v.proof_path,
            }
            for v in reversed(history.versions)
        ],
    }


def render_deployment(common: Common, d: Deployment, act: Activity, retention_rows: list[dict[str, Any]] | None,
                      findings_rows: list[dict[str, Any]] | None, sign_paths: tuple[str, str],
                      history: History | None = None) -> str:
    """One deployment's page. ``retention_rows``/``findings_rows`` are None when the audit has not run;
    ``history`` is None when the log holds no declaration of it (a log from before declarations)."""
    env = environment()
    lang = common.options.lang
    g = _globals(common, "../")
    t: Translator = g["t"]
    chart, chart_legend, daily_rows = _chart(act, t, lang)
    class_rows = _class_rows(d, act, lang)
    # Chart columns follow the classes that have daily numbers, in the chart's own order.
    chart_classes = [next(c for c in class_rows if c["slug"] == slug) for slug in act.daily]
    # An inclusion proof for this deployment's first published row, as an example to copy.
    g["verify_deployment_command"] = prove_commands(act.first_leaf) if act.first_leaf is not None else None
    view = {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "status": status(d, common.today),
        "kind_label": _kind(d.kind, lang),
        "location": _location(d),
        "commissioned": d.commissioned.isoformat(),
        "decommissioned": d.decommissioned.isoformat() if d.decommissioned else None,
        "vendor": d.vendor,
        "legal_basis": d.legal_basis,
        "feedback": _feedback(d),
        "policy_links": [link for link in d.policy_links if _is_web(link)],
        "sign_letter": sign_paths[0],
        "sign_a4": sign_paths[1],
    }
    return env.get_template("deployment.html").render(
        **g,
        d=view,
        card=dtpr_card(d, lang),
        act=act,
        chart=chart,
        chart_legend=chart_legend,
        daily_rows=daily_rows,
        chart_classes=chart_classes,
        class_rows=class_rows,
        retention=_retention_view(retention_rows),
        findings=None if findings_rows is None else [_finding_view(r) for r in findings_rows],
        declared=_declared_view(history, t),
    )
