"""One measurement per process: ``python -m bench.measure <what> --result FILE [options]``.

Each sub-command does one job, times it with ``time.perf_counter`` and writes one JSON object to
``--result`` holding the seconds and the process's peak resident memory (``VmHWM``; for ``cli``,
the child's ``ru_maxrss``). ``bench.run`` starts each in a fresh interpreter, so no measurement
inherits another's memory or warm caches inside the process.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

BASELINE_BLOCK = 16 << 20


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_for(home: str, landing: str):
    from pipelines.config import PROJECT_DIR, Settings

    return Settings.from_env(cli_env(home, landing) | {"SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")})


def cli_env(home: str, landing: str) -> dict[str, str]:
    from pipelines.config import PROJECT_DIR

    return {"SENSORLOG_HOME": home, "SENSORLOG_LANDING": landing, "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}


# -- (a) the baseline ------------------------------------------------------------------------------


def baseline_schema():
    """Every field of every event type, typed: what a plain pyarrow job would declare."""
    import pyarrow as pa

    from pipelines.schemas import EVENT_TABLES, TIMESTAMP, event_table

    data: dict = {}
    for name in EVENT_TABLES:
        for f in event_table(name).payload_fields:
            data.setdefault(f.name, f.with_nullable(True))
    return pa.schema(
        [
            ("specversion", pa.string()),
            ("id", pa.string()),
            ("source", pa.string()),
            ("type", pa.string()),
            ("time", TIMESTAMP),
            ("datacontenttype", pa.string()),
            ("data", pa.struct(list(data.values()))),
        ]
    )


def baseline(args: argparse.Namespace) -> dict:
    """pyarrow.json.read_json with an explicit schema → zstd Parquet, one output file per input file."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    files = sorted(str(p) for p in Path(args.landing).rglob("*.ndjson"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schema = baseline_schema()
    rows = 0
    start = time.perf_counter()
    for i, path in enumerate(files):
        table = pj.read_json(
            path,
            read_options=pj.ReadOptions(block_size=BASELINE_BLOCK),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
        pq.write_table(table, out / f"part-{i:04d}.parquet", compression="zstd")
        rows += table.num_rows
        del table
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "files": len(files)}


# -- (b) sensorlog: stage + publish, with the time of each stage -----------------------------------


class _Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner, name: str, label: str, keep_calls: bool = False) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                took = time.perf_counter() - t
                self.seconds[label] += took
                if keep_calls:
                    self.calls[label].append(took)

        setattr(owner, name, timed)

    def wrap_generator(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*a, **kw):
            iterator = original(*a, **kw)
            while True:
                t = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    self.seconds[label] += time.perf_counter() - t
                    return
                self.seconds[label] += time.perf_counter() - t
                yield item

        setattr(owner, name, timed)


def sensorlog(args: argparse.Namespace) -> dict:
    """``flow.discover`` → ``flow.stage_files`` → ``flow.commit_batches``, as ``sensorlog run`` does."""
    from pipelines import flow, publish
    from pipelines.ingest import stage
    from pipelines.log import rowhash, writer
    from pipelines.publish import dedupe
    from pipelines.publish import writer as publish_writer

    timers = _Timers()
    # Stage = ingest (parse) + validate (GX + registry/clock) + row hashes + the rest (hash of the landed file,
    # staging Parquet, quarantine). Publish = dedupe + Parquet + ledger append + rest.
    timers.wrap(stage, "batch_id_of", "stage.hash_landed_file")
    timers.wrap_generator(stage, "parse_file", "stage.ingest")
    timers.wrap(stage, "validate_chunk", "stage.validate")
    timers.wrap(dedupe, "classify", "publish.dedupe")
    # Content and leaf hashes of each row are computed while staging (pipelines.log.rowhash).
    timers.wrap(rowhash, "content_hashes", "stage.row_hashes")
    timers.wrap(rowhash, "published_leaf_hashes", "stage.row_hashes")
    timers.wrap(publish_writer, "write_parquet", "publish.parquet")
    timers.wrap(writer.Log, "append", "publish.ledger_append", keep_calls=True)
    timers.wrap(publish, "publish_batch", "publish.batch", keep_calls=True)

    settings = settings_for(args.home, args.landing)
    t0 = time.perf_counter()
    pending = flow.discover(settings)
    t1 = time.perf_counter()
    batch_ids = flow.stage_files(settings, pending)
    t2 = time.perf_counter()
    totals = flow.commit_batches(settings, batch_ids)
    t3 = time.perf_counter()
    s = timers.seconds
    stages = {
        "discover": t1 - t0,
        "stage": t2 - t1,
        "ingest": s["stage.ingest"],
        "validate": s["stage.validate"],
        "row_hashes": s["stage.row_hashes"],
        "stage_other": (t2 - t1) - s["stage.ingest"] - s["stage.validate"] - s["stage.row_hashes"],
        "publish": t3 - t2,
        "dedupe": s["publish.dedupe"],
        "parquet": s["publish.parquet"],
        "ledger_append": s["publish.ledger_append"],
        "publish_other": (t3 - t2)
        - s["publish.dedupe"]
        - s["publish.parquet"]
        - s["publish.ledger_append"],
    }
    return {
        "seconds": t3 - t0,
        "stages": stages,
        "totals": totals,
        "files": len(pending),
        "per_batch_commit_seconds": timers.calls["publish.batch"],
        "per_batch_ledger_append_seconds": timers.calls["publish.ledger_append"],
    }


def sensorlog_parallel(args: argparse.Namespace) -> dict:
    """``flow.run`` with ``--workers`` staging processes, publishing here while they stage (``sensorlog
    run``'s default). Per-stage times are not comparable (staging runs in the workers), so only the
    total is taken, with this process's peak RSS and the largest worker's."""
    from pipelines import flow

    settings = settings_for(args.home, args.landing)
    start = time.perf_counter()
    totals = flow.run(settings, workers=args.workers)
    seconds = time.perf_counter() - start
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    main_peak = peak_rss_mb()
    return {
        "seconds": seconds,
        "workers": args.workers,
        "totals": totals,
        "peak_rss_mb": main_peak,
        "peak_rss_mb_worker": worker_peak,
        # The publisher and the workers overlap, so their sum bounds what the machine held at once.
        "peak_rss_mb_bound": main_peak + args.workers * worker_peak,
    }


# -- (d) the verify baseline -----------------------------------------------------------------------


def verify_baseline(args: argparse.Namespace) -> dict:
    """Read every published Parquet file with pyarrow and SHA-256 each row's leaf bytes.

    The leaf bytes are the documented canonical encoding (``pipelines.tlog.leaf``: RFC 8785 JSON of
    the row), built by its vectorised encoder ``table_leaf_hashes``, then checked against the
    ``leaf_hash`` column. That is the least any verifier must do; it does not rebuild the Merkle tree.
    """
    import pyarrow.parquet as pq

    from pipelines.tlog.leaf import table_leaf_hashes

    settings = settings_for(args.home, args.landing)
    files = sorted(Path(settings.published).glob("event_type=*/event_date=*/*.parquet"))
    rows = mismatches = 0
    start = time.perf_counter()
    for path in files:
        table_name = path.parent.parent.name.split("=", 1)[1]
        table = pq.read_table(path)
        hashes = table_leaf_hashes(table_name, table)
        stored = table.column("leaf_hash").combine_chunks()
        if b"".join(hashes).hex() != _concatenated(stored):
            mismatches += sum(1 for h, s in zip(hashes, stored.to_pylist(), strict=True) if h.hex() != s)
        rows += table.num_rows
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "files": len(files), "mismatches": mismatches}


def _concatenated(strings) -> str:
    """The values of a null-free string array joined, read straight from its buffers."""
    import numpy as np

    _, offsets, data = strings.buffers()
    width = 8 if str(strings.type) == "large_string" else 4
    off = np.frombuffer(offsets, f"i{width}", len(strings) + 1, strings.offset * width)
    return bytes(memoryview(data)[off[0] : off[-1]]).decode() if data is not None else ""


# -- (e) ledger append cost at the log's current size ----------------------------------------------


def ledger_append(args: argparse.Namespace) -> dict:
    """Append ``--batch`` leaves ``--repeat`` times to a copy of the log (the published one is left as is)."""
    from pipelines.log import writer

    settings = settings_for(args.home, args.landing)
    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(settings.log, scratch / "log")
    key = scratch / "keys" / "log.key"
    key.parent.mkdir(parents=True)
    shutil.copy2(settings.key_file, key)
    copy = dataclasses.replace(settings, log=str(scratch / "log"), key_file=str(key))
    t = time.perf_counter()
    log = writer.open_log(copy)
    opened = time.perf_counter() - t
    size_before = log.size
    appends = _timed_appends(log, "bench-append", args.repeat, args.batch)
    # What-if, for the report only: the same appends without the tile store's fsync per tile file.
    log.store.fsync = False
    unsynced = _timed_appends(log, "bench-append-nofsync", args.repeat, args.batch)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "log_size": size_before,
        "batch": args.batch,
        "open_seconds": opened,
        "append_seconds": appends,
        "seconds": sorted(appends)[len(appends) // 2],
        "append_seconds_without_tile_fsync": unsynced,
    }


# -- (f) one batch published into a home that already holds N rows ---------------------------------

# A home's folders whose files the publisher only ever adds (written to a temporary name and renamed,
# or moved into place by a rename), never rewrites in place: a copy may hard-link them. Everything else
# (the seen index, the log's tiles and batch records, the state) is copied byte for byte.
LINKED_FOLDERS = ("published", "quarantine", "manifests")


def copy_home(src: Path, dst: Path) -> None:
    """A private, writable copy of the home ``src`` at ``dst`` (hard links for ``LINKED_FOLDERS``)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for entry in sorted(src.iterdir()):
        if entry.is_dir():
            link = entry.name in LINKED_FOLDERS
            shutil.copytree(entry, dst / entry.name, symlinks=True, copy_function=os.link if link else shutil.copy2)
        else:
            shutil.copy2(entry, dst / entry.name)


class _TimedConnection:
    """The seen index the publisher opened, timing the end of its transaction and its close: a DuckDB
    connection's ``execute("COMMIT")``/``ROLLBACK`` and ``close``, or an index object's ``begin``,
    ``commit``, ``rollback`` and ``close`` (the index's write to disk happens there, outside ``classify``)."""

    TIMED = ("begin", "commit", "rollback", "close")

    def __init__(self, con, timers: _Timers) -> None:
        self._con, self._timers = con, timers

    def _timed(self, method, *a, **kw):
        t = time.perf_counter()
        try:
            return method(*a, **kw)
        finally:
            self._timers.seconds["publish.index_commit"] += time.perf_counter() - t

    def execute(self, sql, *a, **kw):
        if isinstance(sql, str) and sql.strip().upper() in ("COMMIT", "ROLLBACK"):
            return self._timed(self._con.execute, sql, *a, **kw)
        return self._con.execute(sql, *a, **kw)

    def __enter__(self):
        self._con.__enter__()
        return self

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)

    def __getattr__(self, name):
        attr = getattr(self._con, name)
        if name in self.TIMED and callable(attr):
            return functools.partial(self._timed, attr)
        return attr


def _wrap_if_present(timers: _Timers, owner, name: str, label: str, missing: list[str]) -> None:
    """Time ``owner.name`` when the publisher still has it (the benchmark outlives refactors)."""
    if callable(getattr(owner, name, None)):
        timers.wrap(owner, name, label)
    else:
        missing.append(f"{getattr(owner, '__name__', owner)}.{name}")


def home_prepare(args: argparse.Namespace) -> dict:
    """Let the current code bring a home built by an earlier version up to date, once, untimed by the
    report: what the publisher's recovery and the seen index do on their first open (e.g. the index
    gaining a column, its key runs built)."""
    from pipelines import publish
    from pipelines.publish import dedupe

    settings = settings_for(args.home, args.landing or str(Path(args.home) / "landing"))
    start = time.perf_counter()
    publish.recover(settings)
    dedupe.open_index(settings).close()
    return {"seconds": time.perf_counter() - start}


# (label in the report's JSON, what it times); "other" is publish_batch minus these.
HOME_BATCH_STEPS = (
    ("dedupe", "pipelines.publish.dedupe.classify: the batch's keys against the seen index, new keys added"),
    ("index_open_commit", "dedupe.open_index + the index transaction's begin, commit and close"),
    ("parquet", "pipelines.publish.writer.write_parquet (partition and quarantine files)"),
    ("log_open", "pipelines.log.writer.open_log"),
    ("log_append", "pipelines.log.writer.Log.append (row and manifest leaves, tiles, checkpoint)"),
    ("manifest", "pipelines.publish.writer.commit_manifest minus move_pending: the manifest, the commit point"),
    ("move_into_place", "pipelines.publish.writer.move_pending: pending files renamed into place"),
)


def home_batch(args: argparse.Namespace) -> dict:
    """Copy the built home ``--home`` to ``--scratch``, stage ``--batch-file`` into it (not timed as the
    publisher's), then time ``publish.publish_batch`` of that one batch, step by step."""
    from pipelines import flow, publish
    from pipelines.ingest.stage import stage_file
    from pipelines.log import writer as log_writer
    from pipelines.publish import dedupe
    from pipelines.publish import writer as publish_writer

    scratch = Path(args.scratch)
    home, landing = scratch / "home", scratch / "landing"
    t = time.perf_counter()
    copy_home(Path(args.home), home)
    copy_seconds = time.perf_counter() - t
    shutil.rmtree(landing, ignore_errors=True)
    batch_file = landing / "vendor-exports" / "bench-batch" / Path(args.batch_file).name
    batch_file.parent.mkdir(parents=True)
    shutil.copy2(args.batch_file, batch_file)
    settings = settings_for(str(home), str(landing))

    t = time.perf_counter()
    staged = stage_file(str(batch_file), settings, flow.deployment_ids(settings))
    stage_seconds = time.perf_counter() - t
    log_size_before = log_writer.open_log(settings).size

    # What commit_batches does once per run before its batches (not per batch): reported apart.
    t = time.perf_counter()
    publish.recover(settings)
    publish.commit_declarations(settings)
    per_run_seconds = time.perf_counter() - t

    # The copy and the staging left dirty pages; write them out now, so that a sync in the timed publish
    # (the log's syncfs(2), an fsync) pays for the batch's own writes, not for the copy's.
    t = time.perf_counter()
    os.sync()
    sync_seconds = time.perf_counter() - t

    timers = _Timers()
    missing: list[str] = []
    _wrap_if_present(timers, dedupe, "classify", "publish.dedupe", missing)
    original_open = getattr(dedupe, "open_index", None)
    if callable(original_open):

        def open_index(*a, **kw):
            t = time.perf_counter()
            try:
                return _TimedConnection(original_open(*a, **kw), timers)
            finally:
                timers.seconds["publish.index_commit"] += time.perf_counter() - t

        setattr(dedupe, "open_index", open_index)  # noqa: B010 (the module may lose the name)
    else:
        missing.append("dedupe.open_index")
    _wrap_if_present(timers, publish_writer, "write_parquet", "publish.parquet", missing)
    _wrap_if_present(timers, log_writer, "open_log", "publish.log_open", missing)
    _wrap_if_present(timers, log_writer.Log, "append", "publish.log_append", missing)
    _wrap_if_present(timers, publish_writer, "commit_manifest", "publish.commit_manifest", missing)
    _wrap_if_present(timers, publish_writer, "move_pending", "publish.move_pending", missing)

    t = time.perf_counter()
    manifest = publish.publish_batch(settings, staged.batch_id)
    total = time.perf_counter() - t
    s = timers.seconds
    steps = {
        "dedupe": s["publish.dedupe"],
        "index_open_commit": s["publish.index_commit"],
        "parquet": s["publish.parquet"],
        "log_open": s["publish.log_open"],
        "log_append": s["publish.log_append"],
        "manifest": s["publish.commit_manifest"] - s["publish.move_pending"],
        "move_into_place": s["publish.move_pending"],
    }
    steps["other"] = total - sum(steps.values())
    steps["total"] = total
    return {
        "seconds": total,
        "steps": steps,
        "not_timed": missing,
        "copy_seconds": copy_seconds,
        "stage_seconds": stage_seconds,
        "per_run_seconds": per_run_seconds,
        "sync_seconds": sync_seconds,
        "log_size_before": log_size_before,
        "log_size_after": log_writer.open_log(settings).size,
        "rows_in": manifest.rows_in,
        "published": manifest.published,
        "duplicates": manifest.duplicates,
        "quarantined": manifest.quarantined,
    }


# -- (c) a CLI command in a child process ----------------------------------------------------------


def _timed_appends(log, name: str, repeat: int, batch: int) -> list[float]:
    seconds = []
    for i in range(repeat):
        leaves = [os.urandom(32) for _ in range(batch)]
        t = time.perf_counter()
        log.append(f"{name}-{i}", log.size, leaves)
        seconds.append(time.perf_counter() - t)
    return seconds


def cli(args: argparse.Namespace) -> dict:
    env = {**os.environ, **cli_env(args.home, args.landing)}
    out = Path(args.stdout) if args.stdout else None
    start = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        proc = subprocess.run(args.command, env=env, stdout=sink, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "returncode": proc.returncode,
        "stderr_tail": proc.stderr.decode(errors="replace")[-2000:],
        "peak_rss_mb_child": child_peak,
    }


JOBS = {
    "baseline": baseline,
    "sensorlog": sensorlog,
    "sensorlog-parallel": sensorlog_parallel,
    "verify-baseline": verify_baseline,
    "ledger-append": ledger_append,
    "home-batch": home_batch,
    "home-prepare": home_prepare,
    "cli": cli,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.measure")
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("--result", required=True)
    parser.add_argument("--landing")
    parser.add_argument("--home")
    parser.add_argument("--out")
    parser.add_argument("--scratch")
    parser.add_argument("--stdout")
    parser.add_argument("--batch-file")
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.command = command
    result = JOBS[args.job](args)
    result.setdefault("peak_rss_mb", result.get("peak_rss_mb_child") or peak_rss_mb())
    Path(args.result).write_text(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
