"""The static HTML: an index of all deployments and one page per deployment.

Jinja2 with autoescape on; registry and log text is always escaped. Links between pages are relative
(``root`` is ``""`` on the index and ``"../"`` on a deployment page), so the site can be moved or
served under any prefix. The only absolute links are the registry's own (feedback forms, policy
documents) and the licences', which are navigation, never loaded by the page.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from pipelines.config import PACKAGE_DIR
from pipelines.portal import glance, icons
from pipelines.portal.activity import Activity
from pipelines.portal.basemap import Basemap
from pipelines.portal.declared import History
from pipelines.portal.defaults import DemoDefault
from pipelines.portal.dtpr_card import (
    data_class_label,
    dtpr_card,
    grant_who,
    render_retention_text,
    source_note,
)
from pipelines.portal.i18n import (
    EN,
    Localised,
    Translator,
    kind_label,
    language_links,
    page_prefix,
    registry_text,
)
from pipelines.portal.options import PortalOptions
from pipelines.portal.registry_export import page_path, place_text
from pipelines.portal.svg import MAP_DOTS, MapPoint, bar_chart, clusters, kind_colours, legend, map_panel, place_label
from pipelines.registry import AccessGrant, Deployment, Registry
from pipelines.registry.taxonomy import load_taxonomy

TEMPLATE_DIR = PACKAGE_DIR / "templates" / "portal"
# The retention ledger columns a resident needs, in this order (others stay in the downloads).
RETENTION_COLUMNS = ("data_class", "day", "declared_period", "retained", "oldest_retained_age_days", "next_due",
                     "status")
# Page weight stays bounded whatever the registry and the log hold: every list a page shows is either
# short by nature (data classes, policy versions) or cut at one of these sizes, saying how many more the
# downloads hold. A real licence-plate reader declares hundreds of outside agencies with one purpose.
ACCESS_INLINE = 25  # up to this many grants the DTPR card lists each; beyond, it summarises them
ACCESS_TOP = 15  # organisations (and purposes) named in the summary
ACCESS_PAGE = 1000  # grants per page of the full list
ACCESSED_ROWS = 50  # rows of "who accessed the data" (organisation, role, data class), most events first
FINDINGS_ROWS = 100  # findings on a deployment page, most severe first
LIFECYCLE_ROWS = 100  # lifecycle events, latest first when cut
VERSION_ROWS = 50  # declaration versions, newest first
LIST_ROWS = 1000  # deployments per page of the index (and of an organisation's list)


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
    # The sample city's settings this site still uses (pipelines.portal.defaults): a note on every page.
    notes: tuple[DemoDefault, ...] = field(default=())
    # Every language of the build, first one (at the site root) first; empty: this page's language alone.
    languages: tuple[str, ...] = field(default=())


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
        if isinstance(text, Localised):  # registry text: marked only when it is not in the page's language
            return Markup(escape(text.text)) if text.lang == lang else Markup(
                f'<span lang="{escape(text.lang)}">{escape(text.text)}</span>')
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
    """``root`` is the prefix from the page to its language's pages (``lang_root`` in templates); the
    templates' ``root`` is the prefix to the site root, where the data files are, once for all languages."""
    lang = common.options.lang
    english = _english(lang)
    languages = common.languages or (lang,)
    site_root = root + "../" * page_prefix(lang, languages).count("/")
    return {
        "lang": lang,
        "t": Translator(lang),
        "root": site_root,
        "lang_root": root,
        "languages": language_links(lang, languages, site_root),
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
        "notes": [Translator(lang).markup(n.key, value=n.value) for n in common.notes],
    }


def _kind(kind: str, lang: str) -> Markup:
    text, text_lang = kind_label(kind, lang)
    return Markup(f'<span lang="en">{escape(text)}</span>') if text_lang != lang else Markup(escape(text))


# -- index ---------------------------------------------------------------------------------------


def organisation_slug(name: str) -> str:
    """A file name for an organisation's list: readable, and unique (names differing only in punctuation
    or case get different hashes)."""
    words = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:60] or "organisation"
    return f"{words}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def organisation_path(name: str, page: int = 1) -> str:
    return f"organisations/{organisation_slug(name)}" + (f"-{page}" if page > 1 else "") + ".html"


def index_path(page: int) -> str:
    return "index.html" if page == 1 else f"index-{page}.html"


def _index_rows(registry: Registry, activity: dict[str, Activity], findings: dict[str, int] | None,
                common: Common) -> list[dict[str, Any]]:
    lang = common.options.lang
    t = Translator(lang)
    taxonomy = load_taxonomy()
    rows = []
    for d in sorted(registry, key=lambda d: (d.name.casefold(), d.id)):
        act = activity.get(d.id, Activity())
        purposes = [taxonomy.element(p).name(lang) for p in d.purposes]
        verdict = deployment_verdict(d, act)[1]
        rows.append({
            "id": d.id,
            "name": registry_text(d, "name", lang),
            "href": page_path(d.id),
            "kind": d.kind,
            "kind_label": _kind(d.kind, lang),
            "accountable": d.accountable_organisation,
            "purposes": purposes,
            "status": status(d, common.today),
            "collected": sum(act.collected.values()),
            "accesses": act.access_events,
            "findings": None if findings is None else findings.get(d.id, 0),
            # The first screen's verdict on the last 30 days (pipelines.portal.glance), and a number
            # that sorts it worst last: the table's sort reads ``data-sort`` before the cell's text.
            "verdict": verdict.kind,
            "verdict_text": glance.verdict_text(verdict, t),
            "verdict_tone": glance.verdict_tone(verdict),
            "verdict_sort": glance.verdict_sort_key(verdict),
            # What the row does not show; the filter also matches the row's own text.
            "search": " ".join(w for w in (d.id, d.kind, d.vendor, d.area, d.address) if w),
        })
    return rows


def _pages(rows: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [rows]


def _organisations(registry: Registry, today: date, paged: bool) -> list[dict[str, Any]]:
    """Deployments per accountable organisation, most first (the vendor portals' camera counts)."""
    count: Counter[str] = Counter()
    active: Counter[str] = Counter()
    for d in registry:
        count[d.accountable_organisation] += 1
        active[d.accountable_organisation] += status(d, today) == "active"
    return [{"name": name, "deployments": n, "active": active[name],
             "href": organisation_path(name) if paged else None}
            for name, n in sorted(count.items(), key=lambda kv: (-kv[1], kv[0].casefold()))]


def _kinds(registry: Registry, today: date, lang: str) -> list[dict[str, Any]]:
    count = Counter(d.kind for d in registry)
    active = Counter(d.kind for d in registry if status(d, today) == "active")
    return [{"kind": k, "label": _kind(k, lang), "deployments": n, "active": active[k]}
            for k, n in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))]


def _filters(rows: list[dict[str, Any]], t: Translator) -> dict[str, list[tuple[str, str]]]:
    """The choices of the index's filter boxes: (value, label), every one present in the registry."""
    kinds = {r["kind"]: str(r["kind_label"].striptags()) for r in rows}
    return {
        "kind": sorted(kinds.items(), key=lambda kv: kv[1].casefold()),
        "org": [(o, o) for o in sorted({r["accountable"] for r in rows}, key=str.casefold)],
        "status": [(s, t.text(f"status_{s}")) for s in ("active", "planned", "decommissioned")
                   if any(r["status"] == s for r in rows)],
        "verdict": [(v, t.text(f"verdict_filter_{v}")) for v in glance.VERDICTS
                    if any(r["verdict"] == v for r in rows)],
    }


def _maps(registry: Registry, t: Translator, lang: str,
          basemap: Basemap | None = None) -> tuple[list[dict[str, Any]], Markup]:
    points = [
        MapPoint(d.id, registry_text(d, "name", lang) or d.name, d.kind, d.lat, d.lon, d.bbox, page_path(d.id),
                 d.mobility == "mobile")
        for d in registry
        if d.lat is not None and d.lon is not None
    ]
    if not points:
        return [], Markup("")
    colours = kind_colours([p.kind for p in points])
    maps = []
    for group in clusters(points):
        caption = t.text("map_panel", count=len(group), place=place_label(group))
        grouped = len(group) > MAP_DOTS
        svg = map_panel(group, colours, caption, group_label=lambda n: t.text("map_group", count=n),
                        basemap=basemap)
        maps.append({"svg": svg, "caption": caption, "grouped": grouped})
    labels = {k: kind_label(k, lang)[0] for k in colours}
    return maps, legend(colours, labels)


def _unmapped(registry: Registry, lang: str) -> list[dict[str, Any]]:
    """Deployments the map cannot show (no coordinates), so that none is missing without a word."""
    return [{"name": registry_text(d, "name", lang), "href": page_path(d.id),
             "area": registry_text(d, "area", lang) or registry_text(d, "address", lang) or ""}
            for d in sorted(registry, key=lambda d: (d.name.casefold(), d.id)) if d.lat is None or d.lon is None]


def _nav(paths: list[str], current: int, root: str) -> list[dict[str, Any]]:
    return [{"page": n, "href": root + path, "current": n == current} for n, path in enumerate(paths, 1)]


def _dataset_views(datasets: list[DatasetView], t: Translator) -> list[DatasetView]:
    """The open-data list in the page's language: each table's title and description from the catalogs."""
    return [replace(v, title=t.markup_or(f"dataset_title_{v.name}", v.title),
                    description=t.markup_or(f"dataset_desc_{v.name}", v.description)) for v in datasets]


def render_index(common: Common, registry: Registry, activity: dict[str, Activity],
                 findings: dict[str, int] | None, datasets: list[DatasetView]) -> str:
    """The index alone (its first page); ``index_pages`` gives every page of a big registry."""
    return next(iter(index_pages(common, registry, activity, findings, datasets)))[1]


def index_pages(common: Common, registry: Registry, activity: dict[str, Activity],
                findings: dict[str, int] | None, datasets: list[DatasetView],
                basemap: Basemap | None = None) -> Iterator[tuple[str, str]]:
    """(path, html) of the index and, when the registry has more than LIST_ROWS deployments, of the
    further pages of the list and one list per accountable organisation. Every page holds at most
    LIST_ROWS rows, so the index of 10,000 deployments is as light as that of a thousand."""
    env = environment()
    lang = common.options.lang
    rows = _index_rows(registry, activity, findings, common)
    pages = _pages(rows, LIST_ROWS)
    paged = len(pages) > 1
    g = _globals(common, "")
    t: Translator = g["t"]
    maps, legend_markup = _maps(registry, t, lang, basemap)
    filters = _filters(rows, t)
    organisations = _organisations(registry, common.today, paged)
    kinds = _kinds(registry, common.today, lang)
    paths = [index_path(n) for n in range(1, len(pages) + 1)]
    unmapped = _unmapped(registry, lang)
    for n, page_rows in enumerate(pages, 1):
        first = (n - 1) * LIST_ROWS + 1
        yield paths[n - 1], env.get_template("index.html").render(
            **g,
            page=paths[n - 1],
            rows=page_rows,
            total=len(rows),
            range_text=t.markup("list_range", first=f"{first:,}", last=f"{first + len(page_rows) - 1:,}",
                                total=f"{len(rows):,}") if paged else None,
            nav=_nav(paths, n, "") if paged else [],
            filters=filters,
            organisations=organisations,
            kinds=kinds,
            maps=maps if n == 1 else [],
            legend=legend_markup,
            unmapped=unmapped[:LIST_ROWS] if n == 1 else [],
            unmapped_more=max(0, len(unmapped) - LIST_ROWS),
            datasets=_dataset_views(datasets, t) if n == 1 else [],
            first_page=n == 1,
            heading=None,
        )
    if not paged:
        return
    by_org: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_org.setdefault(r["accountable"], []).append(r)
    g = _globals(common, "../")
    for name, org_rows in by_org.items():
        org_pages = _pages(org_rows, LIST_ROWS)
        org_paths = [organisation_path(name, k) for k in range(1, len(org_pages) + 1)]
        for k, page_rows in enumerate(org_pages, 1):
            first = (k - 1) * LIST_ROWS + 1
            yield org_paths[k - 1], env.get_template("index.html").render(
                **g,
                page=org_paths[k - 1],
                rows=page_rows,
                total=len(org_rows),
                range_text=t.markup("list_range", first=f"{first:,}", last=f"{first + len(page_rows) - 1:,}",
                                    total=f"{len(org_rows):,}"),
                nav=_nav([p.removeprefix("organisations/") for p in org_paths], k, "") if len(org_pages) > 1 else [],
                filters=_filters(org_rows, t),
                organisations=[],
                kinds=[],
                maps=[],
                legend=Markup(""),
                unmapped=[],
                unmapped_more=0,
                datasets=[],
                first_page=False,
                heading=t.text("org_title", organisation=name),
            )


# -- deployment pages ------------------------------------------------------------------------------


def _location(d: Deployment, lang: str = "en") -> Localised:
    # Where it is now: the last declared move's place, else the location at commissioning.
    path = f"lifecycle.relocations[{len(d.relocations) - 1}].location" if d.relocations else "location"
    source = source_note(d, path)  # provenance.fields: where the position came from, beside it
    english = Localised(place_text(d.place) + (f" (source: {source})" if source else ""), "en")
    # In the page's language when the registry translates every text of the place (and no English
    # source note goes with it); otherwise all of it in English, marked so.
    texts = {attr: d.text_in(attr, lang) for attr in ("area", "address") if getattr(d, attr)}
    if source or not texts or any(text_lang != lang for _, text_lang in texts.values()):
        return english
    place = replace(d.place, area=texts["area"][0] if "area" in texts else d.area,
                    address=texts["address"][0] if "address" in texts else d.address,
                    mobility=Translator(lang).text(f"mobility_{d.mobility}"))
    return Localised(place_text(place), lang)


def _moves(d: Deployment) -> list[dict[str, str | None]]:
    """The "moved" history, oldest first: from which day the deployment was where (empty: never moved)."""
    if not d.relocations:
        return []
    return [{"since": day.isoformat(), "place": place_text(place), "note": note} for day, place, note in d.places()]


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
    if isinstance(value, list | tuple):  # a finding's declared words or relocations: words, not ['video']
        return ", ".join(_display(v) for v in value) or "–"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_display(v)}" for k, v in value.items())
    return str(value)


def _retention_view(rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if rows is None:
        return None
    if not rows:
        return {"columns": [], "rows": []}
    columns = [c for c in RETENTION_COLUMNS if c in rows[0]] or [c for c in rows[0] if c != "deployment_id"]
    return {
        "slugs": [str(r.get("data_class") or "") for r in rows],  # each row's anchor: ledger-<class>
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


def deployment_verdict(d: Deployment, act: Activity) -> tuple[list[glance.Verdict], glance.Verdict]:
    """Each data class's verdict on the last 30 days (declared classes first, then any the ledger holds
    that the registry does not declare), and the deployment's."""
    window = act.window
    day = window.last if window is not None else d.commissioned
    policy = glance.policy_in_force(d.policy_versions, day)
    days: dict[str, list[glance.LedgerDay]] = {}
    for row in act.ledger_window:
        days.setdefault(str(row.get("data_class")), []).append(glance.LedgerDay.from_row(row))
    limits: dict[str, list[glance.LimitFinding]] = {}
    related: dict[str, dict[str, list[str]]] = {}
    for row in act.findings:
        found = glance.LimitFinding.from_row(row)
        if found is not None:
            limits.setdefault(str(row.get("data_class")), []).append(found)
        related.setdefault(str(row.get("data_class")), {}).setdefault(str(row.get("kind")), []).append(
            str(row.get("id")))
    classes = list(dict.fromkeys([*d.data_classes, *days]))
    verdicts = [glance.class_verdict(c, policy.rule_for(c), days.get(c, []), limits.get(c, []), window,
                                     related.get(c)) for c in classes]
    return verdicts, glance.overall_verdict(verdicts, window)


def _evidence_href(verdict: glance.Verdict, anchors: set[str]) -> str:
    """The first of a verdict's evidence anchors the page has; else its retention section."""
    return "#" + next((a for a in verdict.evidence if a in anchors), "retention-heading")


def _glance_view(d: Deployment, act: Activity, t: Translator, lang: str, anchors: set[str]) -> dict[str, Any]:
    """The first screen: what it collects, for how long, who else may access it, the verdict and the
    last 30 days in numbers."""
    window = act.window
    day = window.last if window is not None else d.commissioned
    policy = glance.policy_in_force(d.policy_versions, day)
    verdicts, overall = deployment_verdict(d, act)
    classes = []
    for v in verdicts:
        slug = v.data_class or ""
        rule = policy.rule_for(slug)
        later = glance.later_rule(d.policy_versions, slug, day)
        element = d.data_class_elements.get(slug)
        classes.append({
            "slug": slug,
            "label": _english(lang)(data_class_label(slug)),
            "icon": icons.icon(element, 28) if element else None,
            "kept": glance.retention_words(rule, t),
            "later": t.text("kept_from", day=later[0].isoformat(), words=glance.retention_words(later[1], t))
            if later else None,
            "verdict": glance.verdict_text(v, t),
            "tone": glance.verdict_tone(v),
            "href": _evidence_href(v, anchors),
        })
    numbers = act.numbers
    return {
        "classes": classes,
        "access": glance.access_words(policy.access, d.accountable_organisation, t),
        "verdict": glance.verdict_text(overall, t),
        "kind": overall.kind,
        "tone": glance.verdict_tone(overall),
        "href": _evidence_href(overall, anchors),
        "window": t.text("glance_window", first=window.first.isoformat(), last=window.last.isoformat())
        if window is not None else None,
        "numbers": [
            ("num_collected", numbers.collected),
            ("num_deleted", numbers.deleted),
            ("num_access_declared", numbers.access_declared),
            ("num_access_undeclared", numbers.access_undeclared),
            *([("num_access_unverifiable", numbers.access_unverifiable)] if numbers.access_unverifiable else []),
        ] if window is not None else [],
        "undeclared_access": numbers.access_undeclared > 0,
        "shared": numbers.shared,
    }


def _bar_label(day: date, bucket: str) -> str:
    return day.strftime("%Y-%m") if bucket == "month" else day.isoformat()


def _chart(act: Activity, t: Translator, lang: str) -> dict[str, Any] | None:
    """The chart of records per day (week, month) over the deployment's own period, with its table."""
    if not act.days or not act.daily:
        return None
    colours = kind_colours(list(act.daily))
    labels = {c: data_class_label(c) for c in act.daily}
    totals = act.daily_totals
    bucket = act.bucket
    first, last = _bar_label(act.days[0], bucket), _bar_label(act.days[-1], bucket)
    title = t.text(f"collected_per_{bucket}")
    description = t.text("chart_desc" if bucket == "day" else f"chart_desc_{bucket}", first=first, last=last,
                         peak=f"{max(totals):,}")
    svg = bar_chart(act.days, act.daily, colours, title, description, labels,
                    [_bar_label(day, bucket) for day in act.days])
    rows = [
        {"day": _bar_label(day, bucket), "values": [act.daily[c][i] for c in act.daily], "total": totals[i]}
        for i, day in enumerate(act.days)
    ]
    return {
        "svg": svg,
        "legend": legend(colours, labels),
        "rows": rows,
        "title": t.markup(f"collected_per_{bucket}"),
        "date_label": t.markup({"day": "date", "week": "week_of", "month": "month"}[bucket]),
        "range": t.markup("chart_range", first=act.days[0].isoformat(), last=act.days[-1].isoformat()),
        "spread": act.spread,
        "bucket": bucket,
    }


def _grant_roles(grant: AccessGrant) -> tuple[str, ...]:
    return tuple(getattr(grant, "roles", ()) or ())


def access_summary(deployment: Deployment, full_list: str | None) -> dict[str, Any] | None:
    """The current policy's access grants counted by purpose, role and organisation, for a card that
    cannot list them one by one; None when the card lists them (at most ACCESS_INLINE grants)."""
    grants = deployment.current_policy.access
    if len(grants) <= ACCESS_INLINE:
        return None
    organisations: Counter[str] = Counter()
    purposes: dict[str, list[str]] = {}
    roles: Counter[str] = Counter()
    unnamed = 0  # organisations a grant counts without naming them ("988 external organisations")
    for g in grants:
        named = getattr(g, "organisation", None)
        name = str(named or getattr(g, "description", None) or getattr(g, "stated", None) or "–")
        unnamed += 0 if named else int(getattr(g, "count", None) or 0)
        organisations[name] += 1
        purposes.setdefault(str(getattr(g, "purpose", "") or "–"), []).append(name.casefold())
        roles.update(_grant_roles(g))
    by_purpose = sorted(((p, len(names), len(set(names))) for p, names in purposes.items()),
                        key=lambda row: (-row[1], row[0]))
    top = sorted(organisations.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
    return {
        "grants": len(grants),
        "organisations": len({n.casefold() for n in organisations}) + unnamed,
        "by_purpose": by_purpose[:ACCESS_TOP],
        "purposes_more": max(0, len(by_purpose) - ACCESS_TOP),
        "by_role": sorted(roles.items(), key=lambda kv: (-kv[1], kv[0]))[:ACCESS_TOP],
        "roles_more": max(0, len(roles) - ACCESS_TOP),
        "top": top[:ACCESS_TOP],
        "orgs_more": max(0, len(top) - ACCESS_TOP),
        "full_list": full_list,
    }


def access_list_path(deployment_id: str, page: int = 1) -> str:
    return f"deployments/{deployment_id}-access" + (f"-{page}" if page > 1 else "") + ".html"


def access_pages(common: Common, d: Deployment) -> list[tuple[str, str]]:
    """(path, html) of the full list of a deployment's current grants, ACCESS_PAGE a page; none when its
    card lists them itself."""
    grants = d.current_policy.access
    if len(grants) <= ACCESS_INLINE:
        return []
    env = environment()
    g = _globals(common, "../")
    t: Translator = g["t"]
    pages = _pages(list(grants), ACCESS_PAGE)
    paths = [access_list_path(d.id, n) for n in range(1, len(pages) + 1)]
    out = []
    for n, page in enumerate(pages, 1):
        rows = [{"organisation": grant_who(gr) or "–", "roles": _grant_roles(gr),
                 "purpose": getattr(gr, "purpose", None) or "–"} for gr in page]
        out.append((paths[n - 1], env.get_template("access.html").render(
            **g,
            page=paths[n - 1],
            d={"id": d.id, "name": d.name, "href": page_path(d.id).removeprefix("deployments/")},
            rows=rows,
            first=(n - 1) * ACCESS_PAGE + 1,
            total=len(grants),
            page_text=t.markup("page_of", page=n, pages=len(pages)) if len(pages) > 1 else None,
            nav=_nav([p.removeprefix("deployments/") for p in paths], n, "") if len(pages) > 1 else [],
        )))
    return out


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
            for v in list(reversed(history.versions))[:VERSION_ROWS]
        ],
        "versions_total": len(history.versions),
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
    chart = _chart(act, t, lang)
    class_rows = _class_rows(d, act, lang)
    # Chart columns follow the classes that have daily numbers, in the chart's own order.
    chart_classes = [next(c for c in class_rows if c["slug"] == slug) for slug in act.daily]
    # An inclusion proof for this deployment's first published row, as an example to copy.
    g["verify_deployment_command"] = prove_commands(act.first_leaf) if act.first_leaf is not None else None
    view = {
        "id": d.id,
        "name": registry_text(d, "name", lang),
        "description": registry_text(d, "description", lang),
        "status": status(d, common.today),
        "kind_label": _kind(d.kind, lang),
        "location": _location(d, lang),
        "moves": _moves(d),
        "commissioned": d.commissioned.isoformat(),
        "decommissioned": d.decommissioned.isoformat() if d.decommissioned else None,
        "vendor": d.vendor,
        "legal_basis": registry_text(d, "legal_basis", lang),
        "feedback": _feedback(d),
        "policy_links": [link for link in d.policy_links if _is_web(link)],
        "sign_letter": sign_paths[0],
        "sign_a4": sign_paths[1],
    }
    summary = access_summary(d, access_list_path(d.id).removeprefix("deployments/"))
    findings = None if findings_rows is None else [_finding_view(r) for r in findings_rows[:FINDINGS_ROWS]]
    anchors = {f"finding-{f['id']}" for f in findings or []}
    anchors.update(f"ledger-{r.get('data_class')}" for r in retention_rows or [])
    lifecycle = act.lifecycle[-LIFECYCLE_ROWS:]
    more = {
        "accessed": t.markup("accessed_more", shown=ACCESSED_ROWS, total=f"{len(act.accesses):,}")
        if len(act.accesses) > ACCESSED_ROWS else None,
        "findings": t.markup("findings_more", shown=FINDINGS_ROWS, total=f"{len(findings_rows):,}")
        if findings_rows is not None and len(findings_rows) > FINDINGS_ROWS else None,
        "lifecycle": t.markup("lifecycle_more", shown=LIFECYCLE_ROWS, total=f"{len(act.lifecycle):,}")
        if len(act.lifecycle) > LIFECYCLE_ROWS else None,
    }
    return env.get_template("deployment.html").render(
        **g,
        page=page_path(d.id),
        d=view,
        glance=_glance_view(d, act, t, lang, anchors),
        card=dtpr_card(d, lang),
        access_summary=summary,
        act=act,
        accesses=act.accesses[:ACCESSED_ROWS],
        lifecycle=lifecycle,
        more=more,
        chart=chart,
        chart_classes=chart_classes,
        class_rows=class_rows,
        retention=_retention_view(retention_rows),
        findings=findings,
        findings_total=None if findings_rows is None else len(findings_rows),
        declared=_declared_view(history, t),
    )
