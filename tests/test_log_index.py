"""The one reader of ``batches.jsonl``: the writer's strict reading and the verifier's tolerant one."""

from __future__ import annotations

import json

import pytest

from pipelines.log.batch_index import BatchIndexError, BatchRecord, parse_strict, parse_tolerant

pytestmark = pytest.mark.unit


def _line(batch_id: str, start: int, count: int) -> bytes:
    return json.dumps({"batch_id": batch_id, "start": start, "count": count}).encode() + b"\n"


def test_strict_reads_records_in_order_and_the_intact_length() -> None:
    data = _line("a", 0, 3) + _line("b", 3, 2)
    assert parse_strict(data) == ([BatchRecord("a", 0, 3), BatchRecord("b", 3, 2)], len(data))
    assert parse_strict(b"") == ([], 0)
    assert BatchRecord("b", 3, 2).end == 5


def test_strict_ignores_a_torn_last_line() -> None:
    intact = _line("a", 0, 3)
    assert parse_strict(intact + b'{"batch_id": "b", "st') == ([BatchRecord("a", 0, 3)], len(intact))
    # Even a torn line that happens to be whole JSON is not a record until its newline is written.
    assert parse_strict(intact + _line("b", 3, 2).rstrip(b"\n")) == ([BatchRecord("a", 0, 3)], len(intact))


def test_a_record_at_an_earlier_start_supersedes_it() -> None:
    data = _line("a", 0, 3) + _line("stale", 3, 5) + _line("b", 3, 2) + _line("c", 5, 1)
    want = [BatchRecord("a", 0, 3), BatchRecord("b", 3, 2), BatchRecord("c", 5, 1)]
    assert parse_strict(data)[0] == want
    assert parse_tolerant(data) == want


@pytest.mark.parametrize("data", [
    _line("a", 0, 3) + _line("b", 4, 2),  # a gap
    _line("a", 1, 3),  # not from 0
    _line("a", 0, 3) + _line("b", 3, 0),  # an empty batch
    _line("a", 0, 3) + _line("b", 3, 2) + _line("c", 0, 9),  # rewrites more than the last record
])
def test_strict_refuses_records_that_do_not_continue_the_log(data: bytes) -> None:
    with pytest.raises(BatchIndexError, match="does not continue the log"):
        parse_strict(data)
    parse_tolerant(data)  # the verifier reads them and judges them against the manifests


def test_strict_raises_on_a_line_that_is_not_a_record() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_strict(_line("a", 0, 3) + b"not json\n")
    with pytest.raises(KeyError):
        parse_strict(b'{"batch_id": "a", "start": 0}\n')


def test_tolerant_skips_what_is_not_a_record_and_checks_nothing() -> None:
    data = (_line("a", 0, 3) + b"not json\n" + b"[1, 2]\n" + b'{"start": 3}\n' + _line("c", 7, 1)
            + _line("d", 8, 2).rstrip(b"\n"))
    assert parse_tolerant(data) == [BatchRecord("a", 0, 3), BatchRecord("c", 7, 1), BatchRecord("d", 8, 2)]
    assert parse_tolerant(b"\xff\xfe") == []
