"""Parquet and CSV extracts of each published table.

CSV follows RFC 4180: UTF-8 without a byte-order mark, CRLF line ends, a header row, fields quoted
when they are text (so an empty text and a missing value stay distinguishable) and quotes doubled.
Timestamps are ISO 8601 with an explicit offset (``2026-07-01T04:00:00+00:00``, UTC, as stored).
Text cells a spreadsheet would run as a formula get a single quote in front (``csvsafe``); the Parquet
extracts hold every value exactly.
A table with more than ``csv_month_rows`` rows is split into one CSV per month of its time column (UTC
months, like the timestamps inside), so each file opens in a spreadsheet; the Parquet extract stays one
file per table.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.log.export import DATA_DIR
from pipelines.portal import csvsafe
from pipelines.portal.tables import PublishedTable
from pipelines.site import Site, SiteFile
from pipelines.tables import DERIVED_TABLES

PARQUET_OPTIONS = {"compression": "zstd", "write_statistics": True}
UNDATED = "undated"
# A site keeps the derived tables out of its data root as a home does: ``data/`` holds the logged Parquet
# and the logged tables' one-file extracts (``verify --data`` checks those at ``data/<table>/``), the
# audit's derived tables go to this sibling.
DERIVED_DIR = "derived"


@dataclass(frozen=True)
class Extract:
    table: str
    format: str  # "parquet" or "csv"
    file: SiteFile
    rows: int
    period: str | None = None  # "2026-07" for a monthly CSV part

    @property
    def path(self) -> str:
        return self.file.path


def _iso_timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """UTC timestamps → ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``; fractions only where there are any."""
    utc = column.cast(pa.timestamp("us", tz="UTC"))
    # Arrow's %S prints the fraction too, so the seconds are formatted separately.
    minutes = pc.strftime(utc, format="%Y-%m-%dT%H:%M")
    seconds = pc.utf8_lpad(pc.cast(pc.second(utc), pa.string()), width=2, padding="0")
    whole = pc.binary_join_element_wise(minutes, seconds, ":")
    micros = pc.add(pc.multiply(pc.millisecond(utc), 1000), pc.microsecond(utc))
    fraction = pc.utf8_lpad(pc.cast(micros, pa.string()), width=6, padding="0")
    with_fraction = pc.binary_join_element_wise(whole, ".", fraction, "+00:00", "")
    plain = pc.binary_join_element_wise(whole, "+00:00", "")
    return pc.if_else(pc.equal(micros, 0), plain, with_fraction)


def csv_bytes(table: pa.Table) -> bytes:
    table = csvsafe.neutralise_table(table)  # text columns only, before timestamps become text
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(i, pa.field(field.name, pa.string()), _iso_timestamps(table[i]))
    sink = io.BytesIO()
    options = pacsv.WriteOptions(include_header=True, eol="\r\n", quoting_style="needed")
    pacsv.write_csv(table, sink, options)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


def month_keys(table: PublishedTable) -> pa.Array:
    column = table.data[table.time_column]
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz="UTC"))
    elif pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))
    keys = pc.strftime(column, format="%Y-%m")
    return pc.fill_null(keys, UNDATED)


def _split_by_month(table: PublishedTable) -> list[tuple[str, pa.Table]]:
    keys = month_keys(table)
    parts = []
    for month in sorted(pc.unique(keys).to_pylist()):
        parts.append((month, table.data.filter(pc.equal(keys, month))))
    return parts


def table_folder(name: str) -> str:
    """The site folder, relative to its root, that holds table ``name``'s extracts."""
    return f"{DERIVED_DIR if name in DERIVED_TABLES else DATA_DIR}/{name}"


def write_extracts(site: Site, table: PublishedTable, csv_month_rows: int) -> list[Extract]:
    folder = table_folder(table.name)
    out = [Extract(table.name, "parquet", site.write(f"{folder}/{table.name}.parquet", parquet_bytes(table.data)),
                   table.data.num_rows)]
    if table.data.num_rows > csv_month_rows and table.time_column:
        for month, part in _split_by_month(table):
            entry = site.write(f"{folder}/{table.name}-{month}.csv", csv_bytes(part))
            out.append(Extract(table.name, "csv", entry, part.num_rows, month))
    else:
        out.append(Extract(table.name, "csv", site.write(f"{folder}/{table.name}.csv", csv_bytes(table.data)),
                           table.data.num_rows))
    return out
