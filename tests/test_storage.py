"""The storage layer: the same tests against a local folder and a real S3 endpoint on loopback."""

from __future__ import annotations

import pytest

from pipelines import storage

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    bucket = request.getfixturevalue("bucket")
    return f"s3://{bucket}/prefix"


def test_write_read_exists_and_info(root):
    uri = storage.join(root, "a/b/c.json")
    assert not storage.exists(uri) and storage.file_info(uri) is None
    storage.write_bytes(uri, b'{"x": 1}', content_type="application/json")
    assert storage.exists(uri) and storage.read_bytes(uri) == b'{"x": 1}'
    assert storage.file_info(uri).size == 8
    storage.write_bytes(uri, b"{}")  # replacing is all-or-nothing
    assert storage.read_bytes(uri) == b"{}"


def test_listing_is_recursive_sorted_filtered_and_skips_hidden_parts(root):
    for name in ("z.ndjson", "v/a.csv", "v/b.txt", "v/.a.csv.1234.partial", ".hidden/x.ndjson"):
        storage.write_bytes(storage.join(root, name), b"x")
    assert storage.list_files(root, (".ndjson", ".csv")) == [storage.join(root, "v/a.csv"),
                                                              storage.join(root, "z.ndjson")]
    assert storage.list_files(storage.join(root, "missing")) == []


def test_hash_lines_move_delete(root):
    lines = [f"line {i} ".encode() * 40 for i in range(30_000)]  # several read chunks
    uri = storage.join(root, "big.ndjson")
    storage.write_bytes(uri, b"\n".join(lines))
    assert list(storage.iter_lines(uri)) == lines
    import hashlib

    assert storage.sha256_of(uri) == (hashlib.sha256(b"\n".join(lines)).hexdigest(), len(b"\n".join(lines)))
    moved = storage.join(root, "moved/big.ndjson")
    storage.move(uri, moved)
    assert not storage.exists(uri) and storage.exists(moved)
    storage.delete(moved)
    assert not storage.exists(moved)


def test_s3_objects_carry_their_content_type(bucket):
    import boto3

    storage.write_bytes(f"s3://{bucket}/t/data.parquet", b"PAR1", content_type="application/vnd.apache.parquet")
    head = boto3.client("s3").head_object(Bucket=bucket, Key="t/data.parquet")
    assert head["ContentType"] == "application/vnd.apache.parquet"
