"""Running a child command with a timeout that holds, whatever the command leaves behind.

Output goes to a file, not a pipe: a background process that inherited the pipe would keep a
reader waiting long after the command itself ended (seen: 100+ s past a 3 s timeout). The
command runs under `reaper.py` in its own process group, so on a timeout the whole tree is
stopped, and after a normal exit anything it left running is killed and counted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import settings
from .control import signal_group

REAPER = Path(__file__).with_name("reaper.py")
GRACE = 3.0  # seconds the reaper gets to clean up after a timeout, before SIGKILL
_LEFT = re.compile(r"\n?spechestra-reaper: killed (\d+) process\(es\) left running\n?")


@dataclass
class ProcessRun:
    returncode: Optional[int]   # None when it timed out
    output: str                 # the tail of what it printed (stdout and stderr)
    timed_out: bool = False
    left_running: int = 0       # processes it left behind, killed


def run_reaped(cmd: list[str], cwd: str, env: dict, timeout: float, keep: int = 200_000) -> ProcessRun:
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, str(REAPER), *cmd], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            signal_group(proc.pid, signal.SIGTERM)  # the reaper kills the whole tree, then exits
            try:
                proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        signal_group(proc.pid, signal.SIGKILL)  # anything still in the group
        out.seek(0, os.SEEK_END)
        size = out.tell()
        out.seek(max(0, size - keep))
        text = out.read().decode("utf-8", errors="replace")
    left = sum(int(n) for n in _LEFT.findall(text))
    return ProcessRun(None if timed_out else proc.returncode, _LEFT.sub("\n", text).rstrip() + ("\n" if text else ""),
                      timed_out, left)




def python_env(import_paths: list[str]) -> dict[str, str]:
    """The environment a child interpreter gets: this process's whole environment (the child runs
    as the user's code would), with `import_paths` first on its PYTHONPATH."""
    existing = settings.environment().get("PYTHONPATH", "")
    return settings.environment(PYTHONPATH=os.pathsep.join([*import_paths, existing]).rstrip(os.pathsep))
