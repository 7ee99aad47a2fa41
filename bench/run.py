"""``python -m bench.run [--sizes 100000,1000000,5000000] [--out bench/results]`` (``make bench``).

For each size N: generate N events as CloudEvents NDJSON (``bench.generate``), then, each in its own
process (``bench.measure``), time and take the peak RSS of

(a) the baseline: ``pyarrow.json.read_json`` with an explicit schema → zstd Parquet, no validation;
(b) sensorlog: ``flow.discover`` → ``flow.stage_files`` (ingest + GX validation + row hashes + staging)
    → ``flow.commit_batches`` (dedupe + Parquet + ledger append), with each stage timed;
(c) ``sensorlog verify`` and ``sensorlog audit --format json`` over the result (CLI, child process);
(d) the verify baseline: pyarrow reads the published Parquet and SHA-256s each row's leaf bytes;
(e) the ledger append of one fixed-size batch at the log's size after (b) (on a copy of the log).

Writes ``<out>/results.json`` and ``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import write_events

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
APPEND_BATCH = 100_000


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
    lines += ["", "## Targets (issue 7)", ""]
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
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[str]:
    sizes = {int(k): v for k, v in results["sizes"].items()}
    top = max(sizes) if sizes else None
    out = []
    if top is None:
        return out
    r = sizes[top]
    ratio = r.get("throughput_ratio")
    out.append(
        f"- throughput at {top:,} events ≥ 40% of the baseline: "
        + (f"{100 * ratio:.0f}% ({'met' if ratio >= 0.4 else 'not met'})" if ratio else "not measured")
        + " in one process"
    )
    par = r.get("throughput_ratio_parallel")
    if par:
        workers = r["sensorlog_parallel"].get("workers")
        out.append(
            f"- the same with {workers} staging processes: {100 * par:.0f}% ({'met' if par >= 0.4 else 'not met'})"
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES), help="comma-separated event counts")
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results"), help="where results.json/.md go")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated and published data")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sensorlog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run" + (f" --sizes {args.sizes}" if args.sizes != parser.get_default("sizes") else "")
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": _machine(),
        "versions": _versions(),
        "append_batch": APPEND_BATCH,
        "sizes": {},
    }
    try:
        for n in sizes:
            results["sizes"][str(n)] = run_size(n, work, args.keep)
            (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
            (out / "results.md").write_text(markdown(results))
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    print(markdown(results))


if __name__ == "__main__":
    main()
