"""The column-wise NDJSON path decides every line exactly as the per-line reference path does."""

from __future__ import annotations

import json
import random

import pytest
from conftest import make_event

from pipelines.ingest.feeds import cloudevents_ndjson, parse_file

pytestmark = pytest.mark.unit

KINDS = ("collection", "deletion", "access", "lifecycle")


def _broken(rng: random.Random, event: dict) -> bytes:
    """One line that is wrong (or unusual) in one way; some stay valid, most must be rejected."""
    e = json.loads(json.dumps(event))
    d = e["data"]
    k = rng.randrange(36)
    raw = {
        0: b'{"id": "x", "broken',
        1: b'{"id": "\xff\xfe"}',
        2: b"",
        3: b"   \t ",
        4: b"null",
        5: b"[1, 2]",
        6: b"42",
    }
    if k in raw:
        return raw[k]
    if k == 7:
        return (json.dumps(e) + " " + json.dumps(e)).encode()  # two objects on one line
    if k == 8:
        return json.dumps(e).encode() + b"\r"
    if k == 9:
        return b"  " + json.dumps(e).encode()
    if k == 10:
        text = json.dumps(e)
        return (text[:-1] + ', "id": "duplicate key"}').encode()
    if k == 11:
        return json.dumps(e).replace('"deployment_id"', '"deployment\\u005fid"').encode()
    if k == 34:
        d["deployment_id"] = "vidéo ✓"
        return json.dumps(e, ensure_ascii=False).encode()  # raw UTF-8
    if k == 35:
        return json.dumps(e, ensure_ascii=False).encode() + "é".encode()[:1]  # cut inside a character
    changes = {
        12: lambda: d.update(records="many"),
        13: lambda: d.update(records=1.0),
        14: lambda: d.update(records=True),
        15: lambda: d.update(records=2**64),
        16: lambda: d.update(colour="red"),
        17: lambda: d.update(deleted_at=None) if "deleted_at" not in d else d.update(window_start=None),
        18: lambda: e.update(extra=1),
        19: lambda: e.update(data=None),
        20: lambda: e.pop("data"),
        21: lambda: e.update(type="org.sensorlog.teleport"),
        22: lambda: e.update(specversion="0.3"),
        23: lambda: e.update(id=""),
        24: lambda: e.update(source=None),
        25: lambda: e.update(time="2026-07-01T01:05:00"),
        26: lambda: e.update(time="2026-02-30T01:05:00Z"),
        27: lambda: e.update(time="2026-07-01T01:05:00.1234567Z"),
        28: lambda: e.update(time="2026-07-01T01:05:00+05:77"),
        29: lambda: e.update(time=None),
        30: lambda: e.pop("time"),
        31: lambda: e.update(source="https://org.sensorlog.deletion.example/feed"),
        32: lambda: d.update(deployment_id='quote " back \\ tab \t ctl \u0001 é \ud800'),
        33: lambda: e.update(subject=5),
    }
    changes[k]()
    return json.dumps(e).encode()


def _assert_same(path: str, chunk_rows: int) -> None:
    fast = list(cloudevents_ndjson._ndjson(path, chunk_rows))
    reference = list(cloudevents_ndjson._ndjson_reference(path, chunk_rows))
    assert len(fast) == len(reference)
    for a, b in zip(fast, reference, strict=True):
        assert a.rows_in == b.rows_in
        assert a.rejected == b.rejected
        assert sorted(a.tables) == sorted(b.tables)
        for name in a.tables:
            assert a.tables[name].schema == b.tables[name].schema
            assert a.tables[name].to_pylist() == b.tables[name].to_pylist()


@pytest.mark.parametrize("seed", range(6))
def test_fast_ndjson_path_agrees_with_the_reference_path(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    rate = (0.0, 0.02, 0.3, 1.0)[seed % 4]
    lines = []
    for i in range(rng.choice([40, 400])):
        event = make_event(KINDS[i % 4], n=i)
        if rng.random() < rate:
            lines.append(_broken(rng, event))
        else:
            lines.append(json.dumps(event, separators=rng.choice([(",", ":"), (", ", ": ")])).encode())
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"]))
    for read_block in (64, 1 << 20):  # lines straddling read blocks, and whole files in one block
        monkeypatch.setattr(cloudevents_ndjson, "READ_BLOCK", read_block)
        for chunk_rows in (1, 7, 1000):
            _assert_same(str(path), chunk_rows)


def test_a_lone_surrogate_is_a_per_line_reject_not_a_crash(write_file):
    event = make_event()
    event["data"]["data_class"] = "\ud800"
    chunks = list(parse_file(write_file("s.ndjson", json.dumps(event).encode() + b"\n")))
    assert chunks[0].rejected[0]["reasons"] == ["data.data_class: not valid Unicode (a lone surrogate)"]
