"""The log operator's side of c2sp.org/tlog-witness: submit a checkpoint to a witness, get its cosignature.

``request_cosignature(url, checkpoint_note, proof)`` POSTs ``<url>/add-checkpoint`` with the old size
the caller believes the witness has (0 by default), a consistency proof from it (``proof(m, n)``, e.g.
``writer.consistency_proof``) and the signed checkpoint. On 409 Conflict the witness says which size
it last cosigned; the client retries once from that size. It returns the response's signature lines
unverified: check them with the witness's vkey (``cosignature.verify_response``).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable

from pipelines.errors import SensorlogError
from pipelines.tlog import checkpoint, note
from pipelines.tlog.witness_protocol import PATH, SIZE_CONTENT_TYPE, ProtocolError, format_add_checkpoint, parse_size

ProofFn = Callable[[int, int], list[bytes]]
"""``proof(m, n)``: the RFC 9162 consistency proof from tree size m to n (0 < m < n)."""

USER_AGENT = "sensorlog-witness-client"
MAX_RESPONSE = 1 << 20


class WitnessClientError(SensorlogError, RuntimeError):
    """No cosignature was obtained; the message says why. ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WitnessUnavailable(WitnessClientError):
    """The witness could not be reached (connection refused, timeout, ...)."""


class WitnessRefused(WitnessClientError):
    """The witness answered with a refusal (or a conflict the client cannot resolve)."""


def submission_url(url: str) -> str:
    """``<submission prefix>/add-checkpoint``."""
    return url.rstrip("/") + PATH


def _post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        submission_url(url), data=body, method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only, below)
            return response.status, response.headers.get("Content-Type", ""), response.read(MAX_RESPONSE)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get("Content-Type", ""), error.read(MAX_RESPONSE)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # OSError: timeouts, resets
        reason = getattr(exc, "reason", exc)
        raise WitnessUnavailable(f"witness at {url} is unreachable: {reason}") from None


def _message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text[:500] or "(no message)"


def request_cosignature(
    url: str, checkpoint_note: str, proof: ProofFn, *, old_size: int = 0, timeout: float = 30.0
) -> str:
    """Ask the witness at ``url`` (its submission prefix) to cosign ``checkpoint_note``; its signature lines.

    ``old_size`` is the size the witness is believed to have cosigned last (0: unknown or never); a
    wrong guess costs one 409 round trip. Raises ``WitnessUnavailable`` or ``WitnessRefused``.
    """
    if not url.startswith(("http://", "https://")):
        raise WitnessClientError(f"witness URL {url!r} must start with http:// or https://")
    try:
        text, _ = note.parse_note(checkpoint_note)
        size = checkpoint.parse(text).size
    except (note.NoteError, checkpoint.CheckpointError) as exc:
        raise WitnessClientError(f"not a signed checkpoint: {exc}") from None
    old = old_size if 0 <= old_size <= size else 0
    for attempt in (1, 2):
        try:
            hashes = proof(old, size) if 0 < old < size else []
        except (ValueError, LookupError, OSError, RuntimeError) as exc:  # e.g. the tile store's errors
            raise WitnessClientError(f"cannot build the consistency proof from size {old} to {size}: {exc}") from None
        status, content_type, body = _post(url, format_add_checkpoint(old, hashes, checkpoint_note), timeout)
        if status == 200:
            lines = body.decode("utf-8", "replace")
            if not lines.startswith(note.SIG_PREFIX) or not lines.endswith("\n"):
                raise WitnessRefused(f"witness at {url} answered 200 without signature lines: {_message(body)}", 200)
            return lines
        if status == 409:
            if content_type.split(";")[0].strip() != SIZE_CONTENT_TYPE:
                raise WitnessRefused(
                    f"witness at {url} answered 409 without a {SIZE_CONTENT_TYPE} body: {_message(body)}", 409
                )
            try:
                recorded = parse_size(body)
            except ProtocolError as exc:
                raise WitnessRefused(f"witness at {url} answered 409 with a malformed size: {exc}", 409) from None
            if recorded > size:
                raise WitnessRefused(
                    f"witness at {url} has already cosigned size {recorded}, larger than this checkpoint's"
                    f" size {size}: the log would be rolled back", 409,
                )
            if attempt == 2:
                raise WitnessRefused(
                    f"witness at {url} still reports a conflict (recorded size {recorded}) after a retry"
                    f" from size {old}", 409,
                )
            old = recorded
            continue
        raise WitnessRefused(f"witness at {url} refused the checkpoint (HTTP {status}): {_message(body)}", status)
    raise AssertionError("unreachable")
