"""tests/processes.stop_group: a component's whole process group ends, not only its leader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from processes import live_members, stop_group

pytestmark = pytest.mark.integration

# The leader starts a child that ignores SIGTERM (as Airflow's scheduler did, stuck joining its
# workers at exit), says so, and then waits; SIGTERM ends the leader only.
LEADER = """
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(3600)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
signal.pause()
"""


def _start() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    return proc, child


def test_a_member_that_ignores_sigterm_is_killed_and_nothing_is_left() -> None:
    proc, child = _start()
    assert {p.pid for p in live_members(proc.pid)} == {proc.pid, child}
    stop_group(proc, grace=1.0)
    assert live_members(proc.pid) == []
    assert proc.returncode is not None


def test_waiting_for_the_leader_alone_would_leave_the_member_running() -> None:
    # What the tests did before: SIGTERM the group, wait for the leader. The member outlives it.
    proc, child = _start()
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        assert [p.pid for p in live_members(proc.pid)] == [child]
    finally:
        stop_group(proc, grace=1.0)
    assert live_members(proc.pid) == []
