"""JSON decoding within the limits of ``pipelines.ingest.limits``, reporting what ``json`` would resolve silently.

* Nesting depth is measured on the bytes (strings skipped exactly as a JSON tokenizer skips them)
  before ``json`` (a recursive decoder) sees the text, so a value nested 100,000 deep is a reason,
  not a ``RecursionError``.
* A repeated key in an object (``"records"`` twice) is a problem, where ``json`` keeps the last.
* ``NaN``, ``Infinity`` and numbers too large for a double (``1e999``) are problems: JSON has no
  non-finite numbers and the leaf encoding cannot represent them.
"""

from __future__ import annotations

import json
import math

import numpy as np

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))


def depth_exceeds(data: bytes, limit: int) -> int | None:
    """The offset of the first bracket nested deeper than ``limit`` in JSON text, or None.

    Exact for valid JSON and never lower than what a decoder would reach on invalid JSON (brackets
    after an unterminated string count as inside it, where the decoder stops). Vectorised: quotes
    preceded by an odd run of backslashes are escaped; brackets after an odd number of unescaped
    quotes are inside a string."""
    arr = np.frombuffer(data, np.uint8)
    opens = (arr == _OPEN[0]) | (arr == _OPEN[1])
    if int(np.count_nonzero(opens)) <= limit:
        return None  # even if every bracket nested, it would not be too deep
    closes = (arr == _CLOSE[0]) | (arr == _CLOSE[1])
    quotes = np.flatnonzero(arr == _QUOTE)
    backslashes = np.flatnonzero(arr == _BACKSLASH)
    if len(backslashes) and len(quotes):
        # Length of the backslash run ending just before each quote (0 for most).
        run_start = np.ones(len(backslashes), bool)
        run_start[1:] = backslashes[1:] != backslashes[:-1] + 1
        start_of = backslashes[np.maximum.accumulate(np.where(run_start, np.arange(len(backslashes)), 0))]
        k = np.searchsorted(backslashes, quotes - 1)
        hit = (k < len(backslashes)) & (backslashes[np.minimum(k, len(backslashes) - 1)] == quotes - 1)
        run = np.zeros(len(quotes), np.int64)
        run[hit] = quotes[hit] - start_of[k[hit]]
        quotes = quotes[run % 2 == 0]
    brackets = np.flatnonzero(opens | closes)
    outside = np.searchsorted(quotes, brackets) % 2 == 0
    brackets = brackets[outside]
    steps = np.where(opens[brackets], 1, -1)
    deep = np.flatnonzero(np.cumsum(steps) > limit)
    return int(brackets[deep[0]]) if len(deep) else None


class Decoder:
    """``json`` with hooks that record duplicate keys and non-finite numbers in ``problems``."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._decoder = json.JSONDecoder(
            object_pairs_hook=self._object, parse_constant=self._constant, parse_float=self._float
        )

    def _object(self, pairs: list[tuple[str, object]]) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            repeated: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    repeated.add(k)
                seen.add(k)
            self.problems.append(f"json: duplicate key(s) {sorted(repeated)} in one object")
        return obj

    def _constant(self, name: str) -> None:
        self.problems.append(f"encoding: non-finite number {name} (not JSON, not encodable)")

    def _float(self, text: str) -> float | None:
        value = float(text)
        if not math.isfinite(value):
            self.problems.append(f"encoding: number {text[:40]} is too large for a double")
            return None
        return value

    def decode(self, text: str) -> tuple[object, list[str]]:
        """The value of one JSON text and its problems (raises ``json.JSONDecodeError`` on bad syntax)."""
        self.problems = []
        return self._decoder.decode(text), self.problems

    def raw_decode(self, text: str, pos: int) -> tuple[object, int, list[str]]:
        """The value starting at ``pos``, where it ends, and its problems."""
        self.problems = []
        value, end = self._decoder.raw_decode(text, pos)
        return value, end, self.problems
