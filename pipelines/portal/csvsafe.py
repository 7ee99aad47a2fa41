"""CSV cells that a spreadsheet would run as a formula, made safe to open (OWASP's rule for CSV injection).

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a single quote
in front, so Excel, LibreOffice and Google Sheets show it as text (``=HYPERLINK(...)`` stays a string,
``+cmd|' /C calc'!A0`` runs nothing). Only text columns are touched: a negative number in a numeric
column is a number. The Parquet extracts keep every value exactly; the CSV's Table Schema says so in
each text field's description (``NOTE``).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_RISKY = "^[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_STARTS) + "]"
NOTE = (
    "In this CSV file a text value that begins with =, +, -, @, a tab or a carriage return is written with "
    "a single quote (') in front, so a spreadsheet shows it as text and never runs it as a formula; the "
    "Parquet file holds the exact value."
)


def is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def neutralise(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A text column with every formula-like cell prefixed by ``QUOTE``; nulls stay null."""
    risky = pc.fill_null(pc.match_substring_regex(column, _RISKY), False)
    return pc.if_else(risky, pc.binary_join_element_wise(QUOTE, column, ""), column)


def neutralise_table(table: pa.Table) -> pa.Table:
    for i, field in enumerate(table.schema):
        if is_text(field.type):
            table = table.set_column(i, field, neutralise(table[i]))
    return table

