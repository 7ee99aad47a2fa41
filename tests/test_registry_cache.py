"""Loading a registry fast: libyaml gives the records the pure-Python loader gives, with the same bounds;
the content-hash cache returns what parsing would, follows every edit, addition and removal, and a
change of code or schema; a damaged entry is rebuilt, never trusted; one process reuses one load."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR
from pipelines.dev.bigregistry import write_registry
from pipelines.registry import RegistryError, cache, checks, load, load_registry

pytestmark = pytest.mark.integration

DEMO = PROJECT_DIR / "registry"
SAMPLE = "cctv-city-hall-plaza.yaml"


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No registry remembered from another test; the code key computed afresh."""
    monkeypatch.setattr(load, "_last", None)
    cache.code_key.cache_clear()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "registry"
    write_registry(out, 60, 2_000, seed=5)
    return out


def _forget() -> None:
    load._last = None


def _copy(src: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    shutil.copytree(src, folder)
    return folder


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files parsed from YAML from now on."""
    parsed: list[str] = []
    real = load._parse_yaml

    def spy(data: bytes, name: str):  # type: ignore[no-untyped-def]
        parsed.append(Path(name).name)
        return real(data, name)

    monkeypatch.setattr(load, "_parse_yaml", spy)
    return parsed


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.json"))


# ---------------------------------------------------------------------------------------------------
# libyaml and the pure-Python loader


@pytest.mark.parametrize("which", ["demo", "generated"])
def test_libyaml_gives_the_records_of_the_pure_python_loader(
    which: str, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load._LOADER is load._CLoader is not None  # libyaml is what this machine uses
    folder = DEMO if which == "demo" else generated
    fast = load_registry(folder)
    _forget()
    monkeypatch.setattr(load, "_LOADER", load._Loader)
    slow = load_registry(folder)
    assert fast is not slow
    assert list(fast) == list(slow)
    assert [dict(d.raw) for d in fast] == [dict(d.raw) for d in slow]


BOUNDS = importlib.import_module("test_registry_bounds")


@pytest.mark.parametrize("name", [n for n in dir(BOUNDS) if n.startswith("test_")])
@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_the_bounds_hold_on_both_loaders(
    name: str, loader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loader == "python":
        monkeypatch.setattr(load, "_LOADER", load._Loader)
    test = getattr(BOUNDS, name)
    test(**{p: tmp_path for p in inspect.signature(test).parameters})


HOSTILE = {
    "duplicate key": ("vendor: Avigard Systems", "vendor: Avigard Systems\nvendor: Other"),
    "unclosed flow": ("purposes: [", "purposes: [[purpose__safety_security"),
    "tab indentation": ("  organisation:", "\torganisation:"),
    "alias bomb": (
        "vendor: Avigard Systems",
        "vendor: *l3",
    ),
    "deep nesting": ("vendor: Avigard Systems", "vendor: " + "[" * 2000 + "]" * 2000),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_hostile_yaml_is_one_problem_naming_the_file_on_both_loaders(
    case: str, loader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loader == "python":
        monkeypatch.setattr(load, "_LOADER", load._Loader)
    old, new = HOSTILE[case]
    text = (DEMO / SAMPLE).read_text()
    assert old in text
    if case == "alias bomb":
        text = "".join(
            f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 40)}]\n" if i else "l0: &l0 x\n" for i in range(4)
        ) + text
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / SAMPLE).write_text(text.replace(old, new, 1))
    with pytest.raises(RegistryError) as err:
        load_registry(folder, cache_dir=tmp_path / "cache")
    problems = err.value.problems
    assert problems and all(p.file == str(folder / SAMPLE) for p in problems)
    if case == "duplicate key":
        assert any("duplicate key 'vendor'" in p.expected for p in problems)
    if case in ("alias bomb", "deep nesting"):
        assert problems[0].expected.startswith("YAML within bounds")
    if case in ("unclosed flow", "tab indentation"):
        assert problems[0].field.startswith("line ")
    assert not _entries(tmp_path / "cache")  # a file with a problem is never cached


def test_a_crlf_file_loads_as_it_reads(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / SAMPLE).write_bytes((DEMO / SAMPLE).read_bytes().replace(b"\n", b"\r\n"))
    assert list(load_registry(folder))[0].raw == list(load_registry(DEMO / SAMPLE))[0].raw


# ---------------------------------------------------------------------------------------------------
# The content-hash cache


def test_the_cache_returns_what_parsing_returns_and_parses_nothing_the_second_time(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "cache"
    plain = load_registry(generated)
    _forget()
    first = load_registry(generated, cache_dir=store)
    assert len(_entries(store)) == 60
    _forget()
    parsed = _parses(monkeypatch)
    second = load_registry(generated, cache_dir=store)
    assert parsed == []
    assert list(plain) == list(first) == list(second)
    assert [dict(d.raw) for d in plain] == [dict(d.raw) for d in second]
    assert [d.source_file for d in second] == [d.source_file for d in plain]


def test_the_cache_follows_edits_additions_and_removals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, store = _copy(DEMO, tmp_path), tmp_path / "cache"
    load_registry(folder, cache_dir=store)
    parsed = _parses(monkeypatch)

    sample = folder / SAMPLE
    sample.write_text(sample.read_text().replace("vendor: Avigard Systems", "vendor: Edited Vendor"))
    _forget()
    edited = load_registry(folder, cache_dir=store)
    assert edited["cctv-city-hall-plaza"].vendor == "Edited Vendor"
    assert parsed == [SAMPLE]

    added = folder / "cctv-added-camera.yaml"
    added.write_text(sample.read_text().replace("id: cctv-city-hall-plaza", "id: cctv-added-camera"))
    _forget()
    assert "cctv-added-camera" in load_registry(folder, cache_dir=store)
    assert parsed == [SAMPLE, added.name]

    added.unlink()
    _forget()
    assert "cctv-added-camera" not in load_registry(folder, cache_dir=store)
    assert parsed == [SAMPLE, added.name]

    # The same bytes under another name are another entry: the id must equal the file name.
    shutil.copy(sample, folder / "cctv-renamed.yaml")
    _forget()
    with pytest.raises(RegistryError, match="cctv-renamed"):
        load_registry(folder, cache_dir=store)


def test_a_file_edited_into_a_problem_is_refused_though_its_old_bytes_are_cached(tmp_path: Path) -> None:
    folder, store = _copy(DEMO, tmp_path), tmp_path / "cache"
    load_registry(folder, cache_dir=store)
    sample = folder / SAMPLE
    sample.write_text(sample.read_text().replace("kind: cctv_camera", "kind: teleporter"))
    _forget()
    with pytest.raises(RegistryError, match="kind"):
        load_registry(folder, cache_dir=store)


def test_a_change_of_code_or_schema_starts_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, store = _copy(DEMO, tmp_path), tmp_path / "cache"
    schema = tmp_path / "deployment.schema.json"
    shutil.copy(checks.SCHEMA_FILE, schema)
    monkeypatch.setattr(checks, "SCHEMA_FILE", schema)  # what the code key hashes (the checks keep theirs)
    cache.code_key.cache_clear()
    load_registry(folder, cache_dir=store)
    before = {p.parent.name for p in _entries(store)}

    schema.write_text(schema.read_text().replace('"maxLength": 120', '"maxLength": 121', 1))
    cache.code_key.cache_clear()
    parsed = _parses(monkeypatch)
    _forget()
    load_registry(folder, cache_dir=store)
    assert len(parsed) == 32
    after = {p.parent.name for p in _entries(store)}
    assert len(after) == 1 and after != before  # the old folder is gone

    # A source file of the registry package is part of the key too.
    source = tmp_path / "extra.py"
    source.write_text("x = 1\n")
    real_inputs = cache._inputs
    monkeypatch.setattr(cache, "_inputs", lambda: [*real_inputs(), source])
    cache.code_key.cache_clear()
    key = cache.code_key()
    source.write_text("x = 2\n")
    cache.code_key.cache_clear()
    assert cache.code_key() != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "another file's entry", "empty"])
def test_a_damaged_entry_is_rebuilt_not_trusted(damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, store = _copy(DEMO, tmp_path), tmp_path / "cache"
    expected = list(load_registry(folder, cache_dir=store))
    entries = _entries(store)
    victim, other = entries[0], entries[1]
    data = victim.read_bytes()
    if damage == "garbage":
        victim.write_bytes(b"\x00\xffnot an entry")
    elif damage == "truncated":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "flipped byte":
        body = bytearray(data)
        spot = body.index(b'"vendor":') + 12
        body[spot] ^= 0x01
        victim.write_bytes(bytes(body))
    elif damage == "another file's entry":  # intact, but it names another key
        victim.write_bytes(other.read_bytes())
    else:
        victim.write_bytes(b"")
    parsed = _parses(monkeypatch)
    _forget()
    assert list(load_registry(folder, cache_dir=store)) == expected
    assert len(parsed) == 1
    assert victim.read_bytes() == data  # written again, intact


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    assert len(load_registry(DEMO, cache_dir=blocked)) == 32


# ---------------------------------------------------------------------------------------------------
# One process, one load


def test_a_process_reuses_its_last_registry_while_the_files_hash_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(DEMO, tmp_path)
    first = load_registry(folder)
    parsed = _parses(monkeypatch)
    assert load_registry(folder) is first
    assert parsed == []
    assert load_registry(folder, timezone="Europe/Berlin") is not first  # another zone, other records
    sample = folder / SAMPLE
    sample.write_text(sample.read_text().replace("vendor: Avigard Systems", "vendor: Edited Vendor"))
    again = load_registry(folder)
    assert again is not first and again["cctv-city-hall-plaza"].vendor == "Edited Vendor"


# ---------------------------------------------------------------------------------------------------
# The home's cache, from the command line


def _clean_env(cwd: Path) -> dict[str, str]:
    """An outsider's shell: no SENSORLOG_* variable, HOME and the working directory a fresh folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSORLOG_")}
    return {**env, "HOME": str(cwd)}


def test_checking_a_registry_in_a_clean_shell_creates_no_home(tmp_path: Path) -> None:
    cwd = tmp_path / "outsider"
    cwd.mkdir()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "registry", str(DEMO)], cwd=cwd,
                          env=_clean_env(cwd), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "32 deployments" in done.stdout
    assert list(cwd.iterdir()) == []  # no ./.sensorlog just for a cache


def test_an_existing_home_keeps_the_cache_in_its_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**_clean_env(tmp_path), "SENSORLOG_HOME": str(home)}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "registry", str(DEMO)], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    cached = list((home / "state" / "registry-cache").rglob("*.json"))
    assert len(cached) == 32  # one checked document per deployment file
