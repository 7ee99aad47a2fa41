"""``python -m bench.run [--sizes 100000,1000000,5000000] [--home-sizes 1000000,10000000] [--out bench/results]``
(``make bench``).

For each size N: generate N events as CloudEvents NDJSON (``bench.generate``), then, each in its own
process (``bench.measure``), time and take the peak RSS of

(a) the baseline: ``pyarrow.json.read_json`` with an explicit schema → zstd Parquet, no validation;
(b) sensorlog: ``flow.discover`` → ``flow.stage_files`` (ingest + GX validation + row hashes + staging)
    → ``flow.commit_batches`` (dedupe + Parquet + ledger append), with each stage timed;
(c) ``sensorlog verify`` and ``sensorlog audit --format json`` over the result (CLI, child process);
(d) the verify baseline: pyarrow reads the published Parquet and SHA-256s each row's leaf bytes;
(e) the ledger append of one fixed-size batch at the log's size after (b) (on a copy of the log).

Then, for each home size N of ``--home-sizes`` (issue 15: a batch's publishing cost should not depend on
the log's size):

(f) a home holding N rows is built once (N generated events published by ``flow.run`` with one staging
    process per core: a real seen index, log, manifests and Parquet) and cached under ``--home-cache``
    (default ``$SENSORLOG_BENCH_CACHE``, else ``<tmp>/sensorlog-bench-cache``) as ``home-n<N>-<key>``,
    where the key hashes the bytes of ``pipelines/``, ``registry/`` and ``bench/generate.py``, the
    pyarrow/DuckDB/Python versions and ``HOME_FORMAT``: any change to the code that writes a home
    rebuilds it (and deletes that N's older entry). Then, ``--home-runs`` times, in its own process
    (``bench.measure home-batch``): the home is copied, one ``--home-batch``-event batch of new events
    (and a variant with ``--home-dupes`` of its rows exact copies of published ones) is staged, not
    timed, and ``publish.publish_batch`` is timed step by step (dedupe, index commit, Parquet, log
    append, manifest, …). Medians and every run go to the report, with the ratio largest/smallest home.
    ``--home-sizes none`` skips it, keeping the section of the results already in ``--out``; ``--sizes
    none`` runs only it, keeping the sections (a)–(e).

Then (g) the readers' side (``bench.query``, issue 15): the demo city is built in-process (``sensorlog
demo --no-airflow``, which compacts as the ingest DAG does; ``--query-home`` names a built home instead)
and DuckDB's ``count(*)`` and sum over each published event table is timed against the same rows in one
file, with the bytes of each. ``--query-home none`` skips it, keeping the section measured before.

Writes ``<out>/results.json`` and ``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.generate import GHOST, START, write_events

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
APPEND_BATCH = 100_000
DEFAULT_HOME_SIZES = (1_000_000, 10_000_000)
HOME_BATCH = 100_000
HOME_RUNS = 3
HOME_DUPES = 0.01
TARGET_ONE_PROCESS = 0.17  # issue 15: sensorlog's throughput as a share of the baseline's, in one process
TARGET_WORKERS = 0.35  # the same with one staging process per core
HOME_TARGET = 1.3  # the batch into the largest home costs at most this times the same into the smallest
HOME_FORMAT = "1"  # bump to rebuild every cached home (the key also hashes the code that writes a home)
SAMPLE_LINES = 20_000  # lines of a home's first landed file kept as the source of its variant's duplicates


def _machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_mb": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _versions() -> dict:
    import duckdb
    import great_expectations
    import pyarrow

    return {
        "pyarrow": pyarrow.__version__,
        "duckdb": duckdb.__version__,
        "great_expectations": great_expectations.__version__,
    }


def _sensorlog_bin() -> str:
    candidate = Path(sys.executable).with_name("sensorlog")
    return str(candidate) if candidate.exists() else "sensorlog"


def _has_command(name: str) -> bool:
    proc = subprocess.run([_sensorlog_bin(), "--help"], capture_output=True, text=True)
    return proc.returncode == 0 and any(
        line.strip("│ ").split(" ", 1)[0] == name for line in proc.stdout.splitlines()
    )


def _measure(job: str, work: Path, *args: str, command: list[str] | None = None) -> dict:
    """Run one ``bench.measure`` job in a fresh interpreter; return its JSON result."""
    result = work / f"{job}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "bench.measure", job, "--result", str(result), *args]
    if command:
        cmd += ["--", *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not result.exists():
        return {"error": f"exit {proc.returncode}: {proc.stderr[-3000:]}"}
    return json.loads(result.read_text())


def _log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def run_size(n: int, work: Path, keep: bool) -> dict:
    root = work / f"n{n}"
    shutil.rmtree(root, ignore_errors=True)
    landing, home = root / "landing", root / "home"
    _log(f"N={n:,}: generating")
    t = time.perf_counter()
    gen = write_events(landing, n, PROJECT / "registry")
    out: dict = {
        "events": gen.events,
        "files": len(gen.files),
        "ndjson_bytes": gen.bytes,
        "by_kind": gen.by_kind,
        "anomalies": gen.anomalies,
        "generate_seconds": time.perf_counter() - t,
    }
    common = ["--landing", str(landing), "--home", str(home)]

    _log(f"N={n:,}: baseline (pyarrow.json → zstd Parquet)")
    out["baseline"] = _measure("baseline", root, "--landing", str(landing), "--out", str(root / "baseline"))
    shutil.rmtree(root / "baseline", ignore_errors=True)

    _log(f"N={n:,}: sensorlog (stage + publish)")
    out["sensorlog"] = _measure("sensorlog", root, *common)

    workers = os.cpu_count() or 1
    _log(f"N={n:,}: sensorlog run with {workers} staging processes (a fresh home)")
    out["sensorlog_parallel"] = _measure(
        "sensorlog-parallel", root, "--landing", str(landing), "--home", str(root / "home-parallel"),
        "--workers", str(workers),
    )
    shutil.rmtree(root / "home-parallel", ignore_errors=True)

    sensorlog = _sensorlog_bin()
    if _has_command("verify"):
        _log(f"N={n:,}: sensorlog verify")
        out["verify"] = _measure(
            "cli", root, *common, "--stdout", str(root / "verify.out"), command=[sensorlog, "verify"]
        )
        out["verify"]["available"] = True
    else:
        out["verify"] = {"available": False, "note": "not available: `sensorlog verify` is not a command yet"}
    if _has_command("audit"):
        _log(f"N={n:,}: sensorlog audit")
        out["audit"] = _measure(
            "cli", root, *common, "--stdout", str(root / "audit.json"), command=[sensorlog, "audit", "--format", "json"]
        )
        out["audit"]["available"] = True
    else:
        out["audit"] = {"available": False, "note": "not available: `sensorlog audit` is not a command yet"}

    _log(f"N={n:,}: verify baseline (pyarrow read + SHA-256 of leaf bytes)")
    out["verify_baseline"] = _measure("verify-baseline", root, *common)

    _log(f"N={n:,}: ledger append of {APPEND_BATCH:,} leaves at the log's size")
    out["ledger_append"] = _measure(
        "ledger-append", root, *common, "--scratch", str(root / "append"), "--batch", str(APPEND_BATCH)
    )
    _derive(out)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _rate(events: int, part: dict) -> float | None:
    seconds = part.get("seconds")
    return events / seconds if seconds else None


def _derive(out: dict) -> None:
    n = out["events"]
    for cli in ("verify", "audit"):
        if out[cli].get("returncode"):
            out[cli]["error"] = f"exit {out[cli]['returncode']}: {out[cli].get('stderr_tail', '')[-500:]}"
    base, sl = out["baseline"], out["sensorlog"]
    base["events_per_s"] = _rate(n, base)
    sl["events_per_s"] = _rate(n, sl)
    if base.get("events_per_s") and sl.get("events_per_s"):
        out["throughput_ratio"] = sl["events_per_s"] / base["events_per_s"]
    par = out.get("sensorlog_parallel", {})
    par["events_per_s"] = _rate(n, par)
    if base.get("events_per_s") and par.get("events_per_s"):
        out["throughput_ratio_parallel"] = par["events_per_s"] / base["events_per_s"]
    vb, v = out["verify_baseline"], out["verify"]
    if v.get("seconds") and vb.get("seconds") and "error" not in v:
        out["verify_ratio"] = v["seconds"] / vb["seconds"]


def _fmt(value, spec: str = ".1f", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def _s(part: dict, key: str = "seconds") -> str:
    if part.get("available") is False:
        return "n/a"
    if "error" in part:
        return "error"
    return _fmt(part.get(key), ".1f")


def markdown(results: dict) -> str:
    sizes = results["sizes"]
    lines = [
        "# sensorlog benchmark",
        "",
        f"- date: {results['date']}",
        f"- machine: {results['machine']['cores']} cores ({results['machine']['cpu'] or 'unknown CPU'}), "
        f"{results['machine']['memory_mb']:,} MB RAM, Python {results['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"- command: `{results['command']}`",
        "- every measurement runs in its own process; peak RSS is that process's VmHWM (for CLI commands, the "
        "child's ru_maxrss). The machine is shared, so timings are noisy.",
    ]
    if sizes:
        lines += size_markdown(results)
    if results.get("home_batch"):
        lines += home_markdown(results["home_batch"])
    if results.get("query"):
        lines += query_markdown(results["query"])
    return "\n".join(lines) + "\n"


def size_markdown(results: dict) -> list[str]:
    sizes = results["sizes"]
    lines = [
        "",
        "## Throughput and memory",
        "",
        "| events | files | baseline s | baseline ev/s | sensorlog s | sensorlog ev/s | ratio | baseline RSS MB "
        "| sensorlog RSS MB | verify s | verify baseline s | verify ratio | audit s | audit RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in sizes.items():
        b, s = r["baseline"], r["sensorlog"]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{int(key):,}",
                    str(r["files"]),
                    _s(b),
                    _fmt(b.get("events_per_s"), ",.0f"),
                    _s(s),
                    _fmt(s.get("events_per_s"), ",.0f"),
                    _fmt(100 * r["throughput_ratio"], ".0f") + "%" if r.get("throughput_ratio") else "—",
                    _fmt(b.get("peak_rss_mb"), ",.0f"),
                    _fmt(s.get("peak_rss_mb"), ",.0f"),
                    _s(r["verify"]),
                    _s(r["verify_baseline"]),
                    _fmt(r.get("verify_ratio"), ".2f") + "×" if r.get("verify_ratio") else "n/a",
                    _s(r["audit"]),
                    _fmt(r["audit"].get("peak_rss_mb"), ",.0f") if r["audit"].get("available") else "n/a",
                ]
            )
            + " |"
        )
    stage_keys = [
        ("ingest", "ingest"),
        ("validate", "validate (GX + registry/clock)"),
        ("row_hashes", "row hashes (content + leaf)"),
        ("stage_other", "staging write + file hash"),
        ("dedupe", "dedupe (DuckDB index)"),
        ("parquet", "Parquet write"),
        ("ledger_append", "ledger append"),
        ("publish_other", "publish other"),
    ]
    lines += [
        "",
        "## sensorlog, seconds per stage",
        "",
        "| events | " + " | ".join(label for _, label in stage_keys) + " | stage total | publish total | total |",
        "|---:|" + "---:|" * (len(stage_keys) + 3),
    ]
    for key, r in sizes.items():
        st = r["sensorlog"].get("stages", {})
        lines.append(
            f"| {int(key):,} | "
            + " | ".join(_fmt(st.get(k), ".1f") for k, _ in stage_keys)
            + f" | {_fmt(st.get('stage'), '.1f')} | {_fmt(st.get('publish'), '.1f')} | {_s(r['sensorlog'])} |"
        )
    lines += [
        "",
        "## `sensorlog run` with staging processes (publishing overlaps staging; a fresh home)",
        "",
        "| events | workers | seconds | ev/s | ratio to baseline | publisher RSS MB | largest worker RSS MB "
        "| bound on RSS held at once MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in sizes.items():
        p = r.get("sensorlog_parallel") or {}
        ratio = r.get("throughput_ratio_parallel")
        lines.append(
            f"| {int(key):,} | {_fmt(p.get('workers'), 'd')} | {_s(p) if p else '—'} "
            f"| {_fmt(p.get('events_per_s'), ',.0f')} | {_fmt(100 * ratio, '.0f') + '%' if ratio else '—'} "
            f"| {_fmt(p.get('peak_rss_mb'), ',.0f')} | {_fmt(p.get('peak_rss_mb_worker'), ',.0f')} "
            f"| {_fmt(p.get('peak_rss_mb_bound'), ',.0f')} |"
        )
    lines += [
        "",
        "## Ledger append (one batch, on a copy of the log after the run)",
        "",
        "| log size before | batch | median append s | appends s | same without per-tile fsync (what-if) s "
        "| in-run append s per batch (first → last) |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for _key, r in sizes.items():
        la = r["ledger_append"]
        per = r["sensorlog"].get("per_batch_ledger_append_seconds") or []
        shown = per if len(per) <= 6 else [*per[:3], None, *per[-3:]]
        lines.append(
            f"| {_fmt(la.get('log_size'), ',.0f')} | {_fmt(la.get('batch'), ',.0f')} "
            f"| {_fmt(la.get('seconds'), '.2f')} | {', '.join(_fmt(x, '.2f') for x in la.get('append_seconds', []))} "
            f"| {', '.join(_fmt(x, '.2f') for x in la.get('append_seconds_without_tile_fsync', []))} "
            f"| {', '.join(_fmt(x, '.2f', '…') for x in shown)} |"
        )
    lines += ["", "## Targets (issue 15)", ""]
    lines += targets(results)
    lines += [
        "",
        "Notes: the baseline reads each NDJSON file with `pyarrow.json.read_json` (explicit schema, typed "
        "timestamps) and writes it as zstd Parquet. The verify baseline reads every published Parquet file "
        "with pyarrow and computes each row's RFC 9162 leaf hash over its canonical leaf bytes (RFC 8785 "
        "JSON, built by `pipelines.tlog.leaf.table_leaf_hashes`), compared with the stored `leaf_hash`; it "
        "does not rebuild the Merkle tree or check signatures. Generated data is valid CloudEvents with "
        "value-level anomalies at 1e-4 (negative counts, an unregistered deployment, exact duplicates).",
    ]
    return lines


def targets(results: dict) -> list[str]:
    sizes = {int(k): v for k, v in results["sizes"].items()}
    top = max(sizes) if sizes else None
    out: list[str] = []
    if top is None:
        return out
    r = sizes[top]
    ratio = r.get("throughput_ratio")
    out.append(
        f"- throughput at {top:,} events in one process ≥ {100 * TARGET_ONE_PROCESS:.0f}% of the baseline's: "
        + (f"{100 * ratio:.0f}% ({'met' if ratio >= TARGET_ONE_PROCESS else 'not met'})" if ratio else "not measured")
    )
    par = r.get("throughput_ratio_parallel")
    if par:
        workers = r["sensorlog_parallel"].get("workers")
        out.append(
            f"- the same with {workers} staging processes (one per core) ≥ {100 * TARGET_WORKERS:.0f}%: "
            f"{100 * par:.0f}% ({'met' if par >= TARGET_WORKERS else 'not met'})"
        )
    rss = r["sensorlog"].get("peak_rss_mb")
    out.append(
        f"- peak RSS at {top:,} ≤ 1.5 GB: " + (f"{rss:,.0f} MB ({'met' if rss <= 1536 else 'not met'})" if rss else "—")
    )
    mid = 1_000_000 if 1_000_000 in sizes and top != 1_000_000 else None
    if mid and rss and sizes[mid]["sensorlog"].get("peak_rss_mb"):
        growth = rss / sizes[mid]["sensorlog"]["peak_rss_mb"] - 1
        verdict = "met" if growth < 0.2 else "not met"
        out.append(f"- RSS growth 1M → {top:,}: {100 * growth:+.0f}% ({verdict}, target < 20%)")
    vr = r.get("verify_ratio")
    missing = "not measured (`sensorlog verify` not available)"
    out.append("- verify ≤ 2× its baseline: " + (f"{vr:.2f}× ({'met' if vr <= 2 else 'not met'})" if vr else missing))
    appends = sorted(
        (k, v["ledger_append"].get("seconds")) for k, v in sizes.items() if v["ledger_append"].get("seconds")
    )
    if len(appends) >= 2:
        out.append(
            f"- ledger append of {APPEND_BATCH:,} leaves, by log size: "
            + ", ".join(f"{v['ledger_append']['log_size']:,} rows → {s:.2f} s" for k, s in appends for v in [sizes[k]])
        )
    return out

# -- (g) the published tables against one file -------------------------------------------------------


def run_query(work: Path, which: str) -> dict:
    """Build the demo city (``which`` = ``demo``) or take the home at ``which``, then measure its
    published tables with ``bench.query`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    built = None
    if which == "demo":
        home = work / "demo-home"
        _log(f"(g) building the demo city in {home} (sensorlog demo --no-airflow)")
        t = time.perf_counter()
        proc = subprocess.run([_sensorlog_bin(), "demo", "--fresh", "--no-airflow"], cwd=PROJECT,
                              env={**env, "SENSORLOG_HOME": str(home)}, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": f"sensorlog demo: exit {proc.returncode}: {proc.stderr[-3000:]}"}
        built = time.perf_counter() - t
    else:
        home = Path(which)
    result = work / "query.json"
    _log(f"(g) DuckDB over the published tables of {home} against one file each")
    proc = subprocess.run([sys.executable, "-m", "bench.query", "--home", str(home), "--result", str(result)],
                          cwd=PROJECT, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not result.exists():
        return {"error": f"bench.query: exit {proc.returncode}: {proc.stderr[-3000:]}"}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "home": "the demo city" if which == "demo" else which,
        "build_seconds": built,
        "tables": json.loads(result.read_text()),
    }


def query_markdown(q: dict) -> list[str]:
    from bench.query import BYTES_TARGET, REPEAT, TIME_TARGET
    from bench.query import markdown as table_markdown

    lines = ["", "## Reading the published tables (issue 15)", ""]
    if q.get("error"):
        return [*lines, f"- not measured: {q['error']}"]
    lines += [
        f"- date: {q['date']}; command: `{q.get('command', 'python -m bench.run')}`; home: {q['home']}"
        + (f" (built in {q['build_seconds']:.0f} s)" if q.get("build_seconds") else ""),
        "- DuckDB `count(*)` and the sum of the table's first integer column over `read_parquet('<published>/"
        "event_type=<table>/**/*.parquet', hive_partitioning=true)`, against the same query over the same rows"
        f" in one zstd file; medians of {REPEAT} runs each on one connection; bytes: the published files against"
        " that file."
        f" Targets: time ≤ {TIME_TARGET:g}×, bytes ≤ {BYTES_TARGET:g}×.",
        "",
        *table_markdown(q["tables"]),
    ]
    return lines


# -- (f) one batch into a home of N rows ---------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def default_cache() -> Path:
    return Path(os.environ.get("SENSORLOG_BENCH_CACHE") or Path(tempfile.gettempdir()) / "sensorlog-bench-cache")


def home_key() -> str:
    """What a cached home depends on: the bytes of the code and data that write one, and the versions
    of the libraries whose file formats it holds (Parquet, the DuckDB index)."""
    import duckdb
    import pyarrow

    digest = hashlib.sha256(
        f"format {HOME_FORMAT}; python {platform.python_version()}; pyarrow {pyarrow.__version__}; "
        f"duckdb {duckdb.__version__}\n".encode()
    )
    files = [PROJECT / "bench" / "generate.py"]
    for folder in ("pipelines", "registry"):
        files += [p for p in (PROJECT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        digest.update(f"{path.relative_to(PROJECT)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _published_sample(path: Path, limit: int) -> list[bytes]:
    """Lines of a landed file that were published as they are (no value anomaly), up to ``limit``."""
    out: list[bytes] = []
    with open(path, "rb") as f:
        for line in f:
            if len(out) >= limit:
                break
            if b'"records": -1' not in line and GHOST.encode() not in line:
                out.append(line)
    return out


def build_home(n: int, cache: Path, key: str, reuse_format: bool = False) -> dict:
    """The cached home of ``n`` rows for ``key``, built first if it is not there. Returns its record
    (``entry`` is its folder). With ``reuse_format``, a home another code version built is taken instead
    of building one: copied, brought up to date by the current code (``bench.measure home-prepare``),
    and kept as ``home-n<N>-<key>-upgraded``."""
    entry = cache / f"home-n{n}-{key}"
    if reuse_format:
        upgraded = cache / f"home-n{n}-{key}-upgraded"
        for candidate in (entry, upgraded):
            if (candidate / "home.json").exists():
                return _cached(candidate)
        built = sorted(
            (p for p in cache.glob(f"home-n{n}-*") if not p.name.endswith("-upgraded") and (p / "home.json").exists()),
            key=lambda p: (p / "home.json").stat().st_mtime,
        )
        if built:
            return _upgrade_home(n, built[-1], upgraded, cache, key)
    if (entry / "home.json").exists():
        return _cached(entry)
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"home-n{n}-*"):  # a home of an older code version is never used again
        shutil.rmtree(old, ignore_errors=True)
    tmp = cache / f".building-n{n}-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    landing, home = tmp / "landing", tmp / "home"
    _log(f"home of {n:,} rows: generating (cache {entry})")
    t = time.perf_counter()
    gen = write_events(landing, n, PROJECT / "registry")
    generate_seconds = time.perf_counter() - t
    workers = os.cpu_count() or 1
    _log(f"home of {n:,} rows: publishing {len(gen.files)} files with {workers} staging processes")
    built_run = _measure(
        "sensorlog-parallel", tmp, "--landing", str(landing), "--home", str(home), "--workers", str(workers)
    )
    if "error" in built_run or built_run.get("totals", {}).get("failed"):
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"building the home of {n:,} rows failed: {built_run.get('error') or built_run['totals']}")
    (tmp / "published-sample.ndjson").write_bytes(b"".join(_published_sample(Path(gen.files[0]), SAMPLE_LINES)))
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(home / "staging", ignore_errors=True)
    totals = built_run["totals"]
    meta = {
        "rows_requested": n,
        "events": gen.events,
        "files": len(gen.files),
        "days": gen.days,
        "published": totals["published"],
        "declarations": totals.get("declarations", 0),
        "batches": totals["batches"],
        "generate_seconds": generate_seconds,
        "publish_seconds": built_run["seconds"],
        "workers": workers,
        "bytes": _bytes(home),
        "key": key,
        "built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    (tmp / "home.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, entry)
    return {**meta, "entry": str(entry), "reused": False}


def _bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())


def _cached(entry: Path) -> dict:
    return {**json.loads((entry / "home.json").read_text()), "entry": str(entry), "reused": True}


def _upgrade_home(n: int, source: Path, entry: Path, cache: Path, key: str) -> dict:
    from bench.measure import copy_home

    for old in cache.glob(f"home-n{n}-*-upgraded"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = cache / f".upgrading-n{n}-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    _log(f"home of {n:,} rows: bringing {source.name} up to date with this code (cache {entry})")
    copy_home(source / "home", tmp / "home")
    shutil.copy2(source / "published-sample.ndjson", tmp / "published-sample.ndjson")
    prepared = _measure("home-prepare", tmp, "--home", str(tmp / "home"))
    if "error" in prepared:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"upgrading the home of {n:,} rows failed: {prepared['error']}")
    meta = json.loads((source / "home.json").read_text())
    meta.update(upgraded_from=source.name, upgrade_seconds=prepared["seconds"], key=key, bytes=_bytes(tmp / "home"),
                upgraded=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    (tmp / "home.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, entry)
    return {**meta, "entry": str(entry), "reused": False}


def _batch_files(work: Path, homes: dict[int, dict], batch: int, dupes: float) -> dict:
    """The batch files: ``fresh`` (new events dated after every home's), and per home ``dupes`` (the
    same, its last rows replaced by published rows of that home). One file each."""
    folder = work / "home-batches"
    shutil.rmtree(folder, ignore_errors=True)
    after = max(meta["days"] for meta in homes.values()) + 1
    gen = write_events(folder / "gen", batch, PROJECT / "registry", start=START + timedelta(days=after),
                       anomaly_rate=0.0, per_file=batch)
    lines: list[bytes] = []
    for path in gen.files:
        with open(path, "rb") as f:
            lines += f.readlines()
    shutil.rmtree(folder / "gen")
    fresh = folder / "fresh.ndjson"
    fresh.write_bytes(b"".join(lines))
    files: dict = {"fresh": {n: fresh for n in homes}}
    if dupes > 0:
        files["dupes"] = {}
        for n in homes:
            with open(Path(homes[n]["entry"]) / "published-sample.ndjson", "rb") as f:
                sample = f.readlines()
            count = min(len(sample), max(1, round(batch * dupes)))
            step = max(1, len(sample) // count)
            dupes_file = folder / f"dupes-n{n}.ndjson"
            dupes_file.write_bytes(b"".join([*lines[: batch - count], *sample[::step][:count]]))
            files["dupes"][n] = dupes_file
    return files


STEP_LABELS = {
    "dedupe": "dedupe (`dedupe.classify`)",
    "index_open_commit": "seen index open + commit",
    "parquet": "Parquet write",
    "log_open": "log open",
    "log_append": "log append",
    "manifest": "manifest write",
    "move_into_place": "files moved into place",
    "other": "other",
    "total": "**publish_batch total**",
}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run_home_batches(
    sizes: list[int], work: Path, cache: Path, batch: int, runs: int, dupes: float, reuse_format: bool = False
) -> dict:
    key = home_key()
    homes = {n: build_home(n, cache, key, reuse_format) for n in sizes}
    files = _batch_files(work, homes, batch, dupes)
    measured: dict = {variant: {n: [] for n in sizes} for variant in files}
    # Runs interleave the sizes, so a change in the shared machine's load falls on every size alike.
    for run in range(runs):
        for variant, by_size in files.items():
            for n in sizes:
                _log(f"{batch:,}-event batch ({variant}) into the home of {n:,} rows, run {run + 1}/{runs}")
                scratch = work / f"home-batch-n{n}"
                r = _measure(
                    "home-batch", work, "--home", str(Path(homes[n]["entry"]) / "home"),
                    "--scratch", str(scratch), "--batch-file", str(by_size[n]),
                )
                shutil.rmtree(scratch, ignore_errors=True)
                measured[variant][n].append(r)
    shutil.rmtree(work / "home-batches", ignore_errors=True)
    out: dict = {
        "batch": batch,
        "runs": runs,
        "dupe_rate": dupes,
        "target": HOME_TARGET,
        "cache": str(cache),
        "key": key,
        "homes": {str(n): meta for n, meta in homes.items()},
        "variants": {},
    }
    for variant, by_size in measured.items():
        v: dict = {"sizes": {}}
        for n, rs in by_size.items():
            ok = [r for r in rs if "error" not in r]
            v["sizes"][str(n)] = {
                "runs": rs,
                "errors": [r["error"] for r in rs if "error" in r],
                "median": {k: _median([r["steps"][k] for r in ok]) for k in STEP_LABELS} if ok else {},
                "all": {k: [r["steps"][k] for r in ok] for k in STEP_LABELS},
            }
        small, large = str(min(sizes)), str(max(sizes))
        lo, hi = v["sizes"][small]["median"], v["sizes"][large]["median"]
        if len(sizes) > 1 and lo and hi:
            v["ratio"] = {k: hi[k] / lo[k] if lo[k] > 0 else None for k in STEP_LABELS}
        out["variants"][variant] = v
    return out


def _short(n: int) -> str:
    for unit, name in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return f"{n:,}"


def home_markdown(hb: dict) -> list[str]:
    sizes = sorted(int(n) for n in hb["homes"])
    small, large = min(sizes), max(sizes)
    lines = [
        "",
        f"## {_short(hb['batch'])}-event batch into a home of N rows (issue 15)",
        "",
        f"- date: {hb['date']}; command: `{hb['command']}`",
        f"- one batch of {hb['batch']:,} events published (`publish.publish_batch`) into a copy of a home that "
        f"already holds N rows; staged before, not timed; runs per size: {hb['runs']}, each in its own process, "
        "sizes interleaved. Cells: median seconds (every run).",
        "- homes: "
        + "; ".join(
            f"{int(n):,} rows requested → {m['published']:,} published + {m['declarations']} declarations in "
            f"{m['batches']} event batches, {m['bytes'] / 2**30:.2f} GiB "
            + (f"(reused from the cache, built {m['built']})" if m.get("reused") else
               f"(built in {m['generate_seconds']:.0f} s generating + {m['publish_seconds']:.0f} s publishing)")
            + (f", built by another code version ({m['upgraded_from']}) and brought up to date by this one's "
               f"upgrade path in {m['upgrade_seconds']:.0f} s" if m.get("upgraded_from") else "")
            for n, m in sorted(hb["homes"].items(), key=lambda kv: int(kv[0]))
        ),
    ]
    titles = {
        "fresh": "every event new",
        "dupes": f"{100 * hb['dupe_rate']:g}% of the events exact copies of published ones",
    }
    for variant, v in _variants(hb):
        ratio_head = f" {_short(large)} / {_short(small)} |" if len(sizes) > 1 else ""
        lines += [
            "",
            f"### {titles.get(variant, variant)}",
            "",
            "| step | " + " | ".join(f"into {_short(n)} rows, s" for n in sizes) + " |" + ratio_head,
            "|---|" + "---:|" * len(sizes) + ("---:|" if len(sizes) > 1 else ""),
        ]
        for k, label in STEP_LABELS.items():
            cells = []
            for n in sizes:
                part = v["sizes"][str(n)]
                if not part["median"]:
                    cells.append("error")
                    continue
                runs = ", ".join(f"{x:.2f}" for x in part["all"][k])
                cells.append(f"{part['median'][k]:.2f} ({runs})")
            row = f"| {label} | " + " | ".join(cells) + " |"
            if len(sizes) > 1:
                r = (v.get("ratio") or {}).get(k)
                row += f" {_fmt(r, '.2f')}× |" if r is not None else " — |"
            lines.append(row)
        extra = []
        for n in sizes:
            ok = [r for r in v["sizes"][str(n)]["runs"] if "error" not in r]
            if ok:
                r0 = ok[0]
                extra.append(
                    f"into {_short(n)}: log {r0['log_size_before']:,} → {r0['log_size_after']:,} leaves, "
                    f"{r0['published']:,} published, {r0['duplicates']:,} duplicates, {r0['quarantined']:,} "
                    f"quarantined; not timed above: staging {_median([r['stage_seconds'] for r in ok]):.1f} s, "
                    f"the copy of the home {_median([r['copy_seconds'] for r in ok]):.1f} s, the per-run "
                    f"recover + declarations check {_median([r['per_run_seconds'] for r in ok]):.2f} s"
                )
                if all("sync_seconds" in r for r in ok):
                    extra[-1] += f", the sync of the copy's writes {_median([r['sync_seconds'] for r in ok]):.1f} s"
                missing = sorted({m for r in ok for m in r.get("not_timed", [])})
                if missing:
                    extra[-1] += f"; not found to time (in other): {', '.join(missing)}"
            for err in v["sizes"][str(n)]["errors"]:
                extra.append(f"into {_short(n)}: a run failed: {err[-300:]}")
        lines += [""] + [f"- {e}" for e in extra]
    lines += ["", "### Target (issue 15; reported, not asserted)", ""]
    lines += home_targets(hb)
    lines += [
        "",
        "The copy hard-links the home's published, quarantine and manifest files (the publisher only adds "
        "files there, by rename) and copies the seen index, the log and the state, so every run starts from "
        "the same home; the copied files are then in the page cache (a long-running publisher's would be too), "
        "and written out (`os.sync`) before the timed publish, so that a sync in it pays for the batch's writes "
        "only. The machine is shared: a filesystem-wide sync (the log's `syncfs`) also waits for other "
        "processes' writes.",
    ]
    return lines


def _variants(hb: dict) -> list[tuple[str, dict]]:
    """The variants, every-event-new first (results.json keeps its keys sorted)."""
    return sorted(hb["variants"].items(), key=lambda kv: (kv[0] != "fresh", kv[0]))


def home_targets(hb: dict) -> list[str]:
    sizes = sorted(int(n) for n in hb["homes"])
    if len(sizes) < 2:
        return ["- needs two home sizes"]
    small, large = min(sizes), max(sizes)
    out = []
    for variant, v in _variants(hb):
        ratio = (v.get("ratio") or {}).get("total")
        name = "new events" if variant == "fresh" else f"{100 * hb['dupe_rate']:g}% duplicates"
        if ratio is None:
            out.append(f"- {name}: not measured")
            continue
        verdict = "met" if ratio <= hb["target"] else "not met"
        lo, hi = v["sizes"][str(small)]["median"], v["sizes"][str(large)]["median"]
        step = max((k for k in STEP_LABELS if k not in ("total", "other")), key=lambda k: hi[k] - lo[k])
        worst, grows = (step, v["ratio"][step]), hi[step] - lo[step]
        adds = (
            f"the step that adds most: {STEP_LABELS[worst[0]]} ({_fmt(worst[1], '.2f')}×, {grows:+.2f} s)"
            if grows >= 0.05 else "no step adds 0.05 s or more"
        )
        out.append(
            f"- {_short(hb['batch'])} batch ({name}) into {_short(large)} rows ≤ {hb['target']}× the same into "
            f"{_short(small)} rows: {ratio:.2f}× ({verdict}); {adds}"
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated event counts for (a)-(e); 'none' skips them and keeps those already in --out",
    )
    parser.add_argument(
        "--home-sizes", default=",".join(str(s) for s in DEFAULT_HOME_SIZES),
        help="comma-separated rows of the homes one batch is published into (f); 'none' skips it",
    )
    parser.add_argument("--home-batch", type=int, default=HOME_BATCH, help="events in the batch of (f)")
    parser.add_argument("--home-runs", type=int, default=HOME_RUNS, help="runs of (f) per home size and variant")
    parser.add_argument(
        "--home-dupes", type=float, default=HOME_DUPES,
        help="share of the second variant's batch that copies published rows (0: no second variant)",
    )
    parser.add_argument("--home-cache", default=None, help="where built homes are kept (default: "
                        "$SENSORLOG_BENCH_CACHE, else <tmp>/sensorlog-bench-cache)")
    parser.add_argument(
        "--home-cache-key", choices=("code", "format"), default="code",
        help="code: a home is rebuilt whenever the code that writes one changed; format: a home built by "
        "another code version is reused, brought up to date by this code's own upgrade path (seen index)",
    )
    parser.add_argument(
        "--query-home", default="demo",
        help="(g): 'demo' builds the demo city and measures its published tables; a path measures that home's;"
        " 'none' skips it, keeping the section measured before",
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results"), help="where results.json/.md go")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated and published data")
    args = parser.parse_args(argv)
    sizes = _sizes(args.sizes)
    home_sizes = _sizes(args.home_sizes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sensorlog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    given = [a for a in (argv if argv is not None else sys.argv[1:])]
    command = " ".join(["python -m bench.run", *given])
    results: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": _machine(),
        "versions": _versions(),
        "append_batch": APPEND_BATCH,
        "sizes": {},
    }
    previous = out / "results.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    if not sizes and kept.get("sizes"):  # keep the sections (a)-(e) measured before
        _log(f"--sizes none: keeping the sizes measured {kept.get('date')} in {previous}")
        results = {**kept, "home_batch": None, "query": None}
    if not home_sizes and kept.get("home_batch"):  # and (f)
        _log(f"--home-sizes none: keeping the batch-into-a-home section of {kept['home_batch'].get('date')}")
        results["home_batch"] = kept["home_batch"]
    if args.query_home == "none" and kept.get("query"):  # and (g)
        _log(f"--query-home none: keeping the query section of {kept['query'].get('date')}")
        results["query"] = kept["query"]
    try:
        for n in sizes:
            results["sizes"][str(n)] = run_size(n, work, args.keep)
            (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
            (out / "results.md").write_text(markdown(results))
        if home_sizes:
            cache = Path(args.home_cache) if args.home_cache else default_cache()
            hb = run_home_batches(
                home_sizes, work, cache, args.home_batch, args.home_runs, args.home_dupes,
                reuse_format=args.home_cache_key == "format",
            )
            hb["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            hb["command"] = command
            results["home_batch"] = hb
        if args.query_home != "none":
            results["query"] = {**run_query(work, args.query_home), "command": command}
        (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
        (out / "results.md").write_text(markdown(results))
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    print(markdown(results))


if __name__ == "__main__":
    main()
