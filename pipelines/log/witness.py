"""A transparency-log witness (c2sp.org/tlog-witness): checks that each log only grows, then cosigns.

A witness keeps, per log origin, the size and root hash of the last checkpoint it cosigned. It cosigns
a new checkpoint only when the log's key signed it and a consistency proof shows that it extends that
recorded tree, so two cosigned checkpoints of one log can never contradict each other (no fork, no
rollback) unless the witness itself misbehaves.

State lives in one directory the operator names::

    witness.key               the cosigner key, PRIVATE+KEY+<name>+<id>+base64(0x04 || seed), mode 0600
    witness.vkey              its verifier key, <name>+<id>+base64(0x04 || public key)
    logs.json                 the logs it accepts: {"<origin>": ["<log vkey>", ...]}
    state/<sha256(origin)>.json  the last cosigned checkpoint of that log: origin, size, root hash,
                              timestamp and the checkpoint with the log's signatures and the cosignature
    evidence/<sha256(origin)>/<sha256(request)>.txt
                              validly signed checkpoints it refused as inconsistent (proof of a fork)
    .lock                     serialises requests, across threads and processes

``Witness.add_checkpoint`` runs the spec's checks in order and raises a ``Refusal`` carrying the HTTP
status the spec assigns (400, 403, 404, 409 with the recorded size, 422). The check of the old size
against the recorded state and the write of the new state happen under one lock, and the state is
written (atomically, fsynced) before the cosignature is returned. ``make_server`` serves it over
HTTP: ``POST /add-checkpoint`` and the monitoring ``GET /<sha256(origin) hex>/checkpoint``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipelines.atomicfile import write_atomic
from pipelines.errors import USAGE, SensorlogError
from pipelines.locks import exclusive
from pipelines.tlog import checkpoint, merkle, note
from pipelines.tlog.cosignature import Cosigner
from pipelines.tlog.witness_protocol import (
    PATH,
    SIZE_CONTENT_TYPE,
    ProtocolError,
    format_size,
    parse_add_checkpoint,
)

KEY = "witness.key"
VKEY = "witness.vkey"
LOGS = "logs.json"
STATE = "state"
EVIDENCE = "evidence"
LOCK = ".lock"
MAX_BODY = 1 << 20  # a checkpoint with 100 post-quantum signatures fits; nothing legitimate is larger


class WitnessError(SensorlogError, RuntimeError):
    """The witness's own state is missing or unusable (not a refusal of a request)."""

    exit_code = USAGE


class Refusal(SensorlogError):
    """A request the witness refuses; ``status`` is the HTTP status the spec assigns."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        return f"refused (HTTP {self.status}): {self.message}"


class BadRequest(Refusal):
    status = 400


class Forbidden(Refusal):
    status = 403


class UnknownLog(Refusal):
    status = 404


class Conflict(Refusal):
    """The request's old size is not the size this witness last cosigned (``recorded_size``)."""

    status = 409

    def __init__(self, message: str, recorded_size: int) -> None:
        super().__init__(message)
        self.recorded_size = recorded_size

    def diagnostics(self) -> str:
        return f"refused (HTTP {self.status}, recorded size {self.recorded_size}): {self.message}"


class Inconsistent(Refusal):
    status = 422


@dataclass(frozen=True)
class LogState:
    """The last checkpoint the witness cosigned for one log."""

    origin: str
    size: int
    root_hash: bytes
    timestamp: int
    checkpoint: str  # the checkpoint text, the log's signature lines, then the witness's cosignature

    def to_json(self) -> dict:
        return {"origin": self.origin, "size": self.size, "root_hash": base64.b64encode(self.root_hash).decode(),
                "timestamp": self.timestamp, "checkpoint": self.checkpoint}

    @classmethod
    def from_json(cls, obj: dict) -> LogState:
        return cls(str(obj["origin"]), int(obj["size"]), base64.b64decode(obj["root_hash"]),
                   int(obj["timestamp"]), str(obj["checkpoint"]))


def origin_hash(origin: str) -> str:
    """SHA-256 of the origin, lowercase hex: the file name of its state and its monitoring path."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


@contextmanager
def _file_lock(directory: Path) -> Iterator[None]:
    with exclusive(directory / LOCK):
        yield


def _read_logs(directory: Path) -> dict[str, list[str]]:
    try:
        obj = json.loads((directory / LOGS).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WitnessError(f"{directory / LOGS} is unreadable: {exc}") from exc
    if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
        raise WitnessError(f"{directory / LOGS} must map each origin to a list of log vkeys")
    return {str(k): [str(x) for x in v] for k, v in obj.items()}


def init_witness(directory: str | Path, name: str) -> Witness:
    """Create a witness: a fresh cosigner key named ``name`` (mode 0600), its vkey and an empty log list.

    Refuses to replace an existing key: a witness that changed key would lose what it vouched for.
    """
    root = Path(directory)
    if (root / KEY).exists():
        raise WitnessError(f"{root / KEY} already exists: this directory already holds a witness")
    cosigner = Cosigner.generate(name)  # checks the name
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # create-if-absent: two concurrent inits keep one key
        write_atomic(root / KEY, (cosigner.skey() + "\n").encode(), 0o600, exclusive=True)
    except FileExistsError:
        raise WitnessError(f"{root / KEY} already exists: this directory already holds a witness") from None
    write_atomic(root / VKEY, (cosigner.vkey() + "\n").encode())
    with _file_lock(root):
        if not (root / LOGS).exists():
            write_atomic(root / LOGS, b"{}\n")
    return Witness(root)


def add_log(directory: str | Path, vkey: str, origin: str | None = None) -> str:
    """Accept checkpoints of a log signed by ``vkey``; the origin defaults to the key's name. Returns it."""
    root = Path(directory)
    if not (root / KEY).exists():
        raise WitnessError(f"{root} is not a witness directory (no {KEY}): run 'sensorlog witness init' first")
    verifier = note.as_verifier(vkey.strip())  # raises note.MalformedKey
    origin = verifier.name if origin is None else origin
    if not origin or "\n" in origin:
        raise ValueError("a log origin is one non-empty line")
    with _file_lock(root):
        logs = _read_logs(root)
        keys = logs.setdefault(origin, [])
        if verifier.vkey() not in keys:
            keys.append(verifier.vkey())
            write_atomic(root / LOGS, (json.dumps(logs, indent=2, sort_keys=True) + "\n").encode())
    return origin


class Witness:
    """A witness over the state in ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            skey = (self.directory / KEY).read_text()
        except FileNotFoundError:
            raise WitnessError(
                f"{self.directory} is not a witness directory (no {KEY}): run 'sensorlog witness init' first"
            ) from None
        self.cosigner = Cosigner.from_skey(skey)
        self.name = self.cosigner.name
        self.vkey = self.cosigner.vkey()
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, _file_lock(self.directory):
            yield

    def logs(self) -> dict[str, list[str]]:
        """The accepted logs: origin → log vkeys (re-read each time, so ``add_log`` needs no restart)."""
        return _read_logs(self.directory)

    def _state_path(self, origin: str) -> Path:
        return self.directory / STATE / f"{origin_hash(origin)}.json"

    def state(self, origin: str) -> LogState | None:
        """The last checkpoint this witness cosigned for ``origin``, or None if it never did."""
        path = self._state_path(origin)
        try:
            obj = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise WitnessError(f"{path} is unreadable: {exc}") from exc
        state = LogState.from_json(obj)
        if state.origin != origin:
            raise WitnessError(f"{path} holds the state of {state.origin!r}, not {origin!r}")
        return state

    def cosigned_checkpoint(self, origin_sha256: str) -> str | None:
        """The last cosigned checkpoint (log signatures and cosignature included) by hex origin hash."""
        if len(origin_sha256) != 64 or any(c not in "0123456789abcdef" for c in origin_sha256):
            return None
        path = self.directory / STATE / f"{origin_sha256}.json"
        try:
            return str(json.loads(path.read_text())["checkpoint"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def _keep_evidence(self, origin: str, body: bytes) -> None:
        """A validly signed checkpoint that contradicts what was cosigned: the log misbehaved; keep it."""
        path = self.directory / EVIDENCE / origin_hash(origin) / f"{hashlib.sha256(body).hexdigest()}.txt"
        try:
            write_atomic(path, body)
        except OSError as exc:  # evidence is a MAY: never let it turn a refusal into an error
            print(f"witness: could not keep evidence at {path}: {exc}", file=sys.stderr)

    def add_checkpoint(self, request_body: bytes, *, timestamp: int | None = None) -> str:
        """Check an add-checkpoint request body and cosign: returns the cosignature line(s).

        Raises a ``Refusal`` subclass (``BadRequest`` 400, ``Forbidden`` 403, ``UnknownLog`` 404,
        ``Conflict`` 409, ``Inconsistent`` 422) with a message saying why; nothing is recorded then.
        """
        try:
            request = parse_add_checkpoint(request_body)
        except ProtocolError as exc:
            raise BadRequest(f"malformed add-checkpoint request: {exc}") from None
        try:
            text, _ = note.parse_note(request.checkpoint_note)
            cp = checkpoint.parse(text)
        except (note.NoteError, checkpoint.CheckpointError) as exc:
            raise BadRequest(f"the submitted checkpoint is malformed: {exc}") from None
        origin, old, size = cp.origin, request.old_size, cp.size
        with self._locked():
            keys = self.logs().get(origin)
            if not keys:
                raise UnknownLog(f"this witness does not know the log {origin!r}: it cosigns only logs it was given")
            try:
                _, log_signatures = note.open(request.checkpoint_note, keys)
            except note.BadSignature as exc:
                why = f"the checkpoint of {origin!r} has an invalid signature by its log key: {exc}"
                raise Forbidden(why) from None
            except note.UnverifiedNote:
                raise Forbidden(
                    f"the checkpoint is not signed by a key this witness trusts for {origin!r}"
                ) from None
            except note.NoteError as exc:
                raise BadRequest(f"the submitted checkpoint is malformed: {exc}") from None
            state = self.state(origin)
            recorded = state.size if state is not None else 0
            if old > size:
                why = f"old size {old} is larger than the checkpoint's size {size}"
                if recorded > size:
                    why += (f"; this witness already cosigned size {recorded} of {origin!r}:"
                            " refusing a smaller checkpoint (rollback)")
                raise BadRequest(why)
            if old != recorded:
                why = (f"old size {old} is not the size this witness last cosigned for {origin!r}"
                       f" ({recorded}); retry from {recorded}")
                if size < recorded:
                    why = (f"the checkpoint's size {size} is smaller than the size {recorded} this witness"
                           f" already cosigned for {origin!r}: refusing a rollback")
                raise Conflict(why, recorded)
            if size == 0 and cp.root_hash != merkle.EMPTY_ROOT:
                raise Inconsistent("a checkpoint of size 0 must carry the empty tree's root hash")
            if old == 0:
                if request.proof:
                    raise Inconsistent("old size 0 needs no consistency proof, but the request carries one")
            elif state is None:  # unreachable: old == recorded > 0 implies a recorded state
                raise WitnessError(f"no recorded state for {origin!r} at size {old}")
            elif old == size:
                if cp.root_hash != state.root_hash:
                    self._keep_evidence(origin, request_body)
                    raise Inconsistent(
                        f"fork: this witness cosigned size {size} of {origin!r} with root {_b64(state.root_hash)},"
                        f" and this checkpoint has the same size with root {_b64(cp.root_hash)}"
                    )
                if request.proof:
                    raise Inconsistent("old size equals the checkpoint's size: the consistency proof must be empty")
            elif not merkle.verify_consistency(old, size, state.root_hash, cp.root_hash, request.proof):
                self._keep_evidence(origin, request_body)
                raise Inconsistent(
                    f"the consistency proof does not show that size {size} (root {_b64(cp.root_hash)}) extends"
                    f" the size {old} (root {_b64(state.root_hash)}) this witness cosigned for {origin!r}"
                )
            when = int(time.time()) if timestamp is None else timestamp
            signature = self.cosigner.signature(text, when)
            cosigned = text + "\n" + "".join(s.line() for s in log_signatures) + signature.line()
            new = LogState(origin, size, cp.root_hash, when, cosigned)
            write_atomic(self._state_path(origin), (json.dumps(new.to_json(), indent=2) + "\n").encode())
            return signature.line()


# -- HTTP ----------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends; every response has a length
    server_version = "sensorlog-witness"
    server: WitnessServer

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        self.log_message("refused (%d): %s", status, message)
        self._send(status, (message + "\n").encode("utf-8"))

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != PATH:
            self._refuse(404, f"no such endpoint: POST {self.path}; submissions go to POST {PATH}")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self.close_connection = True
            self._refuse(411, "the request needs a Content-Length")
            return
        length = int(length_header)
        if length > MAX_BODY:
            self.close_connection = True
            self._refuse(413, f"the request body is {length} bytes; at most {MAX_BODY}")
            return
        body = self.rfile.read(length)
        try:
            lines = self.server.witness.add_checkpoint(body)
        except Conflict as conflict:
            self.log_message("conflict (409): %s", conflict.message)
            self._send(409, format_size(conflict.recorded_size), SIZE_CONTENT_TYPE)
            return
        except Refusal as refusal:
            self._refuse(refusal.status, refusal.message)
            return
        except Exception as exc:  # never let one request take the server down
            self._refuse(500, f"internal error: {type(exc).__name__}: {exc}")
            return
        self._send(200, lines.encode("utf-8"))

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[1] == "checkpoint":
            cosigned = self.server.witness.cosigned_checkpoint(parts[0])
            if cosigned is not None:
                self._send(200, cosigned.encode("utf-8"))
                return
            self._refuse(404, "this witness has not cosigned a checkpoint for that origin hash")
            return
        if self.command == "GET" and self.path.split("?", 1)[0] == PATH:
            self._refuse(405, f"{PATH} takes POST")
            return
        self._refuse(404, f"no such endpoint: {self.path}")

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        if self.server.quiet:
            return
        sys.stderr.write(f"witness {self.address_string()} {format % args}\n")


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, witness: Witness, address: tuple[str, int], *, quiet: bool = False) -> None:
        self.witness = witness
        self.quiet = quiet
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """The submission prefix (POST <url>/add-checkpoint)."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = False) -> WitnessServer:
    """An HTTP server for ``witness`` bound to ``host:port`` (0: any free port); call serve_forever()."""
    return WitnessServer(witness, (host, port), quiet=quiet)
