"""The DAGs' params, without Airflow: each one's JSON Schema (what the trigger form offers and what
Airflow validates before a run starts) and what a task does with the value, so the DAG task only
passes it through and ``sensorlog`` takes the same values as options.

- ``sensorlog_ingest``: ``files`` (landed files: URIs, or paths relative to the landing root),
  ``prefix`` (a landing sub-folder) and ``reprocess`` → ``flow.discover``;
- ``sensorlog_audit``: ``as_of`` (a date or ISO datetime the audit judges as of) → :func:`audit_clock`;
- ``sensorlog_portal``: ``languages`` and ``out`` → :func:`build_portals`.

A value the schema accepts can still name nothing (a file that is not landed, a folder outside the
landing root): the task then fails with an error naming it (``flow.SelectionError``,
:class:`ParamError`), and is not retried, since a retry would fail the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipelines.clock import parse_as_of
from pipelines.config import PortalSettings, Settings
from pipelines.errors import USAGE, SensorlogError
from pipelines.registry.taxonomy import SUPPORTED_LANGS

# An ISO date, or an ISO datetime with an optional zone (``parse_as_of`` reads it; the pattern only
# keeps the trigger form from accepting anything else).
AS_OF_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"


class ParamError(SensorlogError, ValueError):
    """A DAG param (or its CLI option) that the schema accepts but that cannot be used."""

    exit_code = USAGE


# name -> (default, description, JSON Schema). Kept as plain data so a test can check the schemas
# without Airflow, and the DAG files turn each into an ``airflow.sdk.Param``.
INGEST_PARAMS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "files": (
        None,
        "Only these landed files: URIs or paths relative to the landing root (e.g. vendor-a/2026-07-02.ndjson)."
        " Empty: every landed file no manifest covers.",
        {"type": ["null", "array"], "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
    ),
    "prefix": (
        None,
        "Only the landed files under this landing sub-folder (e.g. vendor-a).",
        {"type": ["null", "string"], "minLength": 1},
    ),
    "reprocess": (
        False,
        "Stage the selected files again even if the processed-file record says they are done. Publishing"
        " stays idempotent: a file whose bytes are published is the same batch and adds nothing.",
        {"type": "boolean"},
    ),
}

AUDIT_PARAMS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "as_of": (
        None,
        "Judge the log as of this date (local midnight in the city's time zone) or ISO datetime, as if it"
        " were today. Empty: today (SENSORLOG_NOW, else the clock).",
        {"type": ["null", "string"], "pattern": AS_OF_PATTERN},
    ),
}

PORTAL_PARAMS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "languages": (
        None,
        f"Languages to build ({', '.join(SUPPORTED_LANGS)}), in one build: the first language's pages at the"
        " output folder, each other's in <output>/<language>/, the data files once at the output folder."
        " Empty: SENSORLOG_PORTAL_LANG, else all six.",
        {"type": ["null", "array"], "items": {"type": "string", "enum": list(SUPPORTED_LANGS)},
         "minItems": 1, "uniqueItems": True},
    ),
    "out": (
        None,
        "Output folder or s3://bucket/prefix. Empty: SENSORLOG_PORTAL_OUT, else <SENSORLOG_HOME>/site.",
        {"type": ["null", "string"], "minLength": 1},
    ),
}


def audit_clock(settings: Settings, as_of: str | None) -> datetime | None:
    """The moment ``audit.publish`` takes as now for the ``as_of`` param (None: its own clock). A date
    is local midnight at its start, as ``sensorlog audit --as-of`` reads it."""
    try:
        return parse_as_of(as_of, settings.timezone)
    except ValueError as err:
        raise ParamError(f"as_of {as_of!r}: not an ISO date or datetime ({err})") from None


def portal_sites(settings: Settings, out: str | None, languages: Iterable[str] | None,
                 portal: PortalSettings | None = None) -> list[tuple[str, str | None]]:
    """(language, folder of its pages) for the ``languages`` and ``out`` params: one build writes them all,
    the first language at ``out`` (None: the portal's default), each other in ``<out>/<language>``, and
    the data files once, at ``out``."""
    from pipelines import layout, storage
    from pipelines.portal.i18n import build_languages

    portal = portal or PortalSettings.from_env()
    try:
        langs = build_languages(languages or portal.lang)
    except ValueError as err:
        raise ParamError(str(err)) from None

    base = out or portal.out
    root = base or layout.site_dir(settings)
    return [(lang, base if k == 0 else storage.join(root, lang)) for k, lang in enumerate(langs)]


def build_portals(settings: Settings, out: str | None, languages: Iterable[str] | None) -> list[dict[str, Any]]:
    """Build the portal in every language at once (``pipelines.portal.build_portal``, what ``sensorlog
    portal`` calls); one small dict per language, fit for XCom: where its pages are, how many files its
    pages are (``pages``) and how many the whole site is (``files``, data shared by every language)."""
    from pipelines.portal import build_portal

    sites = portal_sites(settings, out, languages)
    result = build_portal(settings, sites[0][1], languages=[lang for lang, _ in sites])
    return [{"lang": lang, "out": result.out if k == 0 else where, "files": result.files,
             "pages": result.pages.get(lang, 0), "datasets": result.datasets, "missing": result.missing}
            for k, (lang, where) in enumerate(sites)]
