"""The landing zone's boundaries: discovery never follows a symlink (out of the root, or round in a
loop), never reads an S3 key outside the landing prefix, and reports each thing it set aside and why;
an invalid registry makes every command print its problems and exit 2, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import make_event, ndjson
from typer.testing import CliRunner

from pipelines import cli, flow, storage
from pipelines.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(device_registry: Path) -> Path:
    return device_registry


def env_for(tmp_path: Path, registry: Path) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)  # the landing is elsewhere; the commands need a home that exists
    return {
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(registry),
    }


def published_ids(settings: Settings) -> list[str]:
    """Ids of the published events (not the registry's declarations, logged before them)."""
    files = [f for f in storage.list_files(settings.published, (".parquet",)) if "event_type=declaration/" not in f]
    return sorted(i for f in files for i in pq.read_table(f, columns=["event_id"]).column(0).to_pylist())


def test_symlinks_out_of_landing_and_loops_are_skipped_and_reported(tmp_path, registry):
    env = env_for(tmp_path, registry)
    settings = Settings.from_env(env)
    landing, outside = Path(settings.landing), tmp_path / "outside"
    (landing / "vendor").mkdir(parents=True)
    outside.mkdir()
    (landing / "vendor" / "inside.ndjson").write_bytes(ndjson([make_event(n=1)]))
    (outside / "secret.ndjson").write_bytes(ndjson([make_event(n=2), make_event(n=3)]))
    (outside / "broken.json").write_bytes(b"[{")  # unreadable: would be copied into quarantine/files/
    os.symlink(outside / "secret.ndjson", landing / "secret.ndjson")  # a file outside
    os.symlink(outside / "broken.json", landing / "broken.json")
    os.symlink(outside, landing / "elsewhere")  # a folder outside
    os.symlink(".", landing / "vendor" / "loop")  # a loop: vendor/loop/loop/loop/…
    os.symlink("inside.ndjson", landing / "vendor" / "alias.ndjson")  # inside, but a link all the same
    os.symlink(landing / "gone.ndjson", landing / "dangling.ndjson")

    assert flow.discover(settings) == [str(landing / "vendor" / "inside.ndjson")]  # listed once
    skipped = {Path(s.uri).relative_to(landing).as_posix(): s.reason for s in flow.landing(settings).skipped}
    assert set(skipped) == {"secret.ndjson", "broken.json", "elsewhere", "vendor/loop", "vendor/alias.ndjson",
                            "dangling.ndjson"}
    assert "outside the landing root" in skipped["secret.ndjson"] and str(outside) in skipped["secret.ndjson"]
    assert "outside the landing root" in skipped["elsewhere"]
    assert "inside the landing root" in skipped["vendor/loop"]
    assert "broken symlink" in skipped["dangling.ndjson"]
    assert all(reason.endswith("not followed") for reason in skipped.values())

    result = CliRunner().invoke(cli.app, ["run", "--workers", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert published_ids(settings) == ["collection-1"]  # no outside row
    assert not storage.list_files(storage.join(settings.quarantine, "files"))  # no outside bytes kept
    status = CliRunner().invoke(cli.app, ["status"], env=env)
    assert status.exit_code == 0
    for name in skipped:
        assert f"skipped in the landing zone: {landing / name}:" in status.stdout.replace("\n", "")
    listed = CliRunner().invoke(cli.app, ["discover"], env=env)
    assert listed.exit_code == 0 and listed.stdout == ""  # nothing left to publish
    assert "secret.ndjson: symlink to" in listed.stderr.replace("\n", "")


def test_a_fifo_in_landing_is_reported_not_read(tmp_path, registry):
    settings = Settings.from_env(env_for(tmp_path, registry))
    Path(settings.landing).mkdir(parents=True)
    os.mkfifo(Path(settings.landing) / "pipe.ndjson")  # hashing it would block forever
    assert flow.discover(settings) == []
    [skipped] = flow.landing(settings).skipped
    assert skipped.uri.endswith("pipe.ndjson") and "not a regular file" in skipped.reason


def test_s3_keys_that_leave_the_landing_prefix_are_skipped_and_reported(bucket, tmp_path, registry):
    import boto3

    settings = Settings.from_env({
        "SENSORLOG_HOME": f"s3://{bucket}/sensorlog", "SENSORLOG_STATE_HOME": str(tmp_path / "state"),
        "SENSORLOG_REGISTRY": str(registry),
    })
    s3 = boto3.client("s3")
    good = "sensorlog/landing/vendor/ok.ndjson"
    odd = ["sensorlog/landing/../outside.ndjson", "sensorlog/landing/vendor/../../../escape.ndjson",
           "sensorlog/landing//double-slash.ndjson", "sensorlog/landing/./dot.ndjson"]
    s3.put_object(Bucket=bucket, Key=good, Body=ndjson([make_event(n=1)]))
    for n, key in enumerate(odd, start=2):
        s3.put_object(Bucket=bucket, Key=key, Body=ndjson([make_event(n=n)]))
    s3.put_object(Bucket=bucket, Key="sensorlog/landing-old/x.ndjson", Body=ndjson([make_event(n=9)]))

    assert flow.discover(settings) == [f"s3://{bucket}/{good}"]
    skipped = {s.uri: s.reason for s in flow.landing(settings).skipped}
    assert set(skipped) == {f"s3://{bucket}/{key}" for key in odd}
    assert "outside the landing prefix" in skipped[f"s3://{bucket}/sensorlog/landing/../outside.ndjson"]
    assert "outside the landing prefix" in skipped[f"s3://{bucket}/sensorlog/landing/vendor/../../../escape.ndjson"]
    assert "inside the landing prefix" in skipped[f"s3://{bucket}/sensorlog/landing//double-slash.ndjson"]
    totals = flow.run(settings)
    assert (totals["batches"], totals["published"]) == (1, 1)
    assert published_ids(settings) == ["collection-1"]


COMMANDS = [["run"], ["status"], ["stage", "FILE"], ["commit", "0" * 64], ["discover"], ["generate"],
            ["demo", "--no-airflow"], ["audit"], ["portal"], ["registry"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_invalid_registry_prints_its_problems_and_exits_2_from_every_command(tmp_path, registry, command):
    (registry / "broken.yaml").write_text("id: broken\nname: [unclosed\n")
    (registry / "incomplete.yaml").write_text("id: incomplete\n")
    env = env_for(tmp_path, registry)
    landed = tmp_path / "landing" / "a.ndjson"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(ndjson([make_event(n=1)]))
    args = [str(landed) if a == "FILE" else a for a in command]
    result = CliRunner().invoke(cli.app, args, env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # an orderly exit, not an exception escaping
    assert "Traceback" not in result.output
    assert f"{registry / 'broken.yaml'}: line 3: expected valid YAML" in result.stderr.replace("\n", "")
    assert f"{registry / 'incomplete.yaml'}: name: expected a value" in result.stderr.replace("\n", "")
    assert not Path(env["SENSORLOG_HOME"], "manifests").exists()  # and nothing was published
