"""The open-data portal: a static, relocatable site built from the published logs.

One build writes every language of the site (default: all six shipped, ``i18n.SHIPPED_LANGS``). The
first language's pages are at the root of ``out``, each other language's under ``<lang>/`` (the same
page paths: ``km/index.html``, ``km/deployments/<id>.html``, ``km/signs/…``, ``km/quality/index.html``);
the data files (those below the "data files" line in the list) are written once, at the root, and
every language's pages link to them there. ``build_portal`` writes, under ``out`` (a folder or an
``s3://`` prefix)::

    index.html                      all deployments (filter and sort in the page), counts per organisation
                                    and kind, map, deployments without coordinates, downloads
    index-<n>.html                  further pages of the list when there are more than pages.LIST_ROWS,
    organisations/<slug>[-<n>].html and then one list per accountable organisation
    deployments/<id>.html           DTPR card, what it did, feedback, how to verify
    deployments/<id>-access[-<n>].html   every access grant, when the card only summarises them
    signs/<id>-{letter,a4}.svg      printable street signs with a QR code to the page in the sign's language
    quality/index.html              what validation found in each landed file (pipelines.portal.quality)
    ---- data files, once per build ----
    quality/validation.json, quality/validations/   the data-quality page's machine-readable results
    data/<table>/<table>.parquet    one Parquet extract per event table
    data/<table>/<table>[-YYYY-MM].csv   CSV extracts (one per month when large)
    derived/<table>/<table>.{parquet,csv}   the same for the audit's retention_ledger and findings
                                    (not under data/, which holds only logged tables)
    data/registry/deployments.{json,csv}
    schemas/<table>.tableschema.json    explicit Table Schemas (DCAT describedBy)
    schemas/events/*.schema.json    the CloudEvent payload JSON Schemas
    log/                            the complete static log (pipelines.log.export): checkpoints, key,
                                    tlog-tiles hash tiles and entry bundles, manifests, batch index
    declarations/<id>.json          every logged version of a deployment record (pipelines.portal.declared),
    declarations/<id>/<n>.{json,tlog-proof}   with each version's record and its inclusion proof
    data/declaration/declaration.{parquet,csv}   the declaration rows as one table
    data/event_type=T/event_date=D/<batch>.parquet   the logged Parquet files, byte for byte
    data.json                       DCAT-US 1.1 catalog
    datapackage.json                Frictionless Data Package
    DTPR-ATTRIBUTION.md
    SHA256SUMS                      every file's SHA-256, signed by the log key (pipelines.site_files)

Everything is written through ``pipelines.storage``; the DAG task and ``sensorlog portal`` call this.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines import layout, site_files, storage, summary
from pipelines.config import PACKAGE_DIR, PortalSettings, Settings
from pipelines.log import export, writer
from pipelines.log.verify import fingerprint
from pipelines.portal import basemap as basemaps
from pipelines.portal import declared
from pipelines.portal.activity import collect_activity, finding_counts
from pipelines.portal.datapackage import PACKAGE_NAME, ResourceFile, build_datapackage
from pipelines.portal.dcat import DatasetEntry, DistributionFile, build_catalog, iso_instant, temporal_range
from pipelines.portal.defaults import demo_defaults, qr_address_default
from pipelines.portal.extracts import Extract, csv_bytes, write_extracts
from pipelines.portal.i18n import Translator, build_languages, page_prefix
from pipelines.portal.options import PortalOptions
from pipelines.portal.pages import Common, DatasetView, LogInfo, access_pages, index_pages, render_deployment
from pipelines.portal.quality import write_quality_data, write_quality_page
from pipelines.portal.registry_export import registry_json, registry_schema, registry_table
from pipelines.portal.signs import PAPERS, render_sign, sign_path
from pipelines.portal.tables import DERIVED_TABLES, DESCRIPTIONS, TITLES, PublishedTable, flatten_nested, read_tables
from pipelines.portal.tableschema import arrow_table_schema
from pipelines.registry import Registry, home_registry
from pipelines.schemas import DECLARATION_TABLE, EVENT_TABLES, schema_path
from pipelines.site import Site, media_type
from pipelines.tlog import note
from pipelines.tlog.checkpoint import open_checkpoint
from pipelines.tlog.layout import CHECKPOINT, VKEY

__all__ = ["PortalResult", "build_portal"]

ATTRIBUTION_FILE = PACKAGE_DIR / "data" / "DTPR-ATTRIBUTION.md"
ATTRIBUTION = "DTPR-ATTRIBUTION.md"  # its path in the site
SUMS = site_files.FILE_NAME
FORMAT_LABELS = {"parquet": "Parquet", "csv": "CSV", "json": "JSON"}


@dataclass(frozen=True)
class PortalResult:
    out: str
    files: int
    bytes: int
    deployments: int
    datasets: list[str]
    missing: list[str]  # derived tables the audit has not written yet
    log_available: bool
    seconds: float
    warnings: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # first one at the root, the others under <lang>/
    pages: dict[str, int] = field(default_factory=dict)  # files of each language's pages (HTML, signs)


# -- the transparency log ------------------------------------------------------------------------


def _log_info(settings: Settings, warnings: list[str]) -> LogInfo | None:
    """The latest checkpoint (verified against the published key) and the key; None if there is none."""
    try:
        if writer.latest_checkpoint(settings) is None:
            return None
        checkpoint = writer.signed_checkpoint(settings)
        vkey = storage.read_bytes(storage.join(settings.log, VKEY)).decode("utf-8").strip()
        key = note.Verifier.from_vkey(vkey)
        _, signatures = note.parse_note(checkpoint)
    except (OSError, ValueError, writer.LedgerError) as exc:
        # Never publish a checkpoint that does not verify: say so and leave the section out.
        warnings.append(f"transparency log not published: {exc}")
        return None
    others = tuple(sorted({s.name for s in signatures if (s.name, s.key_id) != (key.name, key.key_id)}))
    return LogInfo(checkpoint, vkey, f"{key.name}+{key.key_id:08x}", fingerprint(key), others)


def _export_log(build: _Build, log: LogInfo | None) -> LogInfo | None:
    """The complete static log and its data files into the site; None (and a warning) if it cannot be."""
    if log is None:
        return None
    try:
        export.export_log(build.settings, build.site)
    except (export.ExportError, OSError, ValueError) as exc:
        build.warnings.append(f"transparency log not published: {exc}")
        return None
    return log


def _sign_file_list(build: _Build, log: LogInfo | None) -> None:
    """``SHA256SUMS`` over every file written, signed by the log key when there is a log."""
    files = [(f.path, f.sha256) for f in build.site.files.values() if f.path != SUMS]
    if log is None:
        build.site.write(SUMS, site_files.sums(files))
        return
    checkpoint = open_checkpoint(log.checkpoint, log.vkey)
    try:
        signer = writer.load_signer(build.settings)
    except writer.LedgerError as exc:
        build.warnings.append(f"{SUMS} is not signed: {exc}")
        build.site.write(SUMS, site_files.sums(files))
        return
    build.site.write(SUMS, site_files.sign(build.settings.log_origin, checkpoint, files, signer))


# -- catalog entries -----------------------------------------------------------------------------


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _file_title(table: str, extract: Extract) -> str:
    period = f", {extract.period}" if extract.period else ""
    return f"{TITLES.get(table, table)} ({FORMAT_LABELS[extract.format]}{period})"


def _resource_name(extract: Extract) -> str:
    return f"{extract.table}-{extract.format}" + (f"-{extract.period}" if extract.period else "")


def _modified(table: PublishedTable, fallback: datetime) -> str:
    bounds = table.time_range()
    return iso_instant(_seconds(bounds[1]) if bounds else _seconds(fallback))


def _seconds(value: datetime | date) -> datetime | date:
    return value.replace(microsecond=0) if isinstance(value, datetime) else value


def _temporal(table: PublishedTable) -> str | None:
    bounds = table.time_range()
    return temporal_range(_seconds(bounds[0]), _seconds(bounds[1])) if bounds else None


def _registry_dates(registry: Registry, today: date) -> tuple[date, date]:
    starts = [d.commissioned for d in registry]
    changes = [v.effective_from for d in registry for v in d.policy_versions]
    ends = [d.decommissioned or today for d in registry]
    return min(starts), max([*changes, *ends, *starts])


# -- the build -----------------------------------------------------------------------------------


@dataclass
class _Build:
    settings: Settings
    options: PortalOptions
    site: Site
    registry: Registry
    now: datetime
    today: date
    warnings: list[str] = field(default_factory=list)
    datasets: list[DatasetEntry] = field(default_factory=list)
    resources: list[ResourceFile] = field(default_factory=list)
    views: list[DatasetView] = field(default_factory=list)
    log: LogInfo | None = None

    def add_table(self, table: PublishedTable) -> None:
        extracts = write_extracts(self.site, table, self.options.csv_month_rows)
        schema_file = self.site.write(f"schemas/{table.name}.tableschema.json", _json(table.table_schema))
        self._register(table.name, table.title, table.description, extracts, schema_file.path,
                       _modified(table, self.now), _temporal(table), table.table_schema, table.data.num_rows)

    def add_registry(self, attribution: str) -> None:
        data = registry_table(self.registry)
        schema = arrow_table_schema(registry_schema(), ["id"])
        csv_entry = self.site.write("data/registry/deployments.csv", csv_bytes(flatten_nested(data)))
        json_entry = self.site.write("data/registry/deployments.json", registry_json(self.registry, attribution))
        schema_file = self.site.write("schemas/registry.tableschema.json", _json(schema))
        extracts = [Extract("registry", "csv", csv_entry, data.num_rows), Extract("registry", "json", json_entry, 0)]
        start, end = _registry_dates(self.registry, self.today)
        self._register("registry", TITLES["registry"], DESCRIPTIONS["registry"], extracts, schema_file.path,
                       iso_instant(end), temporal_range(start, end), schema, data.num_rows, dtpr=True)

    def add_declarations(self, published: declared.Published) -> None:
        """The declaration rows as a dataset like the event tables (extracts, schema, catalog entry)."""
        assert published.table is not None
        table = PublishedTable(DECLARATION_TABLE, published.table, published.table_schema, "event_time")
        extracts = write_extracts(self.site, table, self.options.csv_month_rows)
        schema_file = self.site.write(f"schemas/{DECLARATION_TABLE}.tableschema.json", _json(table.table_schema))
        self._register(DECLARATION_TABLE, declared.TITLE, declared.DESCRIPTION, extracts, schema_file.path,
                       _modified(table, self.now), _temporal(table), table.table_schema, table.data.num_rows)

    def _register(self, name: str, title: str, description: str, extracts: list[Extract], schema_path_: str,
                  modified: str, temporal: str | None, table_schema: dict, rows: int, dtpr: bool = False) -> None:
        files = [
            DistributionFile(e.path, e.format, media_type(e.path), e.file.sha256, e.file.size, _file_title(name, e))
            for e in extracts
        ]
        references = [ATTRIBUTION] if dtpr else []
        if name in EVENT_TABLES:
            references.append(f"schemas/events/{name}.schema.json")
        self.datasets.append(DatasetEntry(name, title, description, files, schema_path_, modified, temporal,
                                          [name.replace("_", " ")], references))
        for e in extracts:
            self.resources.append(ResourceFile(
                _resource_name(e), e.path, e.format, media_type(e.path), e.file.sha256, e.file.size,
                _file_title(name, e), description, None if e.format == "json" else table_schema, dtpr,
            ))
        self.views.append(DatasetView(name, title, description, rows, schema_path_, [
            {"path": e.path, "label": FORMAT_LABELS[e.format] + (f" {e.period}" if e.period else ""),
             "size": _human_size(e.file.size)} for e in extracts
        ]))


def _json(doc: object) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _previous_files(out: str) -> list[str]:
    """Files an earlier build of this portal wrote to ``out`` (so a rebuild can drop the ones it no longer
    writes). Only trusted when ``out`` holds this portal's own datapackage.json, never a stranger's SUMS."""
    uri, package = storage.join(out, SUMS), storage.join(out, "datapackage.json")
    if not (storage.exists(uri) and storage.exists(package)):
        return []
    try:
        if json.loads(storage.read_bytes(package)).get("name") != PACKAGE_NAME:
            return []
    except ValueError:
        return []
    listed = site_files.paths_of_unverified(storage.read_bytes(uri).decode("utf-8"))
    return [p for p in listed if ".." not in p.split("/") and not p.startswith("/")]


def _publish_declarations(build: _Build, log: LogInfo | None) -> dict[str, declared.History]:
    """Each deployment's logged declarations, proven against the site's checkpoint; none without a log."""
    if log is None:
        return {}
    try:
        published = declared.publish(build.settings, build.site, log.vkey, build.registry)
    except (declared.DeclaredError, writer.LedgerError, OSError, ValueError) as exc:
        build.warnings.append(f"declarations not published: {exc}")
        return {}
    if published.table is not None:
        build.add_declarations(published)
    return published.histories


def _write_pages(build: _Build, tables: dict[str, PublishedTable], languages: tuple[str, ...],
                 quality: list[dict[str, Any]]) -> dict[str, int]:
    """Every language's pages and signs; the data they link to is written once, before. Returns the number
    of files each language wrote."""
    settings, options, site = build.settings, build.options, build.site
    retention, findings = tables.get("retention_ledger"), tables.get("findings")
    activity = collect_activity(summary.connect(settings), build.registry, settings.timezone, retention, findings,
                                build.today)
    log = _export_log(build, _log_info(settings, build.warnings))
    build.log = log
    histories = _publish_declarations(build, log)
    origins = [settings.log_origin] + ([log.checkpoint.split("\n", 1)[0]] if log else [])
    notes = tuple(demo_defaults(build.registry.ids(), options, origins))
    build.warnings.extend(f"sample-city default: {n.text()}" for n in notes)
    # For every registry, the sample's too: a posted sign cannot be corrected like a page.
    qr_default = qr_address_default(options)
    if qr_default is not None:
        build.warnings.append(f"QR address not configured: {qr_default.text()}")
    generated = build.now.isoformat(timespec="seconds").replace("+00:00", "Z")
    counts = None if findings is None else finding_counts(findings)
    key = (log.key_id, log.fingerprint) if log else None
    base, base_warnings = basemaps.configured()  # SENSORLOG_PORTAL_BASEMAP; a bad file is a warning
    build.warnings.extend(base_warnings)
    written: dict[str, int] = {}
    for lang in languages:
        prefix = page_prefix(lang, languages)  # "" for the first language, "<lang>/" for the others
        before = len(site.files)
        common = Common(replace(options, lang=lang), generated, log, settings.timezone, build.today, notes,
                        languages)
        t = Translator(lang)
        for d in build.registry:
            paths = tuple(sign_path(d.id, paper) for paper in PAPERS)
            page = f"deployments/{d.id}.html"
            for paper, path in zip(PAPERS, paths, strict=True):
                # Each language's sign points to that language's page.
                site.write(prefix + path, render_sign(d, options.url(prefix + page), paper, t, lang, key,
                                                      qr_configured=qr_default is None))
            act = activity[d.id]
            site.write(prefix + page, render_deployment(
                common, d, act,
                None if retention is None else act.retention,
                None if findings is None else act.findings,
                (paths[0], paths[1]),
                histories.get(d.id),
            ))
            for path, html in access_pages(common, d):
                site.write(prefix + path, html)
        for path, html in index_pages(common, build.registry, activity, counts, build.views, base):
            site.write(prefix + path, html)
        write_quality_page(site, common, prefix, quality)
        written[lang] = len(site.files) - before
    return written


def build_portal(
    settings: Settings,
    out: str | None = None,
    lang: str | None = None,
    base_url: str | None = None,
    *,
    languages: str | Iterable[str] | None = None,
    csv_month_rows: int | None = None,
) -> PortalResult:
    """Build the whole site into ``out`` (default ``<home>/site``) in every language of ``languages``, the
    first at the root (None: ``lang`` alone when given, else SENSORLOG_PORTAL_LANG, else all six)."""
    started = time.perf_counter()
    if languages is None:
        languages = [lang] if lang else PortalSettings.from_env().lang
    langs = build_languages(languages)
    options = PortalOptions.from_env(settings, langs[0], base_url, csv_month_rows=csv_month_rows)
    out = out or layout.site_dir(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    build = _Build(settings, options, Site(out), home_registry(settings),
                   now, now.astimezone(ZoneInfo(settings.timezone)).date())
    previous = _previous_files(out)

    attribution = ATTRIBUTION_FILE.read_text(encoding="utf-8")
    build.site.write(ATTRIBUTION, attribution)
    for name in EVENT_TABLES:
        build.site.write(f"schemas/events/{name}.schema.json", schema_path(name).read_bytes())

    tables, missing = read_tables(settings)
    for table in tables:
        build.add_table(table)
    build.add_registry(attribution)
    for name in missing:
        build.views.append(DatasetView(name, TITLES[name], DESCRIPTIONS[name], None, None, []))
        build.warnings.append(f"{name}: not published yet (the audit has not written it)")
    quality = write_quality_data(build.site, settings)  # quality/*.json: what validation found, once
    pages = _write_pages(build, {t.name: t for t in tables if t.name in DERIVED_TABLES}, langs, quality)

    catalog = build_catalog(options, build.datasets, _bbox(build.registry))
    build.site.write("data.json", _json(catalog))
    package = build_datapackage(options, build.resources, iso_instant(now))
    build.site.write("datapackage.json", _json(package))

    _sign_file_list(build, build.log)
    build.site.finish()
    for path in previous:
        if path not in build.site.files:
            storage.delete(build.site.uri(path))  # only files an earlier build of this site wrote

    return PortalResult(
        out=out,
        files=len(build.site.files),
        bytes=sum(f.size for f in build.site.files.values()),
        deployments=len(build.registry),
        datasets=[d.name for d in build.datasets],
        missing=missing,
        log_available=f"{export.LOG_DIR}/{CHECKPOINT}" in build.site.files,
        seconds=round(time.perf_counter() - started, 2),
        warnings=build.warnings,
        languages=list(langs),
        pages=pages,
    )


def _bbox(registry: Registry) -> tuple[float, float, float, float] | None:
    try:
        return registry.bbox()
    except ValueError:
        return None
