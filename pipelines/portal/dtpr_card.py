"""A deployment's DTPR card and retention sentences for residents, rendered from the registry's
machine-readable records (never the other way round)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from pipelines.registry import AccessGrant, Deployment, PolicyVersion, RetentionRule, parse_iso_duration
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
            span = (
                _INDEFINITELY.get(lang, "indefinitely")
                if rule.kind == "indefinite"
                else format_duration(rule.period, lang)
            )
            # DTPR's description ("stored for X, and after this ... deleted") is wrong for no end date.
            description = (
                "Data is kept with no planned deletion date."
                if rule.kind == "indefinite"
                else element.description(lang).replace("{{duration}}", span)
            )
            entry = (element.id, element.name(lang).replace("{{duration}}", span), description)
        if entry not in out:
            out.append(entry)
    return out


def _grant_line(grant: AccessGrant) -> str:
    return f"{grant.organisation} ({', '.join(grant.roles)}): {grant.purpose}"


def _card_extra(deployment: Deployment, policy: PolicyVersion, lang: str) -> dict[str, list[str]]:
    role = f" ({deployment.accountable_role})" if deployment.accountable_role else ""
    partners = [f"With: {', '.join(deployment.partners)}"] if deployment.partners else []
    classes = [
        f"{data_class_label(c)}: {deployment.data_class_descriptions[c]}"
        if c in deployment.data_class_descriptions
        else data_class_label(c)
        for c in deployment.data_classes
    ]
    since = f"Policy version {policy.version}, in force from {policy.effective_from.isoformat()}."
    return {
        "accountable": [f"{deployment.accountable_organisation}{role}", *partners],
        "purpose": [],
        "tech": [f"Vendor: {deployment.vendor}"],
        "data": classes,
        "process": [],
        "access": [_grant_line(g) for g in policy.access],
        "retention": [*(render_retention_text(r, lang) for r in policy.retention), since],
        "storage": [deployment.storage_location],
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
