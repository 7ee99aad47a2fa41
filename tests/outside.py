"""Running sensorlog the way a resident or an auditor does: a clean shell with no ``SENSORLOG_*``
variable (so no operator's home), the project's ``sensorlog`` on PATH, in a folder of their choosing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
WAIT = 900  # seconds a subprocess may take on a loaded machine: a limit, never a measurement


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ``SENSORLOG_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSORLOG_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run(args: list[str] | str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (a shell line when a string) in ``cwd`` with ``clean_env(**extra)``."""
    return subprocess.run(args, cwd=cwd, env=clean_env(**extra), capture_output=True, text=True, timeout=WAIT,
                          shell=isinstance(args, str))
