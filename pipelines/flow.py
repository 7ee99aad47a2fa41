"""The ingest flow as the functions a DAG task, the CLI and the tests all call.

discover → (group) → stage each file (parallel, pure) → commit staged batches in landing order
(one writer). Each step is safe to repeat: staging a staged file and committing a committed batch
are no-ops, and a file is recognised by the SHA-256 of its bytes, wherever it lies.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from pipelines import config, layout, locks, publish, storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import USAGE, SensorlogError
from pipelines.ingest import plausibility
from pipelines.ingest.feeds import discovered_suffixes
from pipelines.ingest.feeds import selection as feed_selection
from pipelines.ingest.stage import StageResult, stage_files_together
from pipelines.quality import docs as quality_docs
from pipelines.records import BatchTotals
from pipelines.registry import RegistryError, home_registry
from pipelines.registry.sample import is_sample_registry

DEFAULT_GROUP_FILES = 12
DEFAULT_GROUP_BYTES = 256 * 1024 * 1024
# With staging processes, each is handed groups of at most this many consecutive files (their small tables
# validated in one GX call per table), small enough that the publisher soon has a group to publish while
# the workers stage the next ones.
WORKER_GROUP_FILES = 4

Progress = Callable[[str], None]
log = logging.getLogger(__name__)


def _processed_path(settings: Settings) -> Path:
    return Path(settings.state) / "processed.json"


def _key(settings: Settings, uri: str) -> str:
    """A landed file's key in the processed-file record: its path relative to the landing root (for an S3
    landing zone, relative to its prefix), so a home copied, moved or mounted elsewhere still knows its
    files. A file outside the landing root keeps its whole URI."""
    return layout.relative(settings.landing, uri)


def _is_absolute(key: str) -> bool:
    return key.startswith("/") or "://" in key


def _read_processed(settings: Settings) -> dict[str, dict]:
    path = _processed_path(settings)
    return json.loads(path.read_text()) if path.exists() else {}


def _relative_keys(settings: Settings, raw: dict[str, dict]) -> tuple[dict[str, dict], bool]:
    """``raw`` keyed relative to the landing root, and whether any key changed (a record written before
    keys were relative holds absolute paths or URIs). An absolute key under the current landing root is
    cut to its relative path; one under another root (the home was copied or moved) is kept when the
    manifest of its batch names a source file the key ends with, under that relative name; any other is
    dropped (the record is a cache: a dropped entry costs one re-hash of the file)."""
    out: dict[str, dict] = {}
    migrated: dict[str, dict] = {}
    changed = False
    for key, entry in raw.items():
        if not _is_absolute(key):
            out[key] = entry
            continue
        changed = True
        rel: str | None = _key(settings, key)
        if rel == key:
            rel = _source_file_of(settings, key, entry)
        if rel is not None and not _is_absolute(rel):
            migrated[rel] = entry
    # An entry already written under its relative key is newer than a migrated one.
    return {**migrated, **out}, changed


def _source_file_of(settings: Settings, key: str, entry: dict) -> str | None:
    """The relative name ``key`` had under the landing root it was recorded under: its batch's manifest
    names the file relative to that root (``Manifest.source_file``)."""
    batch_id = entry.get("batch_id")
    if not isinstance(batch_id, str):
        return None
    try:
        manifest = json.loads(storage.read_bytes(layout.manifest_file(settings, batch_id)))
    except (OSError, ValueError):
        return None
    source = manifest.get("source_file") if isinstance(manifest, dict) else None
    if isinstance(source, str) and source and not _is_absolute(source) and key.endswith("/" + source):
        return source
    return None


def _processed(settings: Settings) -> dict[str, dict]:
    """The processed-file record, keyed relative to the landing root; an old absolute-keyed record is
    migrated on first read (rewritten once, so its manifests are read once)."""
    record, changed = _relative_keys(settings, _read_processed(settings))
    if changed:
        _remember(settings, {})
    return record


def _remember(settings: Settings, entries: dict[str, dict]) -> None:
    # A cache only: losing it costs a re-hash of landed files, never correctness, because the
    # manifest named by the batch id is what decides whether a file is published.
    # Two runs on one home may both remember: merge under a lock, written atomically.
    path = _processed_path(settings)
    with locks.exclusive(path.with_suffix(".lock")):
        merged = {**_relative_keys(settings, _read_processed(settings))[0],
                  **{_key(settings, uri): entry for uri, entry in entries.items()}}
        write_atomic(path, json.dumps(merged, indent=1, sort_keys=True).encode())


def _fingerprint(info: storage.FileInfo) -> dict:
    return {"size": info.size, "mtime_ns": info.mtime_ns}


def landing(settings: Settings) -> storage.Listing:
    """What the landing zone holds, bounded by its root (``storage.list_landing``): the files to
    consider and what was set aside (symlinks, keys outside the prefix…) with the reason."""
    return storage.list_landing(settings.landing, discovered_suffixes())


class SelectionError(SensorlogError, ValueError):
    """A ``files`` or ``prefix`` selection (the ingest DAG's params, ``sensorlog discover/run``'s options)
    that names no landed file: unknown, outside the landing root, or with a ``..`` segment."""

    exit_code = USAGE


def discover(
    settings: Settings, files: Iterable[str] | None = None, prefix: str | None = None, reprocess: bool = False
) -> list[str]:
    """Landed files no manifest covers yet, in landing order (the sweep's view of the world).

    ``files`` (URIs, or paths relative to the landing root) and ``prefix`` (a landing sub-folder) narrow
    it to those files and everything under that folder (both: the union); each must name landed files,
    else :class:`SelectionError` names it. ``reprocess`` ignores the processed-file record: every
    selected file is hashed and staged again, and one whose bytes are already published stays one
    batch (its id is the SHA-256 of its bytes), so nothing is published twice.

    Anything the landing zone holds that is not a file under its root is logged and left alone;
    ``landing(settings).skipped`` lists it for a report."""
    found = landing(settings)
    for skipped in found.skipped:
        log.warning("landing zone: skipped %s", skipped)
    infos = found.files
    if files is not None or prefix is not None:
        infos = _selected(settings, found, list(files or []), prefix)
    known = {} if reprocess else _processed(settings)
    pending = []
    for info in infos:
        seen = known.get(_key(settings, info.uri))
        if seen and {k: seen.get(k) for k in ("size", "mtime_ns")} == _fingerprint(info):
            if storage.exists(layout.manifest_file(settings, seen["batch_id"])):
                continue
        pending.append(info.uri)
    return pending


def _selected(settings: Settings, found: storage.Listing, files: list[str], prefix: str | None
              ) -> list[storage.FileInfo]:
    """The landed files ``files`` and ``prefix`` name, in landing order."""
    by_key = {_key(settings, info.uri): info for info in found.files}
    chosen: set[str] = set()
    if prefix is not None:
        folder = landing_relpath(settings, prefix, "prefix", folder=True)
        under = [k for k in by_key if not folder or k.startswith(folder + "/")]
        if not under:
            raise SelectionError(f"prefix {prefix!r}: no landed file under {storage.join(settings.landing, folder)}")
        chosen.update(under)
    set_aside = {_key(settings, s.uri): s.reason for s in found.skipped}
    for name in files:
        key = landing_relpath(settings, name, "file")
        if key not in by_key:
            why = set_aside.get(key) or (
                f"no such landed file under {settings.landing} (discovery reads files ending in"
                f" {', '.join(discovered_suffixes())})")
            raise SelectionError(f"file {name!r}: {why}")
        chosen.add(key)
    return [info for key, info in by_key.items() if key in chosen]


def landing_relpath(settings: Settings, name: str, what: str = "file", folder: bool = False) -> str:
    """``name`` (a URI or path under the landing root, or a path relative to it) as a path relative to the
    landing root, or :class:`SelectionError` naming it: outside the root, with a ``.``/``..`` segment, or
    empty (a ``folder`` may be empty or ``/``-ended: the whole root)."""
    text = name if isinstance(name, str) else ""
    if text.startswith("file://"):
        text = text[len("file://"):]
    if _is_absolute(text):
        rel = layout.relative(settings.landing, text)
        if rel == text and text.rstrip("/") != settings.landing.rstrip("/"):
            raise SelectionError(f"{what} {name!r}: outside the landing root {settings.landing}")
        text = "" if rel == text else rel
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise SelectionError(f"{what} {name!r}: a path with a '.' or '..' segment (name it under the landing"
                             f" root {settings.landing} without one)")
    if not parts and not folder:
        raise SelectionError(f"{what} {name!r}: empty; name a file under the landing root {settings.landing}")
    return "/".join(parts)


def group_files(uris: Iterable[str], max_files: int = DEFAULT_GROUP_FILES) -> list[list[str]]:
    """Bounded groups of files, so a DAG maps one task per group rather than thousands of tiny ones."""
    uris = list(uris)
    return [uris[i : i + max_files] for i in range(0, len(uris), max_files)]


def deployment_ids(settings: Settings) -> dict[str, datetime]:
    """The registry's deployment ids, each with the instant it was commissioned (validation
    quarantines rows dated before it: ``pipelines.ingest.plausibility``)."""
    return plausibility.commissioning_instants(home_registry(settings))


def default_workers(env: Mapping[str, str] | None = None) -> int:
    """Staging processes for ``sensorlog run``: ``SENSORLOG_WORKERS``, else one per core."""
    configured = config.workers(env)
    return max(1, configured if configured is not None else (os.cpu_count() or 1))


def _failure(failures: list[dict] | None, what: str, name: str, exc: BaseException) -> None:
    """An unexpected error on one file or batch: logged and recorded, never a reason to stop the others.
    The file is not quarantined (the error may be transient: storage, memory); the next run retries it."""
    log.error("%s %s failed: %s: %s", what, name, type(exc).__name__, exc)
    if failures is None:
        raise exc
    failures.append({what: name, "error": f"{type(exc).__name__}: {exc}"})


def _exit_with_parent(parent: int) -> None:
    """A staging worker's initializer: exit once the process that started it is gone. A publisher killed
    by SIGKILL cannot shut its pool down, and its workers would otherwise go on staging alone, orphaned,
    beside the next run (staging is atomic, so a worker stopped mid-file leaves nothing half-done)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_groups(uris: list[str], workers: int) -> list[list[str]]:
    """Groups of consecutive files for ``workers`` staging processes: about two per worker, at most
    ``WORKER_GROUP_FILES`` files each, so every worker stays busy and publishing starts early."""
    size = max(1, min(WORKER_GROUP_FILES, math.ceil(len(uris) / (2 * max(1, workers)))))
    return group_files(uris, size)


def _stage_group(uris: list[str], settings: Settings, ids: Mapping[str, datetime]) -> list[StageResult | Exception]:
    """``stage_files_together`` in a staging process. An exception that cannot cross back to the
    publisher (one whose constructor takes other arguments than its message) comes back as a
    RuntimeError naming it, so one file's failure never fails its group's future."""
    out: list[StageResult | Exception] = []
    for result in stage_files_together(uris, settings, ids):
        if isinstance(result, Exception):
            try:
                pickle.loads(pickle.dumps(result))
            except Exception:  # noqa: BLE001 - any reason it cannot be sent back
                result = RuntimeError(f"{type(result).__name__}: {result}")
        out.append(result)
    return out


def staged_in_order(
    settings: Settings, uris: Iterable[str], workers: int = 1, progress: Progress | None = None,
    failures: list[dict] | None = None,
) -> Iterator[str]:
    """Stage each file and yield its batch id, in the order of ``uris``.

    Files are staged in groups of consecutive files (``stage_files_together``: each table's rows of a
    group are validated in one GX call). With ``workers`` > 1, groups are staged by that many processes
    (staging is a pure function of a file, so they never contend), and each id is yielded as soon as it
    and all before it are staged: the caller publishes batch k while the workers stage the files after it."""
    uris = list(uris)
    ids = deployment_ids(settings)
    feed_selection.load(settings)  # a broken feed setting stops the run here, before any file is staged
    pool = None
    if workers > 1 and len(uris) > 1:
        # spawn, not fork: a forked child would inherit the parent's threads' locks (DuckDB, Arrow pools).
        context = multiprocessing.get_context("spawn")
        groups = worker_groups(uris, workers)
        pool = ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=context,
                                   initializer=_exit_with_parent, initargs=(os.getpid(),))
    else:
        groups = group_files(uris)
    try:
        futures = [pool.submit(_stage_group, group, settings, ids) for group in groups] if pool else None
        for k, group in enumerate(groups):
            try:
                results = stage_files_together(group, settings, ids) if futures is None else futures[k].result()
            except Exception as exc:  # a group that failed as a whole (its worker died): each of its files
                results = [exc] * len(group)
            for uri, result in zip(group, results, strict=True):
                if isinstance(result, Exception):  # one file's unexpected error never holds back the others
                    _failure(failures, "file", uri, result)
                    if progress:
                        progress(uri)
                    continue
                if result.already_published:
                    _remember_published(settings, uri, result.batch_id)
                if progress:
                    progress(uri)
                yield result.batch_id
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _remember_published(settings: Settings, uri: str, batch_id: str) -> None:
    """A landed file whose bytes are already published (a copy, or a re-upload under another name) is
    remembered under its own name too, so the sweep does not hash it again every time."""
    info = storage.file_info(uri)
    if info is not None:
        _remember(settings, {uri: {**_fingerprint(info), "batch_id": batch_id}})


def stage_files(
    settings: Settings, uris: Iterable[str], progress: Progress | None = None, workers: int = 1
) -> list[str]:
    """Stage each file; returns the batch ids in the same order as ``uris``."""
    return list(staged_in_order(settings, uris, workers, progress))


def sample_settings_warnings(settings: Settings, deployment_ids: Iterable[str]) -> list[str]:
    """The log's settings still at the sample city's values for a registry that is not the sample's (see
    ``pipelines.registry.sample``; the portal reports its own, ``pipelines.portal.defaults``). The origin
    names the log in every signed checkpoint and a witness keeps it, so it must be set before the log
    begins: a log that began under the sample's name keeps it."""
    if settings.log_origin != config.DEMO_LOG_ORIGIN or is_sample_registry(deployment_ids):
        return []
    return [
        f"the log origin is still the sample city's ({config.DEMO_LOG_ORIGIN}) for a registry that is not the"
        " sample's: set SENSORLOG_LOG_ORIGIN (e.g. transparency.<your city's domain>/sensors) before the log"
        " begins; every checkpoint is signed under this name"
    ]


def commit_batches(
    settings: Settings, batch_ids: Iterable[str], progress: Progress | None = None,
    failures: list[dict] | None = None,
) -> dict:
    """Publish staged batches in order; returns totals over them (small enough for XCom). A batch
    that fails unexpectedly is reported under ``"failed"`` and the batches after it still publish."""
    failures = [] if failures is None else failures
    events = BatchTotals()
    declared: int | None = None  # reported only when the declarations were committed
    publish.recover(settings)  # a crash may have left a committed batch's files to move, even with nothing new
    try:  # what the events are judged against goes into the log before them
        declared = sum(m["published"] for m in publish.commit_declarations(settings))
    except RegistryError:
        raise
    except Exception as exc:
        _failure(failures, "declarations", settings.registry, exc)
    for warning in sample_settings_warnings(settings, home_registry(settings).ids()):
        log.warning(warning)  # the DAG task's log; the CLI prints the same list
    remembered, done = {}, set()
    added: list[str] = []  # the batches this run published (not those some run had published before)
    already = 0
    by_table: dict[str, int] = {}  # rows this run published, per table (the Asset events' extra)
    for batch_id in batch_ids:
        if batch_id in done:  # the same file landed twice is one batch
            if progress:
                progress(batch_id)
            continue
        done.add(batch_id)
        try:
            manifest, committed_here = publish.publish_batch_once(settings, batch_id)
        except Exception as exc:
            _failure(failures, "batch", batch_id, exc)
            if progress:
                progress(batch_id)
            continue
        # Published before (a re-processed file, a copy under another name, a copied home, another run
        # at the same time): counted apart, so a run's totals are what it added.
        if not committed_here:
            already += 1
        else:
            events = events.plus(manifest)
            added.append(batch_id)
            for out in manifest.outputs:
                by_table[out.table] = by_table.get(out.table, 0) + out.rows
        source = layout.absolute(settings.landing, manifest.source_file)
        info = storage.file_info(source)
        if info is not None:
            remembered[source] = {**_fingerprint(info), "batch_id": batch_id}
        if progress:
            progress(batch_id)
    _remember(settings, remembered)
    if done:  # once per publish, not per file: the Data Docs pages of these batches, and the index
        quality_docs.build_after_publish(settings, done)
    # The keys in the order a run always reported them (the CLI prints this dict as JSON, unsorted).
    totals: dict = {**events.to_dict(), "failed": failures}
    if declared is not None:
        totals["declarations"] = declared
    totals["already_published"] = already
    totals["batch_ids"] = added
    totals["published_by_table"] = by_table
    return totals


class BatchesFailed(SensorlogError, RuntimeError):
    """Some files or batches failed unexpectedly; every other one was published."""


def raise_on_failures(totals: dict) -> dict:
    """``totals`` unchanged, or :class:`BatchesFailed` naming what failed (for a DAG task to fail on)."""
    failed = totals.get("failed") or []
    if failed:
        names = "; ".join(f"{next(iter(f.values()))}: {f['error']}" for f in failed[:5])
        raise BatchesFailed(f"{len(failed)} not published (the others were): {names}")
    return totals


def run(
    settings: Settings, progress: Callable[[str, int], Progress] | None = None, workers: int = 1,
    files: Iterable[str] | None = None, prefix: str | None = None, reprocess: bool = False,
) -> dict:
    """The whole ingest in-process, as the DAG sequences it: stage, then publish in landing order.

    With ``workers`` > 1, staging runs in that many processes while this one publishes. ``files``,
    ``prefix`` and ``reprocess`` select what to ingest as for :func:`discover`."""
    pending = discover(settings, files, prefix, reprocess)
    stage_tick = progress("stage", len(pending)) if progress else None
    commit_tick = progress("publish", len(pending)) if progress else None
    failures: list[dict] = []
    staged = staged_in_order(settings, pending, workers, stage_tick, failures)
    return commit_batches(settings, staged, commit_tick, failures)


def notified_files(settings: Settings, asset_event_extras: Iterable[object]) -> list[str]:
    """Landed files named by S3 notifications carried in asset events (logged, never raising)."""
    from pipelines.ingest.notifications import bodies_from_asset_events, parse_messages

    found = parse_messages(bodies_from_asset_events(asset_event_extras), settings.landing)
    for line in found.ignored:
        log.info("notification ignored: %s", line)
    return found.uris


def ingest_files(settings: Settings, uris: Iterable[str], sweep: bool = True) -> dict:
    """Stage and publish ``uris`` (and, with ``sweep``, anything else landed that no manifest covers):
    the event-driven path. Files already published cost one hash and are skipped."""
    todo = list(dict.fromkeys([*uris, *(discover(settings) if sweep else [])]))
    failures: list[dict] = []
    return commit_batches(settings, staged_in_order(settings, todo, failures=failures), failures=failures)
