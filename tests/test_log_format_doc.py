"""docs/log-format.md is tested: every worked example (a fenced block after ``<!-- example: NAME -->``)
is recomputed with the project's code and, independently, with hashlib, ``rfc8785``, ``cryptography``,
PyYAML, ``jsonschema`` and small RFC 9162 functions written here, so the document cannot drift from the
implementation. A tiny site is built to check that the layout the document lists is exactly what a
site serves, and that its declarations pass the document's checklist.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rfc8785
import yaml
from conftest import DEPLOYMENT, make_event, ndjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipelines import flow, site_files
from pipelines.audit import context, findings, retention
from pipelines.config import PROJECT_DIR, Settings
from pipelines.log import witness as witness_module
from pipelines.log.prove_static import check_proof
from pipelines.log.verify import fingerprint, verify_log
from pipelines.portal import build_portal
from pipelines.registry import MAX_RECORD_BYTES, Registry, check_deployment, declarations, load_registry
from pipelines.schemas import LOGGED_TABLES, event_table
from pipelines.tlog import bundles, cosignature, leaf, merkle, note
from pipelines.tlog import proof as tlog_proof
from pipelines.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from pipelines.tlog.tiles import tile_path
from pipelines.tlog.witness_protocol import format_add_checkpoint, parse_add_checkpoint

pytestmark = pytest.mark.integration

DOC = PROJECT_DIR / "docs" / "log-format.md"
ORIGIN = "sensorlog.example/riverton"
EXCLUDED = ("leaf_index", "leaf_hash")
_EXAMPLE = re.compile(r"<!-- example: ([a-z0-9-]+)((?: [a-z_]+=\S+)*) -->\n```[a-z]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    attrs: dict[str, str]
    text: str  # the block's lines, each ending in a newline

    @property
    def line(self) -> str:
        lines = self.text.splitlines()
        assert len(lines) == 1, f"expected one line, got {len(lines)}"
        return lines[0]

    def fields(self) -> dict[str, str]:
        return dict(line.split(": ", 1) for line in self.text.splitlines())


def _examples() -> dict[str, Example]:
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, Example] = {}
    for name, attrs, body in _EXAMPLE.findall(text):
        assert name not in found, f"example {name} appears twice"
        found[name] = Example(dict(a.split("=", 1) for a in attrs.split()), body)
    return found


EX = _examples()


def ex(name: str) -> Example:
    assert name in EX, f"docs/log-format.md has no example {name!r}"
    return EX[name]


# -- independent implementations -----------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc9162_leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes."""
    if not hashes:
        return sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(hashes) == 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def tile_index(n: int) -> str:
    groups = f"{n:d}"
    groups = groups.zfill(-(-len(groups) // 3) * 3)
    parts = [groups[i:i + 3] for i in range(0, len(groups), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def key_id(name: str, alg: int, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([alg]) + public)[:4]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def published_schema(table: str) -> pa.Schema:
    return declarations.PUBLISHED_SCHEMA if table == declarations.TABLE else event_table(table).published_schema


def typed_row(table: str, shown: dict) -> dict:
    """The documented row with its timestamp columns as datetimes (the doc shows them in RFC 3339)."""
    schema = published_schema(table)
    assert list(shown) == schema.names, "the example row's columns are not the table's published columns"
    return {k: (dt.datetime.fromisoformat(v) if v is not None and pa.types.is_timestamp(schema.field(k).type) else v)
            for k, v in shown.items()}


def independent_row_leaf(table: str, row: dict) -> bytes:
    obj: dict[str, object] = {"table": table}
    for k, v in row.items():
        if k in EXCLUDED:
            continue
        obj[k] = v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(v, dt.datetime) else v
    return rfc8785.dumps(obj)


# -- the example log's pieces ----------------------------------------------------------------------


ROW_EXAMPLES = ("collection", "lifecycle")


def example_row(table: str) -> dict:
    example = ex(f"row-{table}-input")
    assert example.attrs == {"table": table}
    return typed_row(table, json.loads(example.text))


def row_leaf(table: str) -> bytes:
    return ex(f"row-{table}-leaf").line.encode("utf-8")


def manifest() -> dict:
    return json.loads(ex("manifest-file").text)


def manifest_file_bytes() -> bytes:
    return ex("manifest-file").text[:-1].encode("utf-8")  # the file has no final newline


def entries() -> list[bytes]:
    return [row_leaf("collection"), row_leaf("lifecycle"), ex("manifest-leaf").line.encode()]


def leaf_hashes() -> list[bytes]:
    return [bytes.fromhex(line) for line in ex("tile-level0").text.split()]


def log_signer() -> note.Signer:
    f = ex("log-key").fields()
    return note.Signer(f["name"], bytes.fromhex(f["seed"]))


def checkpoint_text() -> str:
    return note.parse_note(ex("checkpoint").text)[0]


# -- leaves ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ROW_EXAMPLES)
def test_row_leaf_bytes_and_hash(table: str) -> None:
    row = example_row(table)
    documented = row_leaf(table)
    assert leaf.row_leaf_bytes(table, row) == documented
    arrow = pa.Table.from_pylist([row], schema=event_table(table).published_schema)
    assert leaf.table_leaf_bytes(table, arrow) == [documented]
    assert independent_row_leaf(table, row) == documented
    digest = ex(f"row-{table}-hash").line
    assert rfc9162_leaf(documented).hex() == digest == leaf.row_leaf_hash(table, row).hex()
    assert row["leaf_hash"] == digest  # the published column: 64 lowercase hex digits
    assert re.fullmatch(r"[0-9a-f]{64}", row["leaf_hash"])


def test_row_examples_show_the_stated_rules() -> None:
    collection = row_leaf("collection")
    assert b'"bytes":null' in collection and b'"storage_location":null' in collection
    assert b'"window_end":"2026-07-01T01:00:00.500000Z"' in collection
    assert len(collection) == int(re.search(r"Its leaf bytes \((\d+) bytes", DOC.read_text()).group(1))
    lifecycle = row_leaf("lifecycle")
    assert "\u2192".encode() in lifecycle  # raw UTF-8, not \u2192
    assert rb'\"night mode\" on\n\tC:\\cfg' in lifecycle
    for name in EXCLUDED + ("event_type", "event_date"):
        assert f'"{name}"'.encode() not in collection + lifecycle


def test_leaf_encoding_refuses_what_the_doc_says_it_refuses() -> None:
    assert leaf.row_leaf_bytes("t", {"a": 2**53 - 1}) == b'{"a":9007199254740991,"table":"t"}'
    assert leaf.row_leaf_bytes("t", {"a": -(2**53 - 1), "b": True, "c": None}) == (
        b'{"a":-9007199254740991,"b":true,"c":null,"table":"t"}')
    for bad in ({"a": 2**53}, {"a": 1.5}, {"a": b"x"}, {"table": "x"}):
        with pytest.raises(leaf.LeafEncodingError):
            leaf.row_leaf_bytes("t", bad)
    with pytest.raises(leaf.LeafEncodingError):
        leaf.table_leaf_bytes("t", pa.table({"a": pa.array([1], pa.timestamp("ns"))}))
    # A timestamp without a zone is UTC; one in another zone is written as its UTC instant.
    naive = pa.table({"a": pa.array([0], pa.timestamp("us"))})
    paris = pa.table({"a": pa.array([0], pa.timestamp("s", tz="Europe/Paris"))})
    assert leaf.table_leaf_bytes("t", naive) == leaf.table_leaf_bytes("t", paris) == [
        b'{"a":"1970-01-01T00:00:00.000000Z","table":"t"}']
    controls = leaf.row_leaf_bytes("t", {"a": "\x00\x08\x1f\x7f/\u2028"})
    assert controls == b'{"a":"\\u0000\\b\\u001f\x7f/\xe2\x80\xa8","table":"t"}'


def _doc_table_rows() -> dict[str, tuple[str, str]]:
    found = re.findall(r"^\| `(\w+)` \| (`.*?) \| `([a-z0-9_,]+)` \|$", DOC.read_text(), re.M)
    return {table: (columns, order) for table, columns, order in found}


def test_the_documented_columns_are_the_published_schema() -> None:
    rows = _doc_table_rows()
    assert sorted(rows) == sorted(LOGGED_TABLES)
    for table, (columns, order) in rows.items():
        schema = published_schema(table)
        items = [re.fullmatch(r"`(\w+)`(\?)?\s*(ts|int)?", item.strip()) for item in columns.split(",")]
        assert all(items), columns
        assert [m.group(1) for m in items] == schema.names
        for m in items:
            f = schema.field(m.group(1))
            kind = "ts" if pa.types.is_timestamp(f.type) else "int" if pa.types.is_integer(f.type) else None
            assert f.type in (pa.timestamp("us", tz="UTC"), pa.int64(), pa.string())
            assert (m.group(3), bool(m.group(2))) == (kind, f.nullable), m.group(0)
        members = [n for n in schema.names if n not in EXCLUDED] + ["table"]
        assert order.split(",") == sorted(members, key=lambda n: n.encode("utf-16-be"))


def test_manifest_file_and_leaf() -> None:
    m = manifest()
    assert json.dumps(m, indent=2, sort_keys=True).encode() == manifest_file_bytes()
    documented = ex("manifest-leaf").line.encode()
    assert leaf.manifest_leaf_bytes(m) == documented == rfc8785.dumps({"table": "manifest", **m})
    assert rfc9162_leaf(documented).hex() == ex("manifest-hash").line == leaf.manifest_leaf_hash(m).hex()


def test_the_example_batch_positions_follow_the_rules() -> None:
    m = manifest()
    rows = [example_row(t) for t in ROW_EXAMPLES]
    assert [o["table"] for o in m["outputs"]] == list(ROW_EXAMPLES)
    pos = m["leaves"]["first"]
    assert pos == 0
    for out, row in zip(m["outputs"], rows, strict=True):
        assert out["first_leaf"] == pos == row["leaf_index"] and out["rows"] == 1
        assert out["path"] == f"event_type={out['table']}/event_date={out['event_date']}/{m['batch_id']}.parquet"
        assert row["batch_id"] == m["batch_id"] == m["source_sha256"]
        pos += out["rows"]
    assert m["leaves"]["rows_end"] == m["leaves"]["manifest_leaf"] == pos == 2
    assert m["rows_in"] == m["published"] + m["quarantined"] + m["duplicates"]
    assert [rfc9162_leaf(e) for e in entries()] == leaf_hashes()


def test_batch_index_line() -> None:
    m = manifest()
    first, last = m["leaves"]["first"], m["leaves"]["manifest_leaf"]
    expected = {"batch_id": m["batch_id"], "start": first, "count": last - first + 1}
    assert ex("batches-jsonl").line == json.dumps(expected)


# -- declaration leaves (§2.4) -----------------------------------------------------------------------

DEPLOYMENT_SCHEMA = json.loads((PROJECT_DIR / "schemas" / "deployment.schema.json").read_text())
EDIT = ("period: P30D", "period: P90D")  # the city's edit between the two documented versions
UNSAID = ("batch_id", *EXCLUDED)  # the batch id is computed before it is a column


def _dates_as_text(value: object) -> object:
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def independent_record(yaml_text: str) -> bytes:
    """RFC 8785 of the YAML document as parsed, dates as text."""
    return rfc8785.dumps(_dates_as_text(yaml.safe_load(yaml_text)))


def shown(value: object) -> str:
    """A value as the documented ``name: value`` lines write it."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return "null" if value is None else str(value)


def declaration_row() -> dict:
    example = ex("declaration-input")
    assert example.attrs == {"table": declarations.TABLE}
    return typed_row(declarations.TABLE, json.loads(example.text))


def example_registry(folder: Path, yaml_text: str, timezone: str) -> Registry:
    folder.mkdir(parents=True)
    (folder / f"{DEPLOYMENT}.yaml").write_text(yaml_text)
    return load_registry(folder, timezone=timezone)


def example_versions(tmp_path: Path) -> tuple[dict, dict]:
    """The two documented versions as the publisher writes them (version 2 from the project's code)."""
    v1 = declaration_row()
    f = ex("declaration-amended").fields()
    edited = example_registry(tmp_path / "v2", ex("declaration-yaml").text.replace(*EDIT), v1["timezone"])
    when = dt.datetime.fromisoformat(f["event_time"])
    rows = declarations.next_rows(edited, declarations.declared_from_rows([v1]), when)
    assert len(rows) == 1
    v2 = {**rows[0], "batch_id": declarations.batch_id_of(rows), "leaf_index": int(f["leaf_index"])}
    v2["leaf_hash"] = leaf.row_leaf_hash(declarations.TABLE, v2).hex()
    return v1, v2


def test_declaration_record_is_the_canonical_yaml_document(tmp_path: Path) -> None:
    yaml_text = ex("declaration-yaml").text
    record = ex("declaration-record").line.encode()
    registry = example_registry(tmp_path / "v1", yaml_text, declaration_row()["timezone"])
    assert declarations.canonical_record(registry[DEPLOYMENT]) == record == independent_record(yaml_text)
    doc = json.loads(record)
    assert rfc8785.dumps(doc) == record
    jsonschema.Draft202012Validator(DEPLOYMENT_SCHEMA).validate(doc)
    assert check_deployment(doc, "the documented record", DEPLOYMENT) == []
    assert "# Example" in yaml_text and b"Example" not in record  # comments are not part of the record
    assert doc["lifecycle"]["commissioned"] == "2026-06-01"  # dates as text
    stated = re.search(r"Its canonical record \((\d+) bytes", DOC.read_text())
    assert stated and int(stated.group(1)) == len(record)
    assert len(rfc8785.dumps(record.decode())) <= MAX_RECORD_BYTES


def test_declaration_leaf_bytes_hash_and_batch_id(tmp_path: Path) -> None:
    row = declaration_row()
    documented = ex("declaration-leaf").line.encode()
    assert leaf.row_leaf_bytes(declarations.TABLE, row) == documented
    arrow = pa.Table.from_pylist([row], schema=declarations.PUBLISHED_SCHEMA)
    assert leaf.table_leaf_bytes(declarations.TABLE, arrow) == [documented]
    assert independent_row_leaf(declarations.TABLE, row) == documented
    digest = ex("declaration-hash").line
    assert rfc9162_leaf(documented).hex() == digest == leaf.row_leaf_hash(declarations.TABLE, row).hex()
    assert row["leaf_hash"] == digest
    stated = re.search(r"Its leaf bytes \((\d+) bytes, one line, no trailing newline; inside", DOC.read_text())
    assert stated and int(stated.group(1)) == len(documented)
    record = ex("declaration-record").line
    assert row["record"] == record and row["record_sha256"] == hashlib.sha256(record.encode()).hexdigest()
    assert row["event_id"] == f"{row['deployment_id']}@{row['sequence']}" and row["source"] == declarations.SOURCE
    # The batch id: SHA-256 of the row's leaf without its batch_id member (one row, so nothing is joined).
    unsaid = {k: v for k, v in row.items() if k not in UNSAID}
    independent = hashlib.sha256(independent_row_leaf(declarations.TABLE, unsaid)).hexdigest()
    assert row["batch_id"] == declarations.batch_id_of([unsaid]) == independent
    assert f"The batch id `{row['batch_id'][:8]}…`" in DOC.read_text()
    # It is exactly what the publisher logs for that registry file at that moment.
    registry = example_registry(tmp_path / "v1", ex("declaration-yaml").text, row["timezone"])
    assert declarations.next_rows(registry, None, row["event_time"]) == [unsaid]


def test_declaration_of_an_edited_record_links_to_the_previous_version(tmp_path: Path) -> None:
    assert f"`{EDIT[0]}` becomes `{EDIT[1]}`" in DOC.read_text()
    documented = ex("declaration-amended").fields()
    v1, v2 = example_versions(tmp_path)
    assert {k: shown(v) for k, v in v2.items() if k != "record" and v != v1[k]} == documented
    # Independently: the edited record, its digest, the link to version 1, the changed members.
    before = json.loads(v1["record"])
    record = independent_record(ex("declaration-yaml").text.replace(*EDIT))
    after = json.loads(record)
    changed = ",".join(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))
    when = dt.datetime.fromisoformat(documented["event_time"])
    unsaid = {
        **{k: v for k, v in v1.items() if k not in UNSAID}, "event_id": f"{DEPLOYMENT}@2", "event_time": when,
        "sequence": 2, "record": record.decode(), "record_sha256": hashlib.sha256(record).hexdigest(),
        "previous_sha256": v1["record_sha256"], "previous_leaf": v1["leaf_index"], "change": "retroactive",
        "changed_fields": changed,
    }
    batch_id = hashlib.sha256(independent_row_leaf(declarations.TABLE, unsaid)).hexdigest()
    leaf_bytes = independent_row_leaf(declarations.TABLE, {**unsaid, "batch_id": batch_id})
    expected = {**unsaid, "batch_id": batch_id, "leaf_index": 5, "leaf_hash": rfc9162_leaf(leaf_bytes).hex()}
    assert {k: shown(v) for k, v in expected.items() if k != "record" and v != v1[k]} == documented
    # Retroactive: the new terms claim days before the local day it was logged.
    logged_day = when.astimezone(ZoneInfo(v1["timezone"])).date()
    assert after["policy_effective_from"] < logged_day.isoformat() and before["retention"] != after["retention"]


def test_how_the_audit_judges_the_example_and_its_finding(tmp_path: Path) -> None:
    v1, v2 = example_versions(tmp_path)
    declared = declarations.declared_from_rows([v1, v2])
    zone = ZoneInfo(v1["timezone"])
    versions = (v1, v2)
    records = {v["event_id"]: json.loads(v["record"]) for v in versions}
    logged = {v["event_id"]: v["event_time"].astimezone(zone).date() for v in versions}
    for line in ex("declaration-judging").text.splitlines():
        day_text, event_id, rules = line.split("  ")
        day = dt.date.fromisoformat(day_text)
        # The latest version logged on or before the day; before the first one, the first one.
        judge = ([v["event_id"] for v in versions if logged[v["event_id"]] <= day] or [v1["event_id"]])[-1]
        assert event_id == judge
        assert rules == ", ".join(f"{r['data_class']} {r['period']}" for r in records[judge]["retention"])
        assert rules == ", ".join(f"{r.data_class} {r.period}" for r in declared.policy_at(DEPLOYMENT, day).retention)
    documented = ex("retroactive-finding").fields()
    # The project's audit: the retroactive step of the findings, over the two versions.
    con = duckdb.connect()
    try:
        con.execute(retention.SETUP)
        con.register("retroactive", context.retroactive_table(declared, v1["timezone"]))
        con.register("severity", findings.severity_table())
        con.execute(findings.SETUP)
        con.execute(findings.RETROACTIVE)
        (found,) = con.sql(findings.RESULT).to_arrow_table().to_pylist()
    finally:
        con.close()
    numbers = json.loads(found["numbers"])
    project = {k: shown(found[k]) for k in ("kind", "severity", "deployment_id", "data_class", "period_start",
                                              "period_end", "policy_version")}
    project |= {k: shown(numbers[k]) for k in ("days", "declared_at", "previous_leaf", "previous_sha256", "leaf",
                                                 "sha256")}
    project |= {"evidence": ", ".join(f"{e['source']} {e['id']}" for e in found["evidence"]), "id": found["id"]}
    assert project == documented
    # Independently: the days it rewrote are from commissioning to the day before it was logged.
    first = dt.date.fromisoformat(records[v1["event_id"]]["lifecycle"]["commissioned"])
    end = logged[v2["event_id"]]

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)

    assert (documented["period_start"], documented["period_end"]) == (shown(midnight(first)), shown(midnight(end)))
    assert documented["days"] == str((end - first).days)
    assert documented["declared_at"] == shown(v2["event_time"])
    assert (documented["previous_leaf"], documented["leaf"]) == (str(v1["leaf_index"]), str(v2["leaf_index"]))
    assert (documented["previous_sha256"], documented["sha256"]) == (v1["record_sha256"], v2["record_sha256"])
    assert documented["evidence"] == f"sensorlog:registry {v1['event_id']}, sensorlog:registry {v2['event_id']}"
    assert (documented["kind"], documented["severity"], documented["data_class"]) == (
        "retroactive_policy_change", "high", "null")
    instants = [midnight(d).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for d in (first, end)]
    key = "|".join(["retroactive_policy_change", DEPLOYMENT, "", *instants, v2["event_id"]])
    assert documented["id"] == hashlib.sha256(key.encode()).hexdigest()


# -- tiles and bundles -------------------------------------------------------------------------------


def test_level0_tile_and_entry_bundle() -> None:
    tile = b"".join(leaf_hashes())
    assert len(tile) == 96
    bundle = bundles.encode_bundle(entries())
    assert bundle == b"".join(len(e).to_bytes(2, "big") + e for e in entries())
    assert bundles.decode_bundle(bundle) == entries()
    head = bytes.fromhex(ex("entry-bundle-head").line)
    assert len(head) == 48 and bundle.startswith(head)
    assert head[:2] == len(row_leaf("collection")).to_bytes(2, "big")
    stated = re.search(r"`log/tile/entries/000\.p/3`, is (\d+) bytes", DOC.read_text())
    assert stated and int(stated.group(1)) == len(bundle)


def test_tile_paths() -> None:
    lines = ex("tile-paths").text.splitlines()
    assert lines
    for line in lines:
        m = re.fullmatch(r"(\S+)\s+(?:level (\d+)|(entries)), tile (\d+), width (\d+)", line)
        assert m, line
        rel, level, is_entries, index, width = m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5))
        suffix = "" if width == 256 else f".p/{width}"
        mine = f"tile/{'entries' if is_entries else level}/{tile_index(index)}{suffix}"
        code = bundles.bundle_path(index, width) if is_entries else tile_path(int(level), index, width)
        assert rel == mine == code
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"  # the spec's own example


def test_leaf_position() -> None:
    m = re.fullmatch(r"leaf (\d+) is at offset (\d+) of tile (\d+): (\S+) and (\S+)", ex("leaf-position").line)
    assert m
    index, offset, tile = int(m.group(1)), int(m.group(2)), int(m.group(3))
    assert divmod(index, 256) == (tile, offset)
    assert (m.group(4), m.group(5)) == (tile_path(0, tile), bundles.bundle_path(tile))


# -- keys, checkpoints, file list --------------------------------------------------------------------


def test_log_key_id_vkey_and_fingerprint() -> None:
    f = ex("log-key").fields()
    seed, name = bytes.fromhex(f["seed"]), f["name"]
    assert name == ORIGIN == Settings.from_env({}).log_origin  # the documented default origin
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert public.hex() == f["public key"]
    kid_input = name.encode() + b"\x0a\x01" + public
    assert kid_input.hex() == f["key ID input"]
    assert sha256(kid_input).hex() == f["SHA-256 of it"]
    assert f["key ID"] == sha256(kid_input)[:4].hex() == f"{log_signer().key_id:08x}"
    vkey = f"{name}+{f['key ID']}+" + b64(bytes([1]) + public)
    assert f["vkey"] == vkey == log_signer().vkey()
    digest = hashlib.sha256(vkey.encode()).hexdigest()[:32]
    assert f["fingerprint"] == " ".join(digest[i:i + 4] for i in range(0, 32, 4)) == fingerprint(vkey)


def test_checkpoint() -> None:
    signed = ex("checkpoint").text
    root = mth(leaf_hashes())
    assert root == merkle.root_of(leaf_hashes())
    text = f"{ORIGIN}\n3\n{b64(root)}\n"
    seed = bytes.fromhex(ex("log-key").fields()["seed"])
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(text.encode())  # Ed25519 is deterministic
    assert signed == f"{text}\n\u2014 {ORIGIN} {b64(key_id(ORIGIN, 1, public) + signature)}\n"
    assert sign_checkpoint(Checkpoint(ORIGIN, 3, root), log_signer()) == signed
    assert open_checkpoint(signed, ex("log-key").fields()["vkey"]) == Checkpoint(ORIGIN, 3, root)


def _example_site_files() -> dict[str, bytes]:
    m = manifest()
    signed = ex("checkpoint").text.encode()
    return {
        "log/batches.jsonl": ex("batches-jsonl").text.encode(),
        "log/checkpoint": signed,
        "log/checkpoints/3": signed,
        "log/log.vkey": (ex("log-key").fields()["vkey"] + "\n").encode(),
        f"log/manifests/{m['batch_id']}.json": manifest_file_bytes(),
        "log/tile/0/000.p/3": b"".join(leaf_hashes()),
        "log/tile/entries/000.p/3": bundles.encode_bundle(entries()),
    }


def test_signed_file_list() -> None:
    documented = ex("file-list").text
    m = manifest()
    pairs = [(p, hashlib.sha256(b).hexdigest()) for p, b in _example_site_files().items()]
    pairs += [(f"data/{o['path']}", o["sha256"]) for o in m["outputs"]]
    head = open_checkpoint(ex("checkpoint").text, log_signer().vkey())
    assert site_files.sign(ORIGIN, head, pairs, log_signer()) == documented
    # Independently: the text lines, then the log key's Ed25519 signature over them.
    body, _, sig_line = documented.partition("\n\n")
    lines = body.split("\n")
    assert lines[0] == f"{ORIGIN} site files"
    assert lines[1] == f"checkpoint 3 {b64(mth(leaf_hashes()))}"
    assert lines[2:] == [f"{d}  {p}" for p, d in sorted(pairs)]
    name, blob = sig_line.removeprefix("\u2014 ").rstrip("\n").split(" ")
    raw = base64.b64decode(blob)
    public = bytes.fromhex(ex("log-key").fields()["public key"])
    assert name == ORIGIN and raw[:4] == key_id(ORIGIN, 1, public)
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (body + "\n").encode())
    assert site_files.open_list(documented, log_signer().vkey()).files == dict(pairs)


# -- witnesses ---------------------------------------------------------------------------------------


def witness_cosigner() -> tuple[cosignature.Cosigner, int]:
    f = ex("witness-key").fields()
    return cosignature.Cosigner(f["name"], bytes.fromhex(f["seed"])), int(f["timestamp"])


def test_cosignature() -> None:
    f = ex("witness-key").fields()
    cosigner, when = witness_cosigner()
    seed = bytes.fromhex(f["seed"])
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    expected = f"{f['name']}+{key_id(f['name'], 4, public).hex()}+" + b64(bytes([4]) + public)
    assert f["vkey"] == cosigner.vkey() == expected
    assert dt.datetime.fromtimestamp(when, dt.UTC) == dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
    message = f"cosignature/v1\ntime {when}\n{checkpoint_text()}".encode()
    assert ex("cosignature-message").text.encode() == message == cosignature.signed_message(checkpoint_text(), when)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    line = f"\u2014 {f['name']} {b64(key_id(f['name'], 4, public) + when.to_bytes(8, 'big') + signature)}\n"
    assert cosigner.cosign(checkpoint_text(), when) == line
    cosigned = ex("cosigned-checkpoint").text
    assert cosigned == ex("checkpoint").text + line
    assert [c.timestamp for c in cosignature.verify_cosignatures(cosigned, [f["vkey"]])] == [when]
    assert open_checkpoint(cosigned, log_signer().vkey()).size == 3  # log readers ignore the extra line


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    """A witness holding the example witness key, told about the example log."""
    cosigner, _ = witness_cosigner()
    (tmp_path / witness_module.KEY).write_text(cosigner.skey() + "\n")
    (tmp_path / witness_module.LOGS).write_text(json.dumps({ORIGIN: [log_signer().vkey()]}))
    return tmp_path


def test_add_checkpoint_request_and_what_a_witness_refuses(witness_dir: Path) -> None:
    request = ex("add-checkpoint").text
    assert format_add_checkpoint(0, [], ex("checkpoint").text).decode() == request
    assert parse_add_checkpoint(request.encode()).old_size == 0
    cosigner, when = witness_cosigner()
    w = witness_module.Witness(witness_dir)
    line = ex("cosigned-checkpoint").text.splitlines()[-1] + "\n"
    assert w.add_checkpoint(request.encode(), timestamp=when) == line

    def refused(body: bytes) -> int:
        with pytest.raises(witness_module.Refusal) as caught:
            w.add_checkpoint(body, timestamp=when + 1)
        return caught.value.status

    with pytest.raises(witness_module.Conflict) as conflict:  # it now holds size 3
        w.add_checkpoint(request.encode(), timestamp=when + 1)
    assert (conflict.value.status, conflict.value.recorded_size) == (409, 3)
    fork = sign_checkpoint(Checkpoint(ORIGIN, 3, sha256(b"another history")), log_signer())
    assert refused(format_add_checkpoint(3, [], fork)) == 422
    assert list((witness_dir / witness_module.EVIDENCE).rglob("*.txt"))  # the fork is kept as evidence
    assert refused(b"old 01\n\n" + ex("checkpoint").text.encode()) == 400
    assert refused(format_add_checkpoint(4, [], ex("checkpoint").text)) == 400  # old > size
    other = note.Signer("other.example/log", bytes(32))
    unknown = sign_checkpoint(Checkpoint("other.example/log", 3, bytes(32)), other)
    assert refused(format_add_checkpoint(0, [], unknown)) == 404
    stranger = note.Signer(ORIGIN, bytes(range(1, 33)))
    forged = sign_checkpoint(Checkpoint(ORIGIN, 3, mth(leaf_hashes())), stranger)
    assert refused(format_add_checkpoint(3, [], forged)) == 403
    assert w.state(ORIGIN).size == 3


# -- proofs ------------------------------------------------------------------------------------------


def test_tlog_proof() -> None:
    documented = ex("tlog-proof").text
    hashes = leaf_hashes()
    inclusion = path(1, hashes)
    assert inclusion == [hashes[0], hashes[2]]
    assert tlog_proof.format_proof(1, inclusion, ex("checkpoint").text, extra=row_leaf("lifecycle")) == documented
    parsed = tlog_proof.parse(documented)
    assert parsed.extra == row_leaf("lifecycle") and parsed.index == 1
    root = sha256(b"\x01" + sha256(b"\x01" + hashes[0] + rfc9162_leaf(parsed.extra)) + hashes[2])
    assert root == mth(hashes)
    checked = check_proof(documented, log_signer().vkey())
    assert (checked.index, checked.leaf_bytes, checked.checkpoint.size) == (1, row_leaf("lifecycle"), 3)


# -- a built site has exactly the documented layout ---------------------------------------------------

_PLACEHOLDERS = {
    "<size>": r"[1-9][0-9]*", "<L>": r"(?:0|[1-9][0-9]?)", "<W>": r"[1-9][0-9]*",
    "<N>": r"(?:x[0-9]{3}/)*[0-9]{3}", "<batch_id>": r"[0-9a-f]{64}", "<table>": r"[a-z_]+",
    "<date>": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
}


def _pattern(template: str) -> re.Pattern[str]:
    out = re.escape(template)
    for placeholder, regex in _PLACEHOLDERS.items():
        out = out.replace(re.escape(placeholder), regex)
    return re.compile(out)


def _served(size: int, sizes: set[int], *, entries_: bool) -> set[str]:
    """The tiles (or bundles) §5.2 says are served: every full tile, the partials of every signed size."""
    out: set[str] = set()
    level = 0
    while size >> (8 * level):
        count = size >> (8 * level)
        name = "entries" if entries_ else str(level)
        out |= {f"log/tile/{name}/{tile_index(n)}" for n in range(count // 256)}
        for s in sizes:
            index, width = divmod(s >> (8 * level), 256)
            if width:
                out.add(f"log/tile/{name}/{tile_index(index)}.p/{width}")
        if entries_:
            break
        level += 1
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry's declarations (2 leaves), then two event batches (201 and 101 leaves): full and
    partial tiles, older partials, a level-1 tile."""
    base = tmp_path_factory.mktemp("log-format")
    registry = base / "registry"
    registry.mkdir()
    plaza = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(plaza.replace("cctv-city-hall-plaza", DEPLOYMENT))
    settings = Settings.from_env({"SENSORLOG_HOME": str(base / "home"), "SENSORLOG_LANDING": str(base / "landing"),
                                  "SENSORLOG_REGISTRY": str(registry)})
    landing = base / "landing"
    landing.mkdir()
    (landing / "a.ndjson").write_bytes(ndjson([make_event("collection", n) for n in range(200)]))
    flow.run(settings)
    (landing / "b.ndjson").write_bytes(ndjson([make_event("access", n) for n in range(100)]))
    flow.run(settings)
    out = base / "site"
    build_portal(settings, str(out))
    shutil.rmtree(base / "home" / "staging", ignore_errors=True)
    return out


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_the_site_has_exactly_the_documented_log_layout(site: Path) -> None:
    files = _files(site)
    log_files = {f for f in files if f.startswith("log/")}
    patterns = [_pattern(t) for t in ex("log-layout").text.split()]
    for p in patterns:
        assert any(p.fullmatch(f) for f in log_files), f"no file in the site's log/ matches {p.pattern}"
    assert [f for f in log_files if not any(p.fullmatch(f) for p in patterns)] == []
    data = _pattern(ex("data-layout").line)
    assert any(data.fullmatch(f) for f in files)
    assert [f for f in files if f.startswith("data/event_type=") and not data.fullmatch(f)] == []
    declared = _pattern(ex("declaration-layout").line)
    assert any(declared.fullmatch(f) for f in files)
    assert not [f for f in files if f.rsplit("/", 1)[-1] in ("state.json", ".lock", "declarations.pending.json")]
    # Which tiles and bundles are served (§5.2, §5.3).
    sizes = {int(f.rsplit("/", 1)[1]) for f in log_files if f.startswith("log/checkpoints/")}
    assert sizes == {2, 203, 304}
    tiles = {f for f in log_files if re.match(r"log/tile/[0-9]", f)}
    bundle_files = {f for f in log_files if f.startswith("log/tile/entries/")}
    assert tiles == _served(304, sizes, entries_=False)
    assert bundle_files == _served(304, sizes, entries_=True)
    assert "log/tile/1/000.p/1" in tiles and "log/tile/0/000.p/203" in tiles


def test_the_site_log_files_have_the_documented_formats(site: Path) -> None:
    log = site / "log"
    vkey = (log / "log.vkey").read_text()
    assert vkey.endswith("\n") and vkey.count("\n") == 1
    verifier = note.Verifier.from_vkey(vkey)
    assert verifier.name == ORIGIN
    records = [json.loads(line) for line in (log / "batches.jsonl").read_text().splitlines()]
    assert (log / "batches.jsonl").read_text() == "".join(
        json.dumps({"batch_id": r["batch_id"], "start": r["start"], "count": r["count"]}) + "\n" for r in records)
    assert {r["start"] + r["count"] for r in records} == {2, 203, 304}
    latest = (log / "checkpoint").read_text()
    for size in (2, 203, 304):
        kept = (log / "checkpoints" / str(size)).read_text()
        text, signatures = note.parse_note(kept)
        assert len(signatures) == 1 and text.split("\n")[:2] == [ORIGIN, str(size)]
    assert note.parse_note(latest)[0] == note.parse_note((log / "checkpoints" / "304").read_text())[0]
    # Every leaf, recomputed independently from the files, is in the tiles and the bundles.
    stream: list[bytes] = []
    for r in records:
        m = json.loads((log / "manifests" / f"{r['batch_id']}.json").read_text())
        assert m["leaves"]["first"] == r["start"] == len(stream)
        for out in m["outputs"]:
            raw = (site / "data" / out["path"]).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == out["sha256"]
            file = pq.ParquetFile(pa.BufferReader(raw))
            assert not {"event_type", "event_date"} & set(file.schema_arrow.names)
            for i, row in enumerate(file.read().to_pylist()):
                assert row["leaf_index"] == out["first_leaf"] + i == len(stream)
                leaf_bytes = independent_row_leaf(out["table"], row)
                assert row["leaf_hash"] == rfc9162_leaf(leaf_bytes).hex()
                stream.append(leaf_bytes)
        assert len(stream) == m["leaves"]["manifest_leaf"] == m["leaves"]["rows_end"]
        stream.append(rfc8785.dumps({"table": "manifest", **m}))
    hashes = [rfc9162_leaf(e) for e in stream]
    head = open_checkpoint(latest, vkey)
    assert head.size == len(stream) == 304 and head.root_hash == mth(hashes)
    assert (log / "tile/0/000").read_bytes() == b"".join(hashes[:256])
    assert (log / "tile/1/000.p/1").read_bytes() == mth(hashes[:256])
    assert bundles.decode_bundle((log / "tile/entries/000").read_bytes()) == stream[:256]
    assert bundles.decode_bundle((log / "tile/entries/001.p/48").read_bytes()) == stream[256:]
    assert bundles.decode_bundle((log / "tile/entries/000.p/203").read_bytes()) == stream[:203]
    assert bundles.decode_bundle((log / "tile/entries/000.p/2").read_bytes()) == stream[:2]


def test_the_site_file_list_and_verify(site: Path) -> None:
    listed = site_files.open_list((site / "SHA256SUMS").read_text(), (site / "log/log.vkey").read_text())
    head = open_checkpoint((site / "log/checkpoint").read_text(), (site / "log/log.vkey").read_text())
    assert (listed.origin, listed.size, listed.root) == (ORIGIN, head.size, head.root_hash)
    assert set(listed.files) == _files(site) - {"SHA256SUMS"}
    assert any(p.startswith("data/event_type=") for p in listed.files)
    assert "data/collection/collection.parquet" in listed.files  # an extract: listed, not a leaf
    report = verify_log(site / "log", site / "data", site=site)
    assert report.ok, report.problems
    assert any("trusting this key on first use" in w for w in report.warnings)


def test_the_site_declarations_pass_the_checklist(site: Path) -> None:
    """§11 step 8, independently, on the built site: the declarations came first, each batch's id is
    the digest of its rows, every record hashes to its digest and is valid, and the versions chain."""
    log = site / "log"
    records = [json.loads(line) for line in (log / "batches.jsonl").read_text().splitlines()]
    manifests = [json.loads((log / "manifests" / f"{r['batch_id']}.json").read_text()) for r in records]
    assert [m.get("kind") for m in manifests] == ["declarations", None, None]  # logged before the run's events
    validator = jsonschema.Draft202012Validator(DEPLOYMENT_SCHEMA)
    layout_ = _pattern(ex("declaration-layout").line)
    latest: dict[str, dict] = {}
    for m in (m for m in manifests if m.get("kind") == "declarations"):
        (out,) = m["outputs"]
        assert out["table"] == declarations.TABLE and layout_.fullmatch(f"data/{out['path']}")
        rows = pq.ParquetFile(pa.BufferReader((site / "data" / out["path"]).read_bytes())).read().to_pylist()
        (logged_at,) = {r["event_time"] for r in rows}
        assert out["event_date"] == logged_at.astimezone(dt.UTC).date().isoformat()
        assert m["validated_at"] == logged_at.astimezone(dt.UTC).isoformat()
        unsaid = [independent_row_leaf(declarations.TABLE, {k: v for k, v in r.items() if k != "batch_id"})
                  for r in rows]
        assert m["batch_id"] == m["source_sha256"] == hashlib.sha256(b"\n".join(unsaid)).hexdigest()
        assert m["rows_in"] == m["published"] == len(rows) and m["source_file"] == "registry"
        assert m["source_bytes"] == sum(len(r["record"].encode()) for r in rows)
        for r in rows:
            assert r["source"] == "sensorlog:registry" and r["event_id"] == f"{r['deployment_id']}@{r['sequence']}"
            assert r["record_sha256"] == hashlib.sha256(r["record"].encode()).hexdigest()
            doc = json.loads(r["record"])
            assert rfc8785.dumps(doc) == r["record"].encode()
            validator.validate(doc)
            assert doc["id"] == r["deployment_id"]
            assert (r["policy_version"], r["effective_from"]) == (doc["policy_version"], doc["policy_effective_from"])
            before = latest.get(r["deployment_id"])
            assert r["sequence"] == (before["sequence"] + 1 if before else 1)
            link = (before["leaf_index"], before["record_sha256"]) if before else (None, None)
            assert (r["previous_leaf"], r["previous_sha256"]) == link
            latest[r["deployment_id"]] = r
    assert set(latest) == {DEPLOYMENT}
