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

TERM_GRACE = 30.0  # seconds a group gets to exit on SIGTERM before SIGKILL (decides nothing: only cleanup)


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


def stop_group(proc: subprocess.Popen, grace: float = TERM_GRACE) -> None:
    """SIGTERM the group ``proc`` leads (it was started with ``start_new_session=True``), wait until no
    member is left, SIGKILL whatever is after ``grace`` seconds; raises if anything survives that."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, so that it is not counted as a zombie member
            if not live_members(proc.pid):
                return
            time.sleep(0.2)
    left = live_members(proc.pid)
    if left:
        raise RuntimeError(f"process group {proc.pid} survived SIGKILL: {[p.pid for p in left]}")
