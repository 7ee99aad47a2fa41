"""A deployment's DTPR card and retention sentences for residents, rendered from the registry's
machine-readable records (never the other way round)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from pipelines.portal.i18n import registry_text
from pipelines.registry import AccessGrant, Deployment, PolicyVersion, RetentionRule, parse_iso_duration
from pipelines.registry.model import provenance_for
from pipelines.registry.taxonomy import Taxonomy, load_taxonomy

_DATA_CLASS_LABELS = {
    "air_quality": "Air-quality readings",
    "acoustic_alerts": "Acoustic alerts",
    "audio_clips": "Audio clips",
    "charging_sessions": "Charging sessions",
    "device_identifiers": "Device identifiers",
    "footfall_counts": "Footfall counts",
    "images": "Images",
    "motion_counts": "Motion counts",
    "payment_records": "Payment records",
    "plate_reads": "Plate reads",
    "search_audit_log": "Search audit log",
    "session_records": "Session records",
    "vehicle_counts": "Vehicle counts",
    "video": "Video",
}

# Unit words for durations inside DTPR's own localised "Retained {{duration}}" text. Khmer and
# Tagalog fall back to English until someone who writes them reviews a translation.
_UNIT_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "years": ("year", "years"),
        "months": ("month", "months"),
        "weeks": ("week", "weeks"),
        "days": ("day", "days"),
        "hours": ("hour", "hours"),
        "minutes": ("minute", "minutes"),
        "seconds": ("second", "seconds"),
    },
    "es": {
        "years": ("año", "años"),
        "months": ("mes", "meses"),
        "weeks": ("semana", "semanas"),
        "days": ("día", "días"),
        "hours": ("hora", "horas"),
        "minutes": ("minuto", "minutos"),
        "seconds": ("segundo", "segundos"),
    },
    "fr": {
        "years": ("an", "ans"),
        "months": ("mois", "mois"),
        "weeks": ("semaine", "semaines"),
        "days": ("jour", "jours"),
        "hours": ("heure", "heures"),
        "minutes": ("minute", "minutes"),
        "seconds": ("seconde", "secondes"),
    },
    "pt": {
        "years": ("ano", "anos"),
        "months": ("mês", "meses"),
        "weeks": ("semana", "semanas"),
        "days": ("dia", "dias"),
        "hours": ("hora", "horas"),
        "minutes": ("minuto", "minutos"),
        "seconds": ("segundo", "segundos"),
    },
}
_AND = {"en": "and", "es": "y", "fr": "et", "pt": "e"}
_INDEFINITELY = {"en": "indefinitely", "es": "indefinidamente", "fr": "indéfiniment", "pt": "indefinidamente"}
# For a period declared 'unknown', inside DTPR's "Retained {{duration}}": no period is claimed.
_UNCLEAR = {
    "en": "(period not stated clearly)",
    "es": "(período no indicado claramente)",
    "fr": "(durée non indiquée clairement)",
    "pt": "(período não indicado claramente)",
}
FILLED = "filled in, not from the source"


def data_class_label(slug: str) -> str:
    """Display label for a data class slug (``plate_reads`` → ``Plate reads``)."""
    return _DATA_CLASS_LABELS.get(slug) or slug.replace("_", " ").capitalize()


def format_duration(period: str, lang: str = "en") -> str:
    """``P1Y6M`` → ``1 year and 6 months``; en, es, fr, pt, other languages in English."""
    words = _UNIT_WORDS.get(lang, _UNIT_WORDS["en"])
    d = parse_iso_duration(period)
    parts = [f"{n} {words[unit][0] if n == 1 else words[unit][1]}" for unit, n in d._asdict().items() if n] or [
        f"0 {words['days'][1]}"
    ]
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {_AND.get(lang, 'and')} {parts[-1]}"


def _quoted(text: str | None) -> str:
    return f"'{text}'" if text else "(no words given)"


def render_retention_text(rule: RetentionRule, lang: str = "en") -> str:
    """A plain sentence for a resident, generated from the machine-readable rule.

    Only English is written so far; every other ``lang`` gets the English sentence. (The DTPR
    element names on the card *are* localised, see ``dtpr_card``.)
    """
    label = data_class_label(rule.data_class)
    plural = label.endswith("s")
    be, it = ("are", "they") if plural else ("is", "it")
    if rule.kind == "none":
        return f"{label} {be} not kept: nothing is stored."
    if rule.kind == "indefinite":
        return f"{label} {be} kept indefinitely."
    if rule.kind == "unknown":
        # The source's words, verbatim: never a period read into them.
        return f"{label}: retention not stated clearly: {_quoted(rule.stated)}."
    span = format_duration(rule.period, "en")
    start = {
        "window_end": f" after {it} {be} recorded",
        "window_start": f", counted from the start of {'their' if plural else 'its'} collection window",
        "case_closed": " after the related case is closed",
    }[rule.trigger]
    return f"{label} {be} kept for {span}{start}, then deleted."


@dataclass(frozen=True)
class CardSection:
    """One DTPR category of a deployment's card; ``extra`` holds sensorlog's own lines (in English)."""

    category_id: str
    category_name: str
    elements: list[tuple[str, str, str]]
    extra: list[str]


def _elements(ids: Iterable[str], lang: str, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    return [(i, taxonomy.element(i).name(lang), taxonomy.element(i).description(lang)) for i in ids]


def _retention_elements(policy: PolicyVersion, lang: str, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for rule in policy.retention:
        if rule.kind == "none":
            entry = _elements(["retention__no_data_retained"], lang, taxonomy)[0]
        else:
            element = taxonomy.element("retention__data_retained")
            if rule.kind == "indefinite":
                span = _INDEFINITELY.get(lang, "indefinitely")
                # DTPR's description ("stored for X, and after this ... deleted") is wrong for no end date.
                description = "Data is kept with no planned deletion date."
            elif rule.kind == "unknown":
                span = _UNCLEAR.get(lang, _UNCLEAR["en"])
                description = f"Data is kept, for a period the source does not state clearly: {_quoted(rule.stated)}."
            else:
                span = format_duration(rule.period, lang)
                description = element.description(lang).replace("{{duration}}", span)
            entry = (element.id, element.name(lang).replace("{{duration}}", span), description)
        if entry not in out:
            out.append(entry)
    return out


def grant_who(grant: AccessGrant) -> str:
    """Who a grant names: the organisation, a count of organisations not named, or the source's words."""
    if grant.form == "unstated":
        return f"Access not stated clearly: {_quoted(grant.stated)}"
    if grant.form == "counted":
        count = grant.count or 0
        who = f"{count:,} organisation{'s' if count != 1 else ''}, not named"
        return f"{who} ({grant.description})" if grant.description else who
    return grant.organisation or ""


def grant_line(grant: AccessGrant) -> str:
    """One grant as declared: what the source does not state is said to be not stated, never filled."""
    purpose = grant.purpose or "purpose not stated"
    if grant.form == "unstated":
        return grant_who(grant)
    if grant.form == "counted":
        roles = f", as {', '.join(grant.roles)}" if grant.roles else ""
        return f"{grant_who(grant)}{roles}: {purpose}"
    roles = ", ".join(grant.roles) if grant.roles else "roles not stated"
    return f"{grant.organisation} ({roles}): {purpose}"


def source_note(deployment: Deployment, path: str) -> str | None:
    """Where the value at ``path`` came from, in words, for showing next to it: ``provenance.fields``,
    else the record's ``provenance.filled`` (filled in, not from the source); None when nothing is said."""
    source = deployment.source_of(path)
    if source is None and deployment.provenance:
        filled = {p: FILLED for p in deployment.provenance.get("filled", ())}
        source = provenance_for(filled, path)
    return source


def _note(source: str, what: str = "") -> str:
    if source == FILLED:
        return f"({what + ' ' if what else ''}{FILLED})"
    return f"({what + ' ' if what else ''}source: {source})"


def _sourced(deployment: Deployment, path: str, text: str, parts: tuple[str, ...] = ()) -> str:
    """``text`` with where the value at ``path`` came from; ``parts`` are sub-fields (``roles``) whose
    own source, when it differs, is said as well."""
    if not deployment.field_provenance and not (deployment.provenance and deployment.provenance.get("filled")):
        return text  # nothing to say (most records; a card may list thousands of grants)
    source = source_note(deployment, path)
    notes = [_note(source)] if source else []
    for part in parts:
        own = source_note(deployment, f"{path}.{part}")
        if own and own != source:
            notes.append(_note(own, part))
    if not notes:
        return text
    # Inside the sentence's full stop, so the note reads as part of it.
    joined = " ".join(notes)
    return f"{text[:-1]} {joined}." if text.endswith(".") else f"{text} {joined}"


def _data_sources_line(deployment: Deployment) -> list[str]:
    if not deployment.data_sources:
        return []
    parts = []
    for i, source in enumerate(deployment.data_sources):
        if source.name is not None:
            text = source.name
        else:
            count = source.count or 0
            text = f"{count:,} not named"
        if source.description:
            text += f" ({source.description})"
        note = deployment.source_of(f"data_sources[{i}]")
        parts.append(f"{text} [source: {note}]" if note and note != deployment.source_of("data_sources") else text)
    return [_sourced(deployment, "data_sources", f"Data sources consulted: {'; '.join(parts)}")]


def _card_extra(deployment: Deployment, policy: PolicyVersion, lang: str) -> dict[str, list[str]]:
    d = deployment
    role = f" ({d.accountable_role})" if d.accountable_role else ""
    partners = [f"With: {', '.join(d.partners)}"] if d.partners else []
    classes = [
        _sourced(d, f"data_classes[{i}]",
                 f"{data_class_label(c)}: {d.data_class_descriptions[c]}" if c in d.data_class_descriptions
                 else data_class_label(c))
        for i, c in enumerate(d.data_classes)
    ]
    devices = []
    if d.devices is not None:
        what = f" {d.devices.description}" if d.devices.description else ""
        devices = [_sourced(d, "devices", f"Devices: {d.devices.count:,}{what}")]
    search_audit = []
    if d.public_search_audit is not None:
        words = "published" if d.public_search_audit else "not published"
        search_audit = [_sourced(d, "public_search_audit", f"Public audit of searches: {words}")]
    since = f"Policy version {policy.version}, in force from {policy.effective_from.isoformat()}."
    rules_at, grants_at = d.policy_fields(policy)
    grants = [_sourced(d, f"{grants_at}[{i}]", grant_line(g), ("roles", "purpose"))
              for i, g in enumerate(policy.access)]
    rules = [_sourced(d, f"{rules_at}[{i}]", render_retention_text(r, lang)) for i, r in enumerate(policy.retention)]
    return {
        "accountable": [_sourced(d, "accountable", f"{d.accountable_organisation}{role}"), *partners],
        "purpose": [],
        "tech": [_sourced(d, "vendor", f"Vendor: {d.vendor}"), *devices],
        "data": [*classes, *_data_sources_line(d)],
        "process": [],
        "access": [*grants, *search_audit],
        "retention": [*rules, since],
        # In the page's language when the registry translates it (i18n.Localised; a source note makes it English).
        "storage": [_sourced(d, "storage.location", registry_text(d, "storage_location", lang) or d.storage_location)],
    }


def dtpr_card(deployment: Deployment, lang: str = "en", on: date | datetime | None = None) -> list[CardSection]:
    """The deployment's DTPR card: one section per device category, in DTPR's display order.

    Element names and descriptions come from the taxonomy in ``lang`` (English for unknown codes);
    retention elements are generated from the policy in force ``on`` that day (default: the current
    policy). Every category is present, possibly empty, so a renderer can rely on the order.
    """
    taxonomy = load_taxonomy()
    policy = deployment.policy_at(on) if on is not None else deployment.current_policy
    extra = _card_extra(deployment, policy, lang)
    ids = {
        "accountable": deployment.accountable_elements,
        "purpose": deployment.purposes,
        "tech": deployment.technologies,
        "data": deployment.data_types,
        "process": deployment.processing,
        "access": deployment.access_elements,
        "storage": deployment.storage_elements,
    }
    sections = []
    for category in taxonomy.categories_in_order():
        if category.id == "retention":
            elements = _retention_elements(policy, lang, taxonomy)
        else:
            elements = _elements(ids[category.id], lang, taxonomy)
        sections.append(CardSection(category.id, category.name(lang), elements, extra[category.id]))
    return sections
