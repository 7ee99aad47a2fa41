"""Conservation on hostile CSV and NDJSON, proven from what was written, not from the manifest's counts.

For generated files (quoted newlines, embedded and stray quotes, unterminated quotes, BOM, CRLF,
empty fields, invalid UTF-8; deep nesting, huge numbers, odd Unicode, repeated keys, re-sends):
rows in = rows read back from the published Parquet + rows read back from the quarantine file +
duplicates, and every generated event's id is found in exactly one published row or in the raw text
of a quarantine row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, make_event
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipelines import layout, publish, storage
from pipelines.config import Settings
from pipelines.ingest.stage import stage_file

pytestmark = pytest.mark.unit

EXAMPLES = hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ODD_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(["\u202e", "\u200b", "\u0301", "\x00",
                                                                                 "\ufeff", "😀", "\U0010ffff"]),
    min_size=1, max_size=12,
)


def _event_id(n: int) -> str:
    return f"ev-{n:05d}-x"  # no id is a substring of another


def _read_back(settings: Settings, uri: str) -> tuple[dict, list[dict], list[dict]]:
    result = stage_file(uri, settings, [DEPLOYMENT])
    manifest = publish.commit_batch(settings, result.batch_id)
    rows = []
    for path in storage.list_files(settings.published, (".parquet",)):
        rows += [r for r in pq.read_table(path).to_pylist() if r["batch_id"] == result.batch_id]
    q_uri = layout.quarantine_file(settings, result.batch_id)
    q = pq.read_table(q_uri).to_pylist() if storage.exists(q_uri) else []
    return manifest, rows, [r for r in q if not r["reasons"][0].startswith("file:")]


def _home(tmp_path_factory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("conserve")
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_LANDING": str(root / "landing")})
    (root / "landing").mkdir()
    return settings, root / "landing"


def _assert_accounted(manifest: dict, rows: list[dict], quarantine: list[dict], ids: list[str]) -> None:
    assert manifest["file_error"] is None
    assert manifest["rows_in"] == len(rows) + len(quarantine) + manifest["duplicates"]
    assert (manifest["published"], manifest["quarantined"]) == (len(rows), len(quarantine))
    published_ids = [r["event_id"] for r in rows]
    assert len(published_ids) == len(set(published_ids))
    raw = "\n".join(r["raw"] or "" for r in quarantine)
    for event_id in ids:
        assert event_id in published_ids or event_id in raw, event_id


# -- NDJSON ---------------------------------------------------------------------------------------

NDJSON_KINDS = st.sampled_from(
    ["ok", "ok", "deep", "huge", "odd", "surrogate", "invalid_utf8", "repeated_key", "resend", "nan", "broken",
     "blank", "crlf", "bom"]
)


@st.composite
def ndjson_files(draw) -> tuple[bytes, int, list[str]]:
    """File bytes, the number of events (non-blank lines) and the generated ids."""
    lines: list[bytes] = []
    ids: list[str] = []
    sent: list[bytes] = []
    for n, kind in enumerate(draw(st.lists(NDJSON_KINDS, min_size=1, max_size=30))):
        event = make_event(("collection", "deletion", "access", "lifecycle")[n % 4], n=n)
        event["id"] = _event_id(n)
        text = json.dumps(event)
        if kind == "blank":
            lines.append(draw(st.sampled_from([b"", b"  ", b"\t\r"])))
            continue
        if kind == "resend" and sent:
            lines.append(draw(st.sampled_from(sent)))
            continue
        ids.append(event["id"])
        if kind == "deep":
            depth = draw(st.integers(1, 3000))
            line = f'{{"id": "{event["id"]}", "data": {"[" * depth}{"]" * depth}}}'.encode()
        elif kind == "huge":
            event["data"]["records"] = draw(st.sampled_from([2**53, -(2**53) - 7, 2**63 - 1, 2**64, 10**30]))
            line = json.dumps(event).encode()
        elif kind == "odd":
            event["data"]["deployment_id"] = draw(ODD_TEXT)
            line = json.dumps(event, ensure_ascii=draw(st.booleans())).encode()
        elif kind == "surrogate":
            event["data"]["deployment_id"] = "a\ud800b"
            line = json.dumps(event).encode()
        elif kind == "invalid_utf8":
            line = text.encode().replace(b'"data": {', b'"data": {"\xff\xfe": 1, ', 1)
        elif kind == "repeated_key":
            line = text.replace('"specversion": "1.0"', '"specversion": "1.0", "specversion": "1.0"').encode()
        elif kind == "nan":
            line = text.replace('"deployment_id"', '"extra": NaN, "deployment_id"', 1).encode()
        elif kind == "broken":
            kept = text.index(event["id"]) + len(event["id"])  # cut after the id, which must stay findable
            line = text[: draw(st.integers(kept, len(text) - 1))].encode()
        elif kind == "crlf":
            line = text.encode() + b"\r"
        elif kind == "bom":
            line = b"\xef\xbb\xbf" + text.encode()
        else:
            line = text.encode()
            sent.append(line)
        lines.append(line)
    data = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))
    events = sum(1 for line in data.split(b"\n") if line.strip())
    return data, events, ids


@EXAMPLES
@given(spec=ndjson_files())
@example(spec=(b"", 0, []))  # one blank line and no final newline: an empty file
def test_hostile_ndjson_every_row_is_published_quarantined_or_a_duplicate(tmp_path_factory, spec):
    data, events, ids = spec
    settings, landing = _home(tmp_path_factory)
    (landing / "f.ndjson").write_bytes(data)
    manifest, rows, quarantine = _read_back(settings, str(landing / "f.ndjson"))
    assert manifest["rows_in"] == events
    if not data:  # an empty file is quarantined whole, as every stage of the pipeline says (no row to account)
        assert manifest["file_error"].endswith("file is empty") and (rows, quarantine) == ([], [])
        return
    _assert_accounted(manifest, rows, quarantine, ids)


# -- CSV ------------------------------------------------------------------------------------------

HEADER = ["id", "source", "type", "time", "deployment_id", "data_class", "window_start", "window_end", "records",
          "bytes", "storage_location"]
CSV_KINDS = st.sampled_from(
    ["ok", "ok", "quoted_newline", "embedded_quotes", "empty_fields", "stray_quote", "unterminated", "invalid_utf8",
     "odd", "wrong_cells", "blank"]
)
SAFE = st.text(st.sampled_from("abc xyz-_.:/"), min_size=1, max_size=10).filter(lambda t: t.strip())


@st.composite
def csv_files(draw) -> tuple[bytes, int, list[str], bool]:
    """File bytes, the number of records, the generated ids and whether any quote is left open."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    records: list[bytes] = [",".join(HEADER).encode()]
    ids: list[str] = []
    unterminated = False
    for n, kind in enumerate(draw(st.lists(CSV_KINDS, min_size=1, max_size=25))):
        if kind == "blank":
            records.append(b"")
            continue
        ids.append(_event_id(n))
        cells = [_event_id(n), "https://vendor.example/csv", "org.sensorlog.collection", "2026-07-01T01:05:00Z",
                 DEPLOYMENT, "video", "2026-07-01T00:00:00Z", "2026-07-01T01:00:00Z", str(n), "100", draw(SAFE)]
        if kind == "quoted_newline":
            cells[10] = '"' + draw(SAFE) + draw(st.sampled_from(["\n", "\r\n"])) + draw(SAFE) + '"'
        elif kind == "embedded_quotes":
            cells[10] = '"' + draw(SAFE) + '""' + draw(SAFE) + '"", x"'
        elif kind == "empty_fields":
            cells[9] = cells[10] = ""
        elif kind == "stray_quote":
            cells[10] = draw(SAFE) + '"' + draw(SAFE)
        elif kind == "unterminated":
            cells[draw(st.sampled_from([5, 10]))] = '"' + draw(SAFE)
            unterminated = True
        elif kind == "odd":
            cells[10] = '"' + draw(ODD_TEXT).replace('"', '""') + '"'
        elif kind == "wrong_cells":
            cells = cells[: draw(st.integers(1, 10))]
        line = ",".join(cells).encode()
        if kind == "invalid_utf8":
            line = line.replace(b"video", b"vid\xffeo")
        records.append(line)
    data = newline.encode().join(records) + draw(st.sampled_from([b"", newline.encode()]))
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    counted = len(ids)
    return data, counted, ids, unterminated


@EXAMPLES
@given(spec=csv_files())
def test_hostile_csv_every_row_is_published_quarantined_or_a_duplicate(tmp_path_factory, spec):
    data, records, ids, unterminated = spec
    settings, landing = _home(tmp_path_factory)
    (landing / "f.csv").write_bytes(data)
    manifest, rows, quarantine = _read_back(settings, str(landing / "f.csv"))
    if not unterminated:  # an open quote may (rarely) close in a later row, joining two rows in one
        assert manifest["rows_in"] == records
    _assert_accounted(manifest, rows, quarantine, ids)
