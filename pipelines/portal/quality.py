"""The portal's data-quality page: what validation found in each landed file, from the batch manifests.

Writes, under the site::

    quality/index.html              every event batch (newest first, at most PAGE_ROWS): its file, rows,
                                    what was quarantined and which checks failed, with links
    quality/validation.json         the same for every batch, machine-readable (the manifests' members)
    quality/validations/<key>.json  each batch's Great Expectations Validation Results, GX's own JSON, in
                                    the public copy: counts and percentages, no row values of text
                                    columns (``pipelines.quality.public``)

GX's own Data Docs HTML is not copied: its pages load scripts and styles from CDNs, and no portal page
loads anything from the network. The public Data Docs site is built beside the results, in
``<home>/quality/public/data_docs/`` (docs/data-quality.md), for an operator who chooses to serve it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pipelines import layout, resolutions, storage
from pipelines.config import Settings
from pipelines.records import Manifest
from pipelines.site import Site

PAGE_ROWS = 1000
# overflow-wrap: file names, batch ids and check names have no spaces; a phone must still wrap them.
STYLE = """body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem;line-height:1.4}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:.3rem .5rem;text-align:left;
vertical-align:top;overflow-wrap:anywhere}td.n{text-align:right}ul{margin:0;padding-left:1rem}
@media (max-width: 40rem){table,tbody,tr,td,th{display:block}thead{display:none}td{border:0}
tr{border-bottom:1px solid #ccc}}"""


def _manifests(settings: Settings) -> list[Manifest]:
    found = []
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        if manifest.kind is None:  # event batches; a declaration batch validates no landed file
            found.append(manifest)
    return sorted(found, key=lambda m: (m.validated_at, m.batch_id), reverse=True)


def write_quality(site: Site, settings: Settings, lang: str) -> int:
    """Write the data-quality page, its JSON and the public Validation Results; returns the batches."""
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
    site.write(f"{layout.SITE_QUALITY_DIR}/index.html", _page(summaries, lang))
    return len(summaries)


def _failed(summary: dict[str, Any]) -> str:
    items = [
        f"<li>{html.escape(table)}: {html.escape(reason)} ({n})</li>"
        for table, entry in sorted((summary["validation"] or {}).items())
        for reason, n in entry["failed"].items()
    ]
    if summary["file_error"]:
        items.insert(0, f"<li>whole file rejected: {html.escape(summary['file_error'])}</li>")
    if summary["superseded_by"]:
        by = html.escape(summary["superseded_by"][:16])
        items.insert(0, f"<li><strong>superseded</strong> by the correction {by}… (its rows stay in the log"
                        " and are left out of every count)</li>")
    items += [f"<li>corrects {html.escape(old[:16])}…</li>" for old in summary["supersedes"]]
    items += [f"<li>resolved: {html.escape(what)}</li>" for what in summary["quarantine_resolutions"]]
    if summary["quarantine_open"]:
        items.append(f"<li>{summary['quarantine_open']} quarantined row(s) not resolved yet</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "none"


def _links(summary: dict[str, Any]) -> str:
    links = [
        f'<li><a href="{html.escape(r["result"])}">{html.escape(r["table"])} (GX result, JSON)</a></li>'
        for r in summary["validation_results"]
    ]
    return f"<ul>{''.join(links)}</ul>" if links else ""


def _page(summaries: list[dict[str, Any]], lang: str) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(s['source_file'])}<br><small>{html.escape(s['batch_id'][:16])}…</small></td>"
        f"<td>{html.escape(s['validated_at'])}</td>"
        f"<td class=\"n\">{s['rows_in']}</td><td class=\"n\">{s['published']}</td>"
        f"<td class=\"n\">{s['quarantined']}</td><td>{_failed(s)}</td><td>{_links(s)}</td>"
        "</tr>"
        for s in summaries[:PAGE_ROWS]
    )
    more = (
        f"<p>The {len(summaries) - PAGE_ROWS} older batches are in <a href=\"validation.json\">validation.json</a>.</p>"
        if len(summaries) > PAGE_ROWS else ""
    )
    return (
        f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Data quality</title><style>{STYLE}</style></head><body>"
        '<p><a href="../index.html">All deployments</a></p>'
        "<h1>Data quality</h1>"
        "<p>Every landed file is checked by the Great Expectations suites of its event tables and by the "
        "registry, clock and privacy rules before anything is published. Rows that fail are quarantined, "
        "never published; the counts below are rows failing each check (a row can fail several). The "
        "results link to Great Expectations' own JSON, without row values of text columns. "
        'Machine-readable: <a href="validation.json">validation.json</a>.</p>'
        f"<table><caption>{len(summaries)} landed files, newest first</caption><thead><tr>"
        '<th scope="col">File</th><th scope="col">Validated</th><th scope="col">Rows in</th>'
        '<th scope="col">Published</th><th scope="col">Quarantined</th><th scope="col">Failed checks</th>'
        '<th scope="col">Validation results</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{more}</body></html>"
    )
