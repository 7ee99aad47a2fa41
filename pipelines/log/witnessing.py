"""The publisher collects witness cosignatures on the log's latest checkpoint (``sensorlog cosign``).

Witnesses are configured in the file ``settings.witnesses`` (``SENSORLOG_WITNESSES``, default
``<home>/witnesses.txt``), one per line::

    # <witness vkey (signature type 0x04, c2sp.org/tlog-cosignature)> <submission URL>
    witness.example/w1+1a2b3c4d+BM3...= https://witness.example/w1

Blank lines and lines starting with ``#`` are ignored. For each witness, ``collect_cosignatures``
submits the latest checkpoint (``log/checkpoint``, the log's own signature only) with a consistency
proof from the size that witness last cosigned (remembered in ``<state>/witnesses.json``; a wrong or
missing guess costs one 409 round trip), verifies the returned line with that witness's vkey, then
rewrites ``log/checkpoint`` atomically, under the log's lock, as the checkpoint text, the log's
signature line(s), then one cosignature line per witness that cosigned it (earlier valid
cosignatures on the same checkpoint are kept for witnesses that did not answer this time). If the log
signed a newer checkpoint meanwhile, nothing is written: the next collection cosigns that one.

A witness that is down, refuses, or answers with a line that does not verify is reported by name with
its message and does not stop the others. Readers of ``log/checkpoint`` verify it with the log key and
ignore the cosignatures (signed-note: unknown keys are ignored); ``cosignature.verify_cosignatures``
checks them against witness keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipelines import storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import USAGE, SensorlogError
from pipelines.locks import exclusive
from pipelines.log import writer
from pipelines.log.witness_client import WitnessClientError, request_cosignature
from pipelines.tlog import cosignature, note
from pipelines.tlog.checkpoint import CheckpointError, open_checkpoint
from pipelines.tlog.layout import CHECKPOINT, VKEY

REMEMBERED = "witnesses.json"  # under settings.state: {witness vkey: size it last cosigned}


class WitnessConfigError(SensorlogError, ValueError):
    """The witnesses file is malformed (the message names the file and line)."""

    exit_code = USAGE


@dataclass(frozen=True)
class WitnessConfig:
    vkey: str
    url: str

    @property
    def name(self) -> str:
        return self.vkey.split("+", 1)[0]


@dataclass(frozen=True)
class WitnessOutcome:
    witness: str  # the witness's key name
    url: str
    ok: bool
    message: str
    timestamp: int | None = None  # of its cosignature, when ok


@dataclass(frozen=True)
class Result:
    message: str  # one line: what happened overall
    size: int | None = None  # the checkpoint submitted
    outcomes: tuple[WitnessOutcome, ...] = ()
    written: bool = False  # log/checkpoint was rewritten with the cosignatures
    path: str | None = None
    cosignatures: int = 0  # valid cosignature lines now on log/checkpoint

    @property
    def cosigned(self) -> list[str]:
        return [o.witness for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[WitnessOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def to_dict(self) -> dict:
        return {
            "message": self.message, "size": self.size, "written": self.written, "path": self.path,
            "cosignatures": self.cosignatures,
            "witnesses": [
                {"witness": o.witness, "url": o.url, "ok": o.ok, "message": o.message, "timestamp": o.timestamp}
                for o in self.outcomes
            ],
        }


def read_witnesses(path: str) -> list[WitnessConfig]:
    """The configured witnesses; [] when ``path`` is empty or does not exist."""
    if not path or not storage.exists(path):
        return []
    try:
        text = storage.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessConfigError(f"{path}: cannot read the witnesses file: {exc}") from exc
    witnesses: list[WitnessConfig] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise WitnessConfigError(f"{path}:{number}: expected '<witness vkey> <submission URL>', got {line!r}")
        vkey, url = parts
        try:
            verifier = cosignature.cosigner_verifier(vkey)
        except note.NoteError as exc:
            raise WitnessConfigError(f"{path}:{number}: {exc}") from None
        if not url.startswith(("http://", "https://")):
            raise WitnessConfigError(f"{path}:{number}: the submission URL {url!r} must start with http(s)://")
        if verifier.vkey() in seen:
            raise WitnessConfigError(f"{path}:{number}: witness {verifier.name} is listed twice")
        seen.add(verifier.vkey())
        witnesses.append(WitnessConfig(verifier.vkey(), url))
    return witnesses


def _remembered_path(settings: Settings) -> Path:
    return Path(settings.state) / REMEMBERED


def _remembered(settings: Settings) -> dict[str, int]:
    try:
        obj = json.loads(_remembered_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): int(v) for k, v in obj.items()} if isinstance(obj, dict) else {}


def _ask(settings: Settings, witness: WitnessConfig, submitted: str, text: str, old: int, timeout: float
         ) -> tuple[WitnessOutcome, str]:
    """One witness: (outcome, its verified cosignature line(s), '' on failure)."""
    try:
        lines = request_cosignature(
            witness.url, submitted, lambda m, n: writer.consistency_proof(settings, m, n),
            old_size=old, timeout=timeout,
        )
        cosigned = cosignature.verify_response(text, lines, witness.vkey)
    except WitnessClientError as exc:
        return WitnessOutcome(witness.name, witness.url, False, str(exc)), ""
    except note.NoteError as exc:
        return WitnessOutcome(witness.name, witness.url, False, f"its response does not verify: {exc}"), ""
    verifier = cosignature.cosigner_verifier(witness.vkey)
    _, signatures = note.parse_note(text + "\n" + lines)  # parsed fine in verify_response
    own = "".join(sig.line() for sig in signatures if (sig.name, sig.key_id) == (verifier.name, verifier.key_id))
    return WitnessOutcome(witness.name, witness.url, True, "cosigned", cosigned.timestamp), own


def _log_lines(signed: str, vkey: str) -> tuple[str, str]:
    """(checkpoint text, the log's own verified signature lines) of a signed checkpoint."""
    text, signatures = note.open(signed, [vkey])
    return text, "".join(s.line() for s in signatures)


def collect_cosignatures(settings: Settings, *, timeout: float = 30.0) -> Result:
    """Ask every configured witness to cosign the latest checkpoint; add their cosignatures to it."""
    witnesses = read_witnesses(settings.witnesses)
    if not witnesses:
        return Result(f"no witnesses configured ({settings.witnesses or 'SENSORLOG_WITNESSES'} lists none):"
                      " nothing to do")
    directory = Path(settings.log)
    path = directory / CHECKPOINT
    try:
        signed = path.read_text()
    except FileNotFoundError:
        return Result(f"{path} does not exist yet (nothing was published): nothing to cosign", path=str(path))
    vkey = (directory / VKEY).read_text().strip()
    try:
        cp = open_checkpoint(signed, vkey)
        text, log_lines = _log_lines(signed, vkey)
    except (note.NoteError, CheckpointError) as exc:
        raise writer.LedgerError(f"{path} does not verify with the log key {vkey}: {exc}") from exc
    submitted = text + "\n" + log_lines
    remembered = _remembered(settings)

    with ThreadPoolExecutor(max_workers=min(8, len(witnesses))) as pool:
        answers = list(pool.map(
            lambda w: _ask(settings, w, submitted, text, remembered.get(w.vkey, 0), timeout), witnesses
        ))
    outcomes = tuple(outcome for outcome, _ in answers)
    fresh = {w.vkey: lines for w, (outcome, lines) in zip(witnesses, answers, strict=True) if outcome.ok}

    with exclusive(directory / writer.LOCK):  # the publisher appends (and rewrites this file) under it
        current = path.read_text()
        try:
            current_text, current_log_lines = _log_lines(current, vkey)
        except note.NoteError as exc:
            raise writer.LedgerError(f"{path} no longer verifies with the log key: {exc}") from exc
        if current_text != text:
            return Result(
                f"the log signed a newer checkpoint while witnesses were asked; {path} was left as it is"
                " (collect again to cosign the new one)",
                cp.size, outcomes, False, str(path),
            )
        merged = _merge(current, current_text, current_log_lines, witnesses, fresh)
        final = cosignature.verify_cosignatures(merged, [w.vkey for w in witnesses])
        open_checkpoint(merged, vkey)  # the log's signature still verifies: never publish worse
        if merged != current:
            write_atomic(path, merged.encode("utf-8"))
        written = merged != current
    if fresh:
        remembered.update({v: cp.size for v in fresh})
        write_atomic(_remembered_path(settings), (json.dumps(remembered, indent=2, sort_keys=True) + "\n").encode())
    ok = sum(o.ok for o in outcomes)
    return Result(
        f"checkpoint of size {cp.size}: {ok} of {len(witnesses)} witnesses cosigned;"
        f" {len(final)} cosignatures on {path}",
        cp.size, outcomes, written, str(path), len(final),
    )


def _merge(current: str, text: str, log_lines: str, witnesses: Sequence[WitnessConfig], fresh: dict[str, str]) -> str:
    """The checkpoint with the log's lines first, then per configured witness (in file order) its
    fresh cosignature, else its earlier one if that still verifies. Lines by other keys are dropped."""
    _, signatures = note.parse_note(current)
    cosig_lines = []
    for witness in witnesses:
        if witness.vkey in fresh:
            cosig_lines.append(fresh[witness.vkey])
            continue
        verifier = cosignature.cosigner_verifier(witness.vkey)
        for sig in signatures:
            if (sig.name, sig.key_id) == (verifier.name, verifier.key_id) and verifier.verify(text.encode(), sig):
                cosig_lines.append(sig.line())
                break
    return text + "\n" + log_lines + "".join(cosig_lines)
