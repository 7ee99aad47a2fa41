"""Reading a registry: deployment YAML within bounds, checked (``checks``), built into typed records."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from pickle import PicklingError
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from pipelines.errors import SensorlogError
from pipelines.registry.cache import DocumentCache, entry_key, registry_cache_dir
from pipelines.registry.checks import BBox, Problem, RegistryError, check_deployment, deployment_warnings
from pipelines.registry.lines import with_lines
from pipelines.registry.model import (
    DEFAULT_TIMEZONE,
    AccessGrant,
    DataSource,
    Deployment,
    DeviceCount,
    Place,
    PolicyVersion,
    Registry,
    Relocation,
    english_text,
    text_translations,
)
from pipelines.registry.retention import DEFAULT_TRIGGER, RetentionRule

if TYPE_CHECKING:
    from pipelines.config import Settings

REGISTRY_SUFFIXES = (".yaml", ".yml")


# ---------------------------------------------------------------------------------------------------
# Reading YAML


# Bounds on one deployment file, checked before anything is built from it. A real file is a few
# kilobytes and a few hundred YAML nodes; aliases may share a node but not multiply a document past
# MAX_YAML_NODES (a "billion laughs" anchor expands to 10^9), and nesting stops at MAX_YAML_DEPTH.
MAX_REGISTRY_FILE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


class YamlBoundsError(SensorlogError, yaml.YAMLError):
    """A deployment file beyond the bounds above (refused before it is constructed)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


_TOO_MANY_NODES = f"aliases that expand the document past {MAX_YAML_NODES:,} nodes (an alias bomb?); refused unexpanded"


def _too_deep_at(node: yaml.Node) -> YamlBoundsError:
    return YamlBoundsError(f"nesting deeper than {MAX_YAML_DEPTH} levels (line {node.start_mark.line + 1})")


def _tree_within_bounds(root: yaml.Node) -> bool:
    """True for a document in which no node is reached twice (no alias: almost every file) and that is
    within the bounds; False as soon as a node is shared, for ``_check_bounds`` to decide. One cheap
    pass, in the order ``_check_bounds`` walks, so it refuses what that would, with the same words."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        key = id(node)
        if key in seen:
            return False
        seen.add(key)
        count += 1
        if depth > MAX_YAML_DEPTH:
            raise _too_deep_at(node)
        if count > MAX_YAML_NODES:
            raise YamlBoundsError(_TOO_MANY_NODES)
        if isinstance(node, yaml.MappingNode):
            for pair in node.value:
                stack.append((pair[0], depth + 1))
                stack.append((pair[1], depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
    return True


def _check_bounds(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases are recursive, expand past ``MAX_YAML_NODES`` nodes,
    or nest deeper than ``MAX_YAML_DEPTH``; shared nodes are counted once per reference, in one pass
    over the distinct nodes (never by expanding)."""
    if _tree_within_bounds(root):
        return
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 1)]
    while stack:
        node, done, depth = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlBoundsError(f"an alias that refers to itself (line {node.start_mark.line + 1})")
        if depth > MAX_YAML_DEPTH:
            raise _too_deep_at(node)
        open_nodes.add(key)
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > MAX_YAML_NODES:
        raise YamlBoundsError(_TOO_MANY_NODES)


def _bounded(node: yaml.Node | None) -> yaml.Node | None:
    if node is not None:
        _check_bounds(node)
    return node


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"found duplicate key {key_node.value!r}", key_node.start_mark
            )
        seen.add(key_node.value)


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text (the schema checks them), refuses duplicate keys, and
    checks a document's bounds (``_check_bounds``) before constructing anything from it."""

    def get_single_node(self) -> yaml.Node | None:
        return _bounded(super().get_single_node())

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)


# The same loader on libyaml's parser and composer (C; several times faster; the constructor is the same
# Python code). libyaml refuses nesting past 1,000 levels itself, so its recursive composer cannot
# exhaust the stack; MAX_YAML_DEPTH is then checked on the composed nodes as on the pure-Python path.
_CLoader: type[yaml.SafeLoader] | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CLoaderImpl(yaml.CSafeLoader):
        """``_Loader``'s guarantees on libyaml."""

        def get_single_node(self) -> yaml.Node | None:
            return _bounded(super().get_single_node())

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            _refuse_duplicate_keys(node)
            return super().construct_mapping(node, deep=deep)

    _CLoader = _CLoaderImpl  # type: ignore[assignment]


# A copy, so PyYAML's own SafeLoader keeps parsing timestamps for everyone else.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
if _CLoader is not None:
    _CLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

# What deployment files are parsed with (tests set it to ``_Loader`` to compare the two paths).
_LOADER: type[yaml.SafeLoader] = _CLoader or _Loader
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Problem(name, "(yaml)", f"valid YAML ({exc.problem})")
    detail = f"{exc.problem}, column {mark.column + 1}"
    # The parser notices a missing ']' or quote lines later; the line where it opened is the useful hint.
    if exc.context and exc.context_mark and exc.context_mark.line != mark.line:
        detail += f"; {exc.context} started on line {exc.context_mark.line + 1}"
    return Problem(name, f"line {mark.line + 1}", f"valid YAML ({detail})")


def _read_bytes(path: Path, name: str) -> tuple[bytes | None, list[Problem]]:
    """A deployment file's bytes, refused unread when it is larger than MAX_REGISTRY_FILE_BYTES."""
    too_big = Problem(name, "(file)", f"a deployment file of at most {MAX_REGISTRY_FILE_BYTES:,} bytes")
    try:
        if path.stat().st_size > MAX_REGISTRY_FILE_BYTES:
            return None, [too_big]
        with path.open("rb") as fh:
            data = fh.read(MAX_REGISTRY_FILE_BYTES + 1)  # never more, should it grow after the stat
    except OSError as exc:
        return None, [Problem(name, "(file)", f"a readable UTF-8 text file ({exc})")]
    return (None, [too_big]) if len(data) > MAX_REGISTRY_FILE_BYTES else (data, [])


def _parse_yaml(data: bytes, name: str) -> tuple[Any, list[Problem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, "(file)", f"a readable UTF-8 text file ({exc})")]
    if "\r" in text:  # as Path.read_text reads it (universal newlines), so lines and values are the same
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return yaml.load(text, Loader=_LOADER), []
    except yaml.MarkedYAMLError as exc:
        if exc.problem and _LIBYAML_TOO_DEEP in exc.problem:
            return None, [_too_deep(name)]
        return None, [_yaml_problem(exc, name)]
    except YamlBoundsError as exc:
        return None, [Problem(name, "(yaml)", f"YAML within bounds, not {exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, "(yaml)", f"valid YAML ({exc})")]
    except RecursionError:  # the pure-Python composer recurses before any bound can be checked
        return None, [_too_deep(name)]


def _too_deep(name: str) -> Problem:
    return Problem(name, "(yaml)", f"YAML within bounds, not nesting deeper than {MAX_YAML_DEPTH} levels")


def _read_yaml(path: Path, name: str) -> tuple[Any, list[Problem]]:
    data, problems = _read_bytes(path, name)
    return (None, problems) if data is None else _parse_yaml(data, name)


# ---------------------------------------------------------------------------------------------------
# Building typed records from a checked document


def _rules(items: list[dict[str, Any]]) -> tuple[RetentionRule, ...]:
    return tuple(
        RetentionRule(r["data_class"], r["period"], r.get("trigger", DEFAULT_TRIGGER), r.get("stated")) for r in items
    )


def _grants(items: list[dict[str, Any]]) -> tuple[AccessGrant, ...]:
    return tuple(
        AccessGrant(
            g.get("organisation"), tuple(g.get("roles", ())), g.get("purpose"), g.get("organisations"),
            g.get("description"), g.get("stated"),
        )
        for g in items
    )


def _devices(doc: Mapping[str, Any]) -> DeviceCount | None:
    devices = doc.get("devices")
    return DeviceCount(devices["count"], devices.get("description")) if devices else None


def _data_sources(doc: Mapping[str, Any]) -> tuple[DataSource, ...]:
    return tuple(DataSource(s.get("name"), s.get("count"), s.get("description")) for s in doc.get("data_sources", ()))


def _policy_versions(doc: Mapping[str, Any]) -> tuple[PolicyVersion, ...]:
    history = [
        PolicyVersion(
            h["version"],
            date.fromisoformat(h["effective_from"]),
            _rules(h["retention"]),
            _grants(h["access"]),
            h.get("note", ""),
        )
        for h in doc.get("policy_history", [])
    ]
    current = PolicyVersion(
        doc["policy_version"],
        date.fromisoformat(doc["policy_effective_from"]),
        _rules(doc["retention"]),
        _grants(doc["access"]["grants"]),
        doc.get("policy_note", ""),
    )
    return tuple(sorted([*history, current], key=lambda p: p.effective_from))


def _centre(location: Mapping[str, Any]) -> tuple[float | None, float | None]:
    if "lat" in location:
        return float(location["lat"]), float(location["lon"])
    box = location.get("bbox")
    if box:
        return (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    return None, None


def _bbox(location: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    box = location.get("bbox")
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box else None


def _place(location: Mapping[str, Any]) -> Place:
    lat, lon = _centre(location)
    return Place(lat, lon, english_text(location.get("area")), _bbox(location), location["mobility"],
                 english_text(location.get("address")))


def _translations(doc: Mapping[str, Any], place: Mapping[str, Any]) -> Mapping[str, Mapping[str, str]]:
    """The translated registry texts of a record (model.TRANSLATABLE), area and address of ``place``
    (where the deployment is now); fields given as one text have none."""
    values = {"name": doc.get("name"), "description": doc.get("description"), "legal_basis": doc.get("legal_basis"),
              "storage_location": doc["storage"].get("location"), "area": place.get("area"),
              "address": place.get("address")}
    return MappingProxyType({attr: text_translations(v) for attr, v in values.items() if isinstance(v, Mapping)})


def _relocations(lifecycle: Mapping[str, Any]) -> tuple[Relocation, ...]:
    return tuple(
        Relocation(date.fromisoformat(m["moved_on"]), _place(m["location"]), m.get("note"))
        for m in lifecycle.get("relocations", ())
    )


def from_checked(doc: dict[str, Any], source_file: str, timezone: str) -> Deployment:
    """The typed record of a document ``check_deployment`` found no problem in (e.g. one read back
    from the log); ``source_file`` labels it, ``timezone`` is the zone its dates are in."""
    return _build(doc, source_file, timezone)


def _build(doc: dict[str, Any], source_file: str, timezone: str) -> Deployment:
    lifecycle, accountable = doc["lifecycle"], doc["accountable"]
    relocations = _relocations(lifecycle)
    first = _place(doc["location"])
    now = relocations[-1].place if relocations else first  # the record's fields say where it is now
    now_doc = lifecycle["relocations"][-1]["location"] if relocations else doc["location"]
    decommissioned = lifecycle.get("decommissioned")
    return Deployment(
        id=doc["id"],
        name=english_text(doc["name"]),
        kind=doc["kind"],
        vendor=doc["vendor"],
        description=english_text(doc.get("description")),
        accountable_organisation=accountable["organisation"],
        accountable_role=accountable.get("role"),
        partners=tuple(accountable.get("partners", ())),
        accountable_elements=tuple(accountable["dtpr"]),
        purposes=tuple(doc["purposes"]),
        technologies=tuple(doc["technologies"]),
        data_types=tuple(doc["data_types"]),
        processing=tuple(doc.get("processing", ())),
        access_elements=tuple(doc["access"]["dtpr"]),
        storage_elements=tuple(doc["storage"]["dtpr"]),
        storage_location=english_text(doc["storage"]["location"]),
        data_classes=tuple(c["slug"] for c in doc["data_classes"]),
        data_class_elements=MappingProxyType({c["slug"]: c["dtpr"] for c in doc["data_classes"]}),
        data_class_descriptions=MappingProxyType(
            {c["slug"]: c["description"] for c in doc["data_classes"] if "description" in c}
        ),
        commissioned=date.fromisoformat(lifecycle["commissioned"]),
        decommissioned=date.fromisoformat(decommissioned) if decommissioned else None,
        lat=now.lat,
        lon=now.lon,
        area=now.area,
        bbox=now.bbox,
        mobility=now.mobility,
        address=now.address,
        legal_basis=english_text(doc["legal_basis"]),
        policy_links=tuple(doc["policy_links"]),
        feedback=MappingProxyType(dict(doc["feedback"])),
        policy_versions=_policy_versions(doc),
        provenance=MappingProxyType(dict(doc["provenance"])) if "provenance" in doc else None,
        timezone=timezone,
        raw=MappingProxyType(doc),
        source_file=source_file,
        devices=_devices(doc),
        data_sources=_data_sources(doc),
        public_search_audit=doc.get("public_search_audit"),
        field_provenance=MappingProxyType(dict(doc.get("provenance", {}).get("fields", {}))),
        relocations=relocations,
        translations=_translations(doc, now_doc),
        commissioned_at=first if relocations else None,
    )


# ---------------------------------------------------------------------------------------------------
# Loading a registry


def _registry_files(root: Path) -> tuple[list[Path], list[Problem]]:
    if root.is_file():
        return [root], []
    if not root.is_dir():
        return [], [Problem(str(root), "(registry)", "a folder of deployment YAML files (it does not exist)")]
    with os.scandir(root) as entries:  # the directory's own file types: no stat per file
        names = [e.name for e in entries if e.is_file() and os.path.splitext(e.name)[1] in REGISTRY_SUFFIXES]
    files = sorted(root / name for name in names)
    if not files:
        return [], [Problem(str(root), "(registry)", "at least one deployment file (<id>.yaml)")]
    return files, []


def _check_file(data: bytes, path: Path) -> tuple[Any, list[Problem]]:
    """Parse and check one file's bytes: its document, or its problems (with their lines)."""
    name = str(path)
    doc, problems = _parse_yaml(data, name)
    if problems:
        return None, problems
    problems = check_deployment(doc, name, path.stem)
    return (None, with_lines(problems, path)) if problems else (doc, [])


def _check_files(jobs: list[tuple[bytes, Path]]) -> list[tuple[Any, list[Problem]]]:
    """A pool worker's share: ``_check_file`` for each, without the cyclic collector (see ``_no_gc``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [_check_file(data, path) for data, path in jobs]
    finally:
        if enabled:
            gc.enable()


# Checking a file costs ~20 ms of CPU (YAML, schema, privacy, size), so a registry with many files not in
# the cache is checked on every core. Below this many the pool's start (each worker imports the checks,
# about a second) costs more than it saves; a daemon process (a pool worker itself) may not start one.
POOL_MIN_FILES = 200
_POOL_CHUNK = 25


def _exit_with_parent(parent: int) -> None:
    """A pool worker's initializer: exit once the process that started it is gone (a command killed by
    SIGKILL cannot shut its pool down; its workers would check files for nobody). As flow's staging
    workers do; not imported from there, which would make the registry depend on the pipeline."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _pool_workers(uncached: int, workers: int) -> int:
    if uncached < POOL_MIN_FILES or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(workers, uncached // _POOL_CHUNK))


def _check_all(jobs: list[tuple[bytes, Path]], workers: int) -> list[tuple[Any, list[Problem]]]:
    """``_check_file`` for every job, in order: in ``workers`` processes when there are many, else here."""
    workers = _pool_workers(len(jobs), workers)
    if workers > 1:
        chunks = [jobs[i:i + _POOL_CHUNK] for i in range(0, len(jobs), _POOL_CHUNK)]
        try:
            # spawn, not fork: a forked child would inherit the parent's threads' locks (DuckDB, Arrow pools).
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
            ) as pool:
                return [result for part in pool.map(_check_files, chunks) for result in part]
        except (OSError, BrokenProcessPool, PicklingError):
            pass  # no pool here (no /dev/shm, a sandbox, a worker killed): check the files in this process
    return _check_files(jobs)


def _load_files(
    files: list[Path], timezone: str, store: DocumentCache | None, hashes: list[tuple[str, str]], workers: int
) -> list[tuple[Deployment | None, list[Problem]]]:
    """Each file's record or problems, in order; the hash of the bytes each was built from goes to ``hashes``."""
    out: list[tuple[Deployment | None, list[Problem]]] = []
    docs: list[Any] = []
    jobs: list[tuple[bytes, Path]] = []
    keys: list[str] = []
    for path in files:
        data, problems = _read_bytes(path, str(path))
        if data is None:
            out.append((None, problems))
            docs.append(None)
            continue
        digest = hashlib.sha256(data).hexdigest()
        hashes.append((str(path), digest))
        key = entry_key(path.stem, digest) if store else ""
        doc = store.get(key) if store else None
        if doc is None:
            jobs.append((data, path))
            keys.append(key)
        out.append((None, []))
        docs.append(doc)
    checked = iter(zip(_check_all(jobs, workers), keys, strict=True))
    for i, path in enumerate(files):
        if out[i][1]:
            continue  # unreadable or too large
        doc = docs[i]
        if doc is None:
            (doc, problems), key = next(checked)
            if problems:
                out[i] = (None, problems)
                continue
            if store:
                store.put(key, doc)
        out[i] = (_build(doc, str(path), timezone), [])
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    # Loading makes millions of objects and frees almost none: the cyclic collector would walk the
    # growing heap again and again (half the time of a big registry) for nothing, and once more at its
    # next full collection afterwards. The records live as long as the process, so they are frozen out
    # of its reach (gc.freeze: later collections skip every object alive now).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


_Fingerprint = tuple[str, str, tuple[tuple[str, str], ...]]  # folder, timezone, (file, SHA-256 of its bytes)...


def _load(
    path: str | Path, timezone: str, cache_dir: str | Path | None = None, workers: int = 1
) -> tuple[dict[str, Deployment], list[Problem], _Fingerprint]:
    ZoneInfo(timezone)  # an unknown zone is a configuration error, not a registry problem
    files, problems = _registry_files(Path(path))
    store = DocumentCache(cache_dir) if cache_dir is not None else None
    deployments: dict[str, Deployment] = {}
    hashes: list[tuple[str, str]] = []
    with _no_gc():
        loaded = _load_files(files, timezone, store, hashes, workers)
        for file, (deployment, file_problems) in zip(files, loaded, strict=True):
            problems += file_problems
            if deployment is None:
                continue
            if deployment.id in deployments:
                other = deployments[deployment.id].source_file
                problems.append(
                    Problem(str(file), "id", f"an id used by one file only ({deployment.id!r} is also {other})")
                )
                continue
            deployments[deployment.id] = deployment
    if store:
        store.prune()
    return deployments, problems, (str(path), timezone, tuple(hashes))


def validate_registry(path: str | Path, *, cache_dir: str | Path | None = None, workers: int = 1) -> list[Problem]:
    """Every problem in the registry folder (or single file) at ``path``; empty when it is valid."""
    return _load(path, DEFAULT_TIMEZONE, cache_dir, workers)[1]


# The last registry this process loaded, with what it was loaded from: (folder, timezone, the name and
# bytes' hash of every file) -> Registry. A command that asks for the registry again (audit, portal and
# publish each load it) gets the same records when the files still hash the same, for the price of
# reading them; records are immutable, so sharing them is safe.
_last: tuple[_Fingerprint, Registry] | None = None


def _fingerprint(path: str | Path, timezone: str) -> _Fingerprint | None:
    files, problems = _registry_files(Path(path))
    if problems:
        return None
    hashes = []
    for file in files:
        data, problems = _read_bytes(file, str(file))
        if data is None:
            return None
        hashes.append((str(file), hashlib.sha256(data).hexdigest()))
    return str(path), timezone, tuple(hashes)


def load_registry(
    path: str | Path, *, timezone: str = DEFAULT_TIMEZONE, cache_dir: str | Path | None = None, workers: int = 1
) -> Registry:
    """Load and check a registry folder (or a single deployment file); RegistryError lists all problems.

    ``timezone`` is the zone the registry's calendar dates are in (``Settings.timezone``).
    ``cache_dir`` holds checked documents by content hash (``pipelines.registry.cache``; the home's is
    ``registry_cache_dir(settings)``), so files unchanged since they were last checked are not parsed.
    A registry this process loaded last is returned again while its files still hash the same.
    ``workers`` > 1 checks files the cache does not hold in that many processes when there are at least
    ``POOL_MIN_FILES`` of them (spawned: the calling program's main module must be import-safe, as for
    ``sensorlog run``'s staging pool; ``home_registry`` passes one per core).
    """
    global _last
    ZoneInfo(timezone)
    if _last is not None and _last[0][:2] == (str(path), timezone) and _fingerprint(path, timezone) == _last[0]:
        return _last[1]
    deployments, problems, fingerprint = _load(path, timezone, cache_dir, workers)
    if problems:
        raise RegistryError(problems)
    registry = Registry(deployments)
    _last = (fingerprint, registry)
    return registry


def home_registry(settings: Settings) -> Registry:
    """The configured registry in the configured time zone, through the home's cache: what every
    command loads (``load_registry``; a second call in one process returns the same records)."""
    return load_registry(
        settings.registry, timezone=settings.timezone, cache_dir=registry_cache_dir(settings),
        workers=registry_workers(),
    )


def registry_workers() -> int:
    """How many processes a command checks uncached files in: ``SENSORLOG_WORKERS``, else one per core."""
    from pipelines.config import workers

    return workers() or os.cpu_count() or 1


def registry_warnings(registry: Registry, city_bbox: BBox | None = None) -> list[Problem]:
    """Every warning of a loaded registry (``checks.deployment_warnings``), in id order, each with the
    line of its field in the deployment's file; ``city_bbox`` is ``config.city_bbox()``."""
    out: list[Problem] = []
    for d in registry:
        found = deployment_warnings(dict(d.raw), d.source_file, city_bbox)
        out += with_lines(found, d.source_file) if found and Path(d.source_file).is_file() else found
    return out
