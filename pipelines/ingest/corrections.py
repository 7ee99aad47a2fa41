"""Correction files: a landed file that replaces a batch already in the log.

A vendor's bad file cannot be taken back: its rows are leaves of the log. A correction is a new file
landed under ``corrections/<batch id>/`` followed by the path the original would have had
(``corrections/<id>/nodes/2026-06-30.csv`` corrects a file of ``nodes/``, read by the same feed). Its
manifest carries ``supersedes: [<batch id>]``, so the later leaf is what marks the earlier batch
superseded; the superseded rows stay in the log and in the published files, byte for byte, and every
reader that counts what a deployment did (the audit, the portal, ``status``) leaves them out.

The rule is in the path, not in the file, so it works the same for a local landing folder, an S3
prefix, the sweep, an S3 notification and ``sensorlog run``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from pipelines import layout, storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.records import Manifest
from pipelines.schemas import DECLARATIONS_KIND

PREFIX = "corrections"
_BATCH_ID = re.compile(r"^[0-9a-f]{64}$")
# The manifest member a correction's manifest carries (a leaf member, so it is signed with it).
SUPERSEDES = "supersedes"


class CorrectionError(SensorlogError):
    """A file under ``corrections/`` that cannot supersede what its path names."""


def split(rel: str) -> tuple[str, str | None]:
    """``(path the feed selection reads, batch id superseded)`` of a path relative to the landing root:
    ``("nodes/x.csv", "<id>")`` for ``corrections/<id>/nodes/x.csv``, ``(rel, None)`` for any other.
    A path under ``corrections/`` whose next folder is not a batch id raises ``CorrectionError``."""
    head, _, rest = rel.partition("/")
    if head != PREFIX or not rest:
        return rel, None
    batch, _, inner = rest.partition("/")
    if not _BATCH_ID.match(batch) or not inner:
        raise CorrectionError(
            f"{rel}: a correction lies under {PREFIX}/<batch id>/<original path>, where <batch id> is the"
            " 64 lower-case hex digits of the published batch it replaces (see `sensorlog status`)"
        )
    return inner, batch


def superseded_batch(rel: str) -> str | None:
    """The batch a landed file (its path relative to the landing root) supersedes; None for a plain file."""
    return split(rel)[1]


def check_target(settings: Settings, rel: str, batch_id: str) -> str | None:
    """Why the correction at ``rel`` (batch ``batch_id``) cannot supersede what it names, or None when
    it can: the named batch must be a published event batch other than the correction itself."""
    try:
        target = superseded_batch(rel)
    except CorrectionError as err:
        return str(err)
    if target is None:
        return None
    if target == batch_id:
        return f"{rel}: a correction must differ from the batch it replaces (these are the same bytes)"
    path = layout.manifest_file(settings, target)
    if not storage.exists(path):
        return f"{rel}: no published batch {target} to replace"
    manifest = Manifest.from_json(storage.read_bytes(path), path)
    if manifest.kind == DECLARATIONS_KIND:
        return f"{rel}: batch {target} holds registry declarations, not events; change the registry instead"
    return None


def superseded(manifests: Iterable[bytes]) -> set[str]:
    """The batch ids the given manifest texts supersede. A manifest without the member is skipped
    before it is parsed (most are), so reading a year of manifests costs their bytes, not their JSON."""
    out: set[str] = set()
    key = f'"{SUPERSEDES}"'.encode()
    for text in manifests:
        if key in text:
            out.update(Manifest.from_json(text).supersedes or ())
    return out


def superseded_in(settings: Settings) -> set[str]:
    """Every batch a manifest in ``settings.manifests`` supersedes.

    Every reader's session asks (``summary.connect``), and a year of batches is thousands of manifests
    (thousands of GETs on object storage). A manifest never changes once committed, so the answer per
    manifest is kept in the home's local state (``layout.superseded_cache``) and only manifests not seen
    before are read. Without a state folder (an outsider reading a copied site) nothing is written."""
    files = storage.list_files(settings.manifests, (".json",))
    cache_path = Path(layout.superseded_cache(settings))
    known: dict[str, list[str]] = _load_cache(cache_path)
    new = [f for f in files if f.rsplit("/", 1)[-1] not in known]
    for f in new:
        known[f.rsplit("/", 1)[-1]] = sorted(superseded([storage.read_bytes(f)]))
    if new and cache_path.parent.is_dir():
        present = {f.rsplit("/", 1)[-1] for f in files}  # a home restored from less forgets the rest
        doc = {"version": _CACHE_VERSION, "manifests": {k: v for k, v in sorted(known.items()) if k in present}}
        write_atomic(cache_path, json.dumps(doc, separators=(",", ":")).encode())
    return {b for f in files for b in known[f.rsplit("/", 1)[-1]]}


_CACHE_VERSION = 1


def _load_cache(path: Path) -> dict[str, list[str]]:
    """Manifest file name -> the batches it supersedes; empty when absent, unreadable or another version
    (the cache is only ever a shortcut: a bad one costs a re-read, never a wrong answer)."""
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") != _CACHE_VERSION:
            return {}
        return {str(k): [str(b) for b in v] for k, v in doc["manifests"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
