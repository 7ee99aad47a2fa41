"""The canonical leaf encoding: documented bytes, and the vectorised path equals the reference."""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines.schemas import event_table
from pipelines.tlog import leaf

pytestmark = pytest.mark.unit

UTC = dt.UTC


def both(table_name: str, table: pa.Table) -> list[bytes]:
    """Vectorised leaf bytes, after checking them (and their hashes) against the reference."""
    fast = leaf.table_leaf_bytes(table_name, table)
    assert fast == [leaf.row_leaf_bytes(table_name, row) for row in table.to_pylist()]
    assert leaf.table_leaf_hashes(table_name, table) == [hashlib.sha256(b"\x00" + b).digest() for b in fast]
    return fast


def test_documented_example() -> None:
    row = {
        "source": "s", "event_time": dt.datetime(2026, 6, 1, tzinfo=UTC), "records": 3, "note": None,
        "ok": True, "leaf_index": 5, "leaf_hash": "ab",
    }
    want = (
        b'{"event_time":"2026-06-01T00:00:00.000000Z","note":null,"ok":true,"records":3,'
        b'"source":"s","table":"collection"}'
    )
    assert leaf.row_leaf_bytes("collection", row) == want
    assert leaf.row_leaf_hash("collection", row) == hashlib.sha256(b"\x00" + want).digest()
    table = pa.table({
        "source": ["s"], "event_time": pa.array([row["event_time"]], pa.timestamp("us", tz="UTC")),
        "records": [3], "note": pa.array([None], pa.string()), "ok": [True], "leaf_index": [5], "leaf_hash": ["ab"],
    })
    assert both("collection", table) == [want]


def test_string_escapes_follow_rfc8785() -> None:
    value = '\x00\x08\t\n\x0b\x0c\r\x1f"\\\x7f\u2028é😀/'
    want = '"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\\x7f\u2028é😀/"'
    assert leaf.row_leaf_bytes("t", {"s": value}) == ('{"s":' + want + ',"table":"t"}').encode()
    both("t", pa.table({"s": [value, "plain", None, '"']}))


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) and so sorts before U+FFFF, unlike by code point.
    row = {"\uffff": 1, "\U0001F600": 2, "a": 3, "Z": 4}
    assert leaf.row_leaf_bytes("t", row) == '{"Z":4,"a":3,"table":"t","😀":2,"\uffff":1}'.encode()
    both("t", pa.table({k: [v] for k, v in row.items()}))


def test_tables_cannot_collide() -> None:
    row = {"source": "s", "event_id": "1"}
    assert leaf.row_leaf_bytes("collection", row) != leaf.row_leaf_bytes("deletion", row)
    with pytest.raises(leaf.LeafEncodingError):
        leaf.row_leaf_bytes("collection", {"table": "deletion"})
    with pytest.raises(leaf.LeafEncodingError):
        leaf.table_leaf_hashes("collection", pa.table({"table": ["deletion"]}))


def test_manifest_leaf() -> None:
    manifest = {"batch_id": "ab", "outputs": [{"table": "collection", "rows": 2}], "quarantine": None}
    want = b'{"batch_id":"ab","outputs":[{"rows":2,"table":"collection"}],"quarantine":null,"table":"manifest"}'
    assert leaf.manifest_leaf_bytes(manifest) == want
    assert leaf.manifest_leaf_hash(manifest) == hashlib.sha256(b"\x00" + want).digest()
    with pytest.raises(leaf.LeafEncodingError):
        leaf.manifest_leaf_bytes({"table": "x"})


def test_refused_values() -> None:
    too_big = 2**53
    for row in ({"x": 1.5}, {"x": too_big}, {"x": b"bytes"}, {"x": [1]}):
        with pytest.raises(leaf.LeafEncodingError):
            leaf.row_leaf_bytes("t", row)
    for table in (
        pa.table({"x": [1.5]}),
        pa.table({"x": [too_big]}),
        pa.table({"x": pa.array([-too_big], pa.int64())}),
        pa.table({"x": [b"bytes"]}),
        pa.table({"x": pa.array([1_001], pa.timestamp("ns"))}),  # sub-microsecond digits
        pa.table({"x": pa.array([300_000_000_000_000_000], pa.timestamp("us"))}),  # year > 9999
    ):
        with pytest.raises(leaf.LeafEncodingError):
            leaf.table_leaf_hashes("t", table)


def test_types_units_zones_chunks_and_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    instants = [dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None,
                dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                dt.datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=UTC), dt.datetime(1900, 3, 1, tzinfo=UTC)]
    n = len(instants)
    table = pa.table({
        "us_utc": pa.array(instants, pa.timestamp("us", tz="UTC")),
        # (not at the extremes: to_pylist cannot build a local datetime past year 9999)
        "us_paris": pa.array(instants[:2] + [None, None] + instants[4:], pa.timestamp("us", tz="UTC")).cast(
            pa.timestamp("us", tz="Europe/Paris")
        ),
        "ms": pa.array([i and i.replace(microsecond=0) for i in instants], pa.timestamp("ms", tz="UTC")),
        "naive": pa.array([i and i.replace(tzinfo=None) for i in instants], pa.timestamp("us")),
        "i8": pa.array(range(n), pa.int8()),
        "u64": pa.array([2**53 - 1] * n, pa.uint64()),
        "large": pa.array(["ä\n"] * n, pa.large_string()),
        "dict": pa.array(["a", "b", None, "a", "\"", "b"]).dictionary_encode(),
        "nulls": pa.nulls(n),
        "flag": pa.array([True, None, False, True, True, False]),
    })
    assert table.column("us_paris").to_pylist()[0].tzinfo == ZoneInfo("Europe/Paris")
    full = both("t", table)
    monkeypatch.setattr(leaf, "CHUNK_ROWS", 4)
    assert both("t", table) == full
    assert both("t", table.slice(2, 3)) == full[2:5]
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert chunked.column("i8").num_chunks == 2
    assert both("t", chunked) == full
    assert leaf.table_leaf_bytes("t", table.slice(0, 0)) == []


def test_published_schema_rows() -> None:
    schema = event_table("collection").published_schema
    row = {name: None for name in schema.names}
    row.update({
        "source": "https://vendor.example/feed", "event_id": "e-1", "event_time": dt.datetime(2026, 7, 1, tzinfo=UTC),
        "content_hash": "00" * 32, "batch_id": "ab" * 32, "leaf_index": 0, "leaf_hash": "cd" * 32,
    })
    table = pa.Table.from_pylist([row], schema=schema)
    without_position = table.drop_columns(["leaf_index", "leaf_hash"])
    assert both("collection", table) == both("collection", without_position)


# -- the property ------------------------------------------------------------------------------

_TRICKY = st.text(alphabet=st.sampled_from('"\\\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\u2028\u00e9\U0001F600a /'))
_VALUES = {
    "string": st.none() | st.text() | _TRICKY,
    "int": st.none() | st.integers(-(2**53 - 1), 2**53 - 1),
    "bool": st.none() | st.booleans(),
    "ts": st.none() | st.datetimes(
        # a day inside the extremes, so that local (non-UTC) datetimes still fit in year 1..9999
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30, 23, 59, 59, 999999),
        timezones=st.just(UTC),
    ),
}
_ARROW = {
    "string": [pa.string(), pa.large_string()],
    "int": [pa.int64()],
    "bool": [pa.bool_()],
    "ts": [pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="America/New_York"), pa.timestamp("us")],
}
_NAMES = st.text(min_size=1, max_size=6) | st.sampled_from(["leaf_index", "leaf_hash", "a", "A", "é", "\U0001F600"])


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, pa.Table]:
    columns = draw(st.lists(
        st.tuples(_NAMES.filter(lambda n: n != "table"), st.sampled_from(sorted(_VALUES))),
        min_size=1, max_size=6, unique_by=lambda c: c[0],
    ))
    n = draw(st.integers(0, 8))
    arrays = {}
    for name, kind in columns:
        values = draw(st.lists(_VALUES[kind], min_size=n, max_size=n))
        arrow_type = draw(st.sampled_from(_ARROW[kind]))
        if kind == "ts":
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC")).cast(arrow_type)
        else:
            arrays[name] = pa.array(values, arrow_type)
    return draw(st.text(max_size=10) | _TRICKY), pa.table(arrays)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_vectorised_bytes_equal_the_reference(case: tuple[str, pa.Table]) -> None:
    table_name, table = case
    both(table_name, table)
