"""Data Docs: GX's static site of the suites and of every stored Validation Result.

Two sites of the home's GX project (``pipelines.quality.project``): ``local_site`` in
``<home>/quality/data_docs/`` from the operator's results (sample failing values included), and
``public_site`` in ``<home>/quality/public/data_docs/`` from the copies without row values, which the
portal publishes under ``quality/data_docs/``. Both are built once per publish (the pages of the
results it added, the suites and the index: ``build(settings, keys)``), or all at once on demand
(``sensorlog data-docs``), never once per file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines import layout, storage
from pipelines.config import Settings
from pipelines.quality.project import LOCAL_SITE, PUBLIC_SITE, project, suite_name
from pipelines.quality.summary import key_of
from pipelines.records import Manifest
from pipelines.schemas import EVENT_TABLES

log = logging.getLogger("pipelines.quality")


@dataclass(frozen=True)
class DocsResult:
    index: str  # the operator site's index.html
    public_index: str
    results: int  # stored results the sites list


def stored_results(settings: Settings) -> int:
    root = Path(layout.validations_dir(settings))
    return sum(1 for _ in root.rglob("*.json")) if root.is_dir() else 0


def build(settings: Settings, keys: Iterable[Sequence[str]] | None = None) -> DocsResult:
    """Build both Data Docs sites: every page when ``keys`` is None, else the pages of the results of
    ``keys`` (ValidationResultIdentifier tuples), the suites' pages and each index."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = project(layout.quality_dir(settings)).context
    identifiers = None
    if keys is not None:
        identifiers = [ValidationResultIdentifier.from_tuple(tuple(k)) for k in keys]
        identifiers += [ExpectationSuiteIdentifier(name=suite_name(t)) for t in EVENT_TABLES]
    context.build_data_docs(site_names=[LOCAL_SITE, PUBLIC_SITE], resource_identifiers=identifiers)
    return DocsResult(
        index=str(Path(layout.data_docs_dir(settings)) / "index.html"),
        public_index=str(Path(layout.public_data_docs_dir(settings)) / "index.html"),
        results=stored_results(settings),
    )


def result_keys(settings: Settings, batch_ids: Iterable[str]) -> list[tuple[str, ...]]:
    """The stored results' keys that the manifests of ``batch_ids`` name (a batch without a manifest,
    one that failed to publish, has none)."""
    keys: list[tuple[str, ...]] = []
    for batch_id in batch_ids:
        uri = layout.manifest_file(settings, batch_id)
        if not storage.exists(uri):
            continue
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        keys.extend(key_of(r["result"]) for r in manifest.validation_results or ())
    return keys


def build_after_publish(settings: Settings, batch_ids: Iterable[str]) -> DocsResult | None:
    """``build`` for the results of the batches a publish added; a failure is logged, not raised: the
    batches are published whatever the docs, and ``sensorlog data-docs`` builds them again."""
    try:
        return build(settings, result_keys(settings, batch_ids))
    except Exception as exc:  # noqa: BLE001 - the docs are derived; the log and the data are what count
        log.warning("Data Docs not built (%s: %s); run 'sensorlog data-docs' to build them", type(exc).__name__, exc)
        return None
