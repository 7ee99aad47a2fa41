"""Waiting for a state, never for a speed.

A test that starts real processes (Airflow components, a Celery worker, a pipeline run) waits until
the state it needs is reached. It gives up only when nothing has moved for a long time (``limit``,
15 minutes by default: a loaded 2-core machine can be many times slower than a quiet one) or after
an absolute ``ceiling``; a component that dies fails at once. On giving up it says what was still
running, so a slow machine is never mistaken for a broken program and a broken program is diagnosable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

HEAVY_LIMIT = 15 * 60  # Airflow, Celery, a whole pipeline run: seconds with no progress before giving up


def wait_for_state(
    reached: Callable[[], bool],
    what: str,
    *,
    limit: float = HEAVY_LIMIT,
    ceiling: float | None = None,
    poll: float = 2.0,
    progress: Callable[[], object] | None = None,
    died: Callable[[], str | None] | None = None,
    still_running: Callable[[], str] | None = None,
) -> float:
    """Poll ``reached`` until it is true; returns the seconds waited.

    ``progress`` returns anything comparable (a count of manifests, of finished tasks): while it keeps
    changing, ``limit`` starts again, up to ``ceiling`` (default four times ``limit``). ``died`` returns
    a message when a component has exited (fails at once). ``still_running`` describes what was still
    in flight, for the failure message.
    """
    ceiling = 4 * limit if ceiling is None else ceiling
    started = last_change = time.monotonic()
    seen = progress() if progress else None
    while True:
        if reached():
            return time.monotonic() - started
        if died is not None and (message := died()):
            pytest.fail(f"while waiting for {what}: {message}")
        now = time.monotonic()
        if progress is not None:
            current = progress()
            if current != seen:
                seen, last_change = current, now
        if now - last_change >= limit or now - started >= ceiling:
            detail = still_running() if still_running else ""
            pytest.fail(
                f"gave up waiting for {what} after {now - started:.0f} s "
                f"({now - last_change:.0f} s without progress; last progress: {seen!r}). Still running:\n{detail}"
            )
        time.sleep(poll)
