"""The portal's data-quality page: what validation found in each landed file, from the batch manifests.

Writes, under the site::

    quality/index.html              every event batch (newest first, at most PAGE_ROWS): its file, rows,
    <lang>/quality/index.html       what was quarantined and which checks failed, with links; one page per
                                    language of the build, from the catalogs (template quality.html)
    quality/validation.json         the same for every batch, machine-readable (the manifests' members),
    quality/validations/<key>.json  and each batch's Great Expectations Validation Results, GX's own JSON, in
                                    the public copy: counts and percentages, no row values of text
                                    columns (``pipelines.quality.public``); these once, at the site root

GX's own Data Docs HTML is not copied: its pages load scripts and styles from CDNs, and no portal page
loads anything from the network. The public Data Docs site is built beside the results, in
``<home>/quality/public/data_docs/`` (docs/data-quality.md), for an operator who chooses to serve it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import layout, resolutions, storage
from pipelines.config import Settings
from pipelines.portal.options import PortalOptions

# _globals: the words, links and switcher every portal page shares (the quality page is one of them).
from pipelines.portal.pages import Common, _globals, environment
from pipelines.records import Manifest
from pipelines.site import Site

PAGE_ROWS = 1000
PAGE = f"{layout.SITE_QUALITY_DIR}/index.html"  # a language's page, under its prefix


def _manifests(settings: Settings) -> list[Manifest]:
    found = []
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        if manifest.kind is None:  # event batches; a declaration batch validates no landed file
            found.append(manifest)
    return sorted(found, key=lambda m: (m.validated_at, m.batch_id), reverse=True)


def write_quality_data(site: Site, settings: Settings) -> list[dict[str, Any]]:
    """The page's JSON and the public Validation Results, once per build; returns the batch summaries,
    newest first, that every language's page shows."""
    manifests = _manifests(settings)
    public_root = Path(layout.public_validations_dir(settings))
    # Corrections and quarantine resolutions (docs/corrections.md): what replaced a batch, what became
    # of its quarantined rows.
    superseded_by = {old: m.batch_id for m in manifests for old in (m.supersedes or ())}
    resolved = {q.batch_id: q for q in resolutions.by_batch(settings)}
    summaries = []
    for m in manifests:
        refs = []
        for ref in m.validation_results or ():
            source = public_root / ref["result"].removeprefix("validations/")
            if source.is_file():
                # Under the same key as in the home: the manifest's path, relative to quality/.
                site.write(f"{layout.SITE_QUALITY_DIR}/{ref['result']}", source.read_bytes())
                refs.append({"table": ref["table"], "result": ref["result"]})
        summaries.append({
            "batch_id": m.batch_id, "source_file": m.source_file, "validated_at": m.validated_at,
            "rows_in": m.rows_in, "published": m.published, "quarantined": m.quarantined,
            "duplicates": m.duplicates, "file_error": m.file_error, "validation": m.validation,
            "validation_results": refs,
            "supersedes": list(m.supersedes or ()), "superseded_by": superseded_by.get(m.batch_id),
            "quarantine_open": resolved[m.batch_id].open if m.batch_id in resolved else 0,
            "quarantine_resolutions": list(resolved[m.batch_id].outcomes) if m.batch_id in resolved else [],
        })
    listing = json.dumps({"batches": summaries}, indent=1, sort_keys=True)
    site.write(f"{layout.SITE_QUALITY_DIR}/validation.json", listing)
    return summaries


def _failed(summary: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(table, check, failing rows) of one batch, tables in name order."""
    return [(table, reason, n) for table, entry in sorted((summary["validation"] or {}).items())
            for reason, n in entry["failed"].items()]


def render_quality(common: Common, summaries: list[dict[str, Any]]) -> str:
    """One language's data-quality page (at ``quality/index.html`` under the language's prefix)."""
    rows = [{**s, "failed": _failed(s)} for s in summaries[:PAGE_ROWS]]
    return environment().get_template("quality.html").render(
        **_globals(common, "../"),
        page=PAGE,
        batches=rows,
        total=len(summaries),
        more=max(0, len(summaries) - PAGE_ROWS),
    )


def write_quality_page(site: Site, common: Common, prefix: str, summaries: list[dict[str, Any]]) -> None:
    site.write(prefix + PAGE, render_quality(common, summaries))


def write_quality(site: Site, settings: Settings, lang: str) -> int:
    """The data files and a one-language page at the site root (what a build does for its first
    language); returns the batches."""
    summaries = write_quality_data(site, settings)
    today = datetime.now(UTC).date()
    common = Common(PortalOptions.from_env(settings, lang), today.isoformat(), None, settings.timezone, today)
    write_quality_page(site, common, "", summaries)
    return len(summaries)
