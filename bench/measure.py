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

    data = {}
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
