"""Stopping a component and everything it started (its process group).

Waiting for the process a test started is not enough: Airflow's components start their own workers
in the same process group. In a clean-clone run (2026-12-03) ``airflow standalone`` exited on SIGTERM
while its scheduler stayed in multiprocessing's exit handler, joining idle LocalExecutor workers, and
outlived the whole test run. So the group is signalled and waited on until none of its live
processes is left; what ignores SIGTERM is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
from waiting import wait_for_state

TERM_GRACE = 30.0  # seconds a group gets to exit on SIGTERM before SIGKILL (only chooses the signal)


def live_members(pgid: int) -> list[psutil.Process]:
    """The processes of group ``pgid`` that are still running (zombies excluded)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _gone(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader, so that it is not counted as a zombie member
    return not live_members(proc.pid)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop_group(proc: subprocess.Popen, grace: float = TERM_GRACE) -> None:
    """End the group ``proc`` leads (it was started with ``start_new_session=True``): SIGTERM, and
    SIGKILL for whatever is still running ``grace`` seconds later; then wait until nothing of it runs.
    The grace only picks the signal, so a slow machine costs a SIGKILL, never a failure; the wait after
    SIGKILL is a state wait (``waiting.wait_for_state``), failing only if nothing dies for its limit."""
    _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not _gone(proc) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not _gone(proc):
        _signal(proc, signal.SIGKILL)
        wait_for_state(lambda: _gone(proc), f"process group {proc.pid} to end after SIGKILL", poll=0.2,
                       progress=lambda: len(live_members(proc.pid)),
                       still_running=lambda: str([p.pid for p in live_members(proc.pid)]))
