"""``python -m bench.query --home HOME [--repeat 7] [--result FILE]``: issue 15's reader target.

For each event table a home has published, DuckDB runs what a reader of the open data runs first,
``count(*)`` and the sum of the table's first integer column (``records`` for collection, deletion and
access; lifecycle has none, so ``count(*)`` alone), twice:

* over the published files as a reader meets them: ``read_parquet('<published>/event_type=<table>/**/*.parquet',
  hive_partitioning=true)``, every daily partition and every file in it;
* over the same rows written as one zstd Parquet file (the yardstick: what the table would cost if it
  were one file), with the same columns and pyarrow's default row groups.

Each query runs ``--repeat`` times in turn with the other on one connection (DuckDB's object cache
off, its default, so every run reads the footers again as a new reader does) and the medians are
compared. The bytes are the published files' sizes against the one file's. The target (issue 15):
time ≤ 2× and bytes ≤ 1.5× for each table. Reported by ``make bench``, never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipelines import layout
from pipelines.config import Settings
from pipelines.schemas import EVENT_TABLES, event_table

TIME_TARGET = 2.0
BYTES_TARGET = 1.5
REPEAT = 7  # runs of each query; the median is reported


def _query(table: str, source: str) -> str:
    integers = [f.name for f in event_table(table).staged_schema if pa.types.is_integer(f.type)]
    total = f', sum("{integers[0]}")' if integers else ""
    return f"SELECT count(*){total} FROM {source}"


def _median_seconds(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[float, tuple]:
    times, result = [], ()
    for _ in range(repeat):
        t = time.perf_counter()
        result = con.execute(sql).fetchone() or ()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def measure_table(settings: Settings, table: str, scratch: Path, repeat: int) -> dict | None:
    """The published table against one file of its rows, or None when the home has none of it."""
    root = Path(layout.table_root(settings, table))
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        return None
    # The rows as stored (without the Hive columns the paths add), in one file.
    rows = ds.dataset([str(f) for f in files], format="parquet").to_table()
    single = scratch / f"{table}.parquet"
    pq.write_table(rows, single, compression="zstd")
    glob = str(root / "**" / "*.parquet").replace("'", "''")
    published_sql = _query(table, f"read_parquet('{glob}', hive_partitioning=true)")
    single_sql = _query(table, f"read_parquet('{str(single).replace(chr(39), chr(39) * 2)}')")
    con = duckdb.connect()
    try:
        _median_seconds(con, published_sql, 1)  # warm the page cache for both, as a second reader finds it
        _median_seconds(con, single_sql, 1)
        spread_s, spread_result = _median_seconds(con, published_sql, repeat)
        one_s, one_result = _median_seconds(con, single_sql, repeat)
    finally:
        con.close()
    if spread_result != one_result:  # the yardstick must hold exactly the same rows
        raise RuntimeError(f"{table}: published gives {spread_result}, one file gives {one_result}")
    published_bytes = sum(f.stat().st_size for f in files)
    one_bytes = single.stat().st_size
    return {
        "table": table,
        "rows": rows.num_rows,
        "files": len(files),
        "partitions": len({f.parent for f in files}),
        "published_seconds": spread_s,
        "one_file_seconds": one_s,
        "time_ratio": spread_s / one_s,
        "published_bytes": published_bytes,
        "one_file_bytes": one_bytes,
        "bytes_ratio": published_bytes / one_bytes,
        "result": list(one_result),
    }


def measure(settings: Settings, repeat: int = REPEAT) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="sensorlog-query-") as scratch:
        found = (measure_table(settings, t, Path(scratch), repeat) for t in EVENT_TABLES)
        return [row for row in found if row is not None]


def markdown(rows: list[dict]) -> list[str]:
    """The report's table, one line per event table, each cell against its target."""
    lines = [
        "| table | rows | files | daily partitions | published ms | one file ms"
        f" | time ratio (≤ {TIME_TARGET:g}×) | published KB | one file KB | bytes ratio (≤ {BYTES_TARGET:g}×) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t_ok = "met" if r["time_ratio"] <= TIME_TARGET else "not met"
        b_ok = "met" if r["bytes_ratio"] <= BYTES_TARGET else "not met"
        cells = [
            r["table"], f"{r['rows']:,}", f"{r['files']:,}", f"{r['partitions']:,}",
            f"{r['published_seconds'] * 1e3:.1f}", f"{r['one_file_seconds'] * 1e3:.1f}",
            f"{r['time_ratio']:.1f}× ({t_ok})", f"{r['published_bytes'] / 1024:,.0f}",
            f"{r['one_file_bytes'] / 1024:,.0f}", f"{r['bytes_ratio']:.2f}× ({b_ok})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.query")
    parser.add_argument("--home", required=True, help="a home whose published/ folder to read")
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--result", help="write the measurements here as JSON")
    args = parser.parse_args(argv)
    settings = Settings.from_env({"SENSORLOG_HOME": args.home})
    if not Path(settings.published).is_dir():
        parser.error(f"{settings.published}: no published tables there")
    rows = measure(settings, args.repeat)
    if args.result:
        Path(args.result).write_text(json.dumps(rows, indent=2))
    print("\n".join(markdown(rows)))


if __name__ == "__main__":
    main()
