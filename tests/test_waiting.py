"""tests/waiting.py: waits for a state, restarts its limit on progress, fails at once on a dead
component, and says what was still running when it gives up. (No assertion here depends on speed:
each outcome is decided by counts, never by how long a poll took.)"""

from __future__ import annotations

import pytest
from waiting import wait_for_state

pytestmark = pytest.mark.unit


def test_returns_once_the_state_is_reached():
    polls = {"n": 0}

    def reached() -> bool:
        polls["n"] += 1
        return polls["n"] == 4

    assert wait_for_state(reached, "four polls", poll=0) >= 0
    assert polls["n"] == 4


def test_progress_restarts_the_limit_up_to_the_ceiling():
    state = {"n": 0}

    def moving() -> int:
        state["n"] += 1
        return state["n"]

    # Progress on every poll: never stalls, so only the state ends the wait.
    wait_for_state(lambda: state["n"] >= 50, "fifty steps", limit=3600, poll=0, progress=moving)
    assert state["n"] >= 50


def test_gives_up_without_progress_and_reports_what_was_running():
    with pytest.raises(pytest.fail.Exception, match=r"(?s)gave up waiting for nothing.*Still running:\nthe worker"):
        wait_for_state(lambda: False, "nothing", limit=0.2, poll=0.01, progress=lambda: 1,
                       still_running=lambda: "the worker")


def test_a_dead_component_fails_at_once():
    with pytest.raises(pytest.fail.Exception, match="while waiting for publishing: scheduler exited 1"):
        wait_for_state(lambda: False, "publishing", limit=3600, poll=0, died=lambda: "scheduler exited 1")
