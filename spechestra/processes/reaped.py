"""Running a child command with a timeout that holds, whatever the command leaves behind.

Output goes to a file, not a pipe: a background process that inherited the pipe would keep a
reader waiting long after the command itself ended (seen: 100+ s past a 3 s timeout). The
command runs under `reaper.py` in its own process group, so on a timeout the whole tree is
stopped, and after a normal exit anything it left running is killed and counted.

Everything run here is generated code (or the arrangement's setup commands), so it runs
contained (`sandbox`): inside bubblewrap where it works, with an allow-listed environment, a
private HOME/TMPDIR and resource limits in every case.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from .. import redaction, stopping
from ..settings import environment, settings
from . import sandbox
from .control import output_tail, signal_group

REAPER = Path(__file__).with_name("reaper.py")
GRACE = 3.0  # seconds the reaper gets to clean up after a timeout, before SIGKILL
STOP_POLL = 0.2  # seconds between looks at a stop asked for (Ctrl-C) while generated code runs
_LEFT = re.compile(r"\n?spechestra-reaper: killed (\d+) process\(es\) left running\n?")
_LIMIT = re.compile(r"\n?spechestra-reaper: limit reached: ([^\n]*)\n?")


@dataclass
class ProcessRun:
    returncode: Optional[int]   # None when it timed out
    output: str                 # the tail of what it printed (stdout and stderr)
    timed_out: bool = False
    left_running: int = 0       # processes it left behind, killed
    limit: str = ""             # the resource limit it reached ("" none), in words
    contained: str = ""         # how it ran (`Containment.describe`)

    def __post_init__(self):
        # Generated code can print a key it read from a file: what it printed is masked before
        # anything (a fix prompt, a state message, the manifest, a log line) sees it.
        self.output = redaction.redact(self.output)


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for `proc` up to `timeout`; True if it timed out. Returns early (False) once a stop is
    asked for: the caller ends the run as after a timeout."""
    deadline = time.monotonic() + timeout
    while not stopping.requested():
        try:
            proc.wait(timeout=max(0.0, min(STOP_POLL, deadline - time.monotonic())))
            return False
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return True
    return False


def run_reaped(cmd: list[str], cwd: str, timeout: float, import_paths: Iterable[str] = (),
               writable: Iterable[str] = (), readable: Iterable[str] = (), network: bool = False,
               declared_env: Iterable[str] = (), keep: int = 200_000) -> ProcessRun:
    """Run generated code: `cwd` and `readable` are what it reads, `writable` the folders it may
    change (besides a private HOME/TMPDIR, removed afterwards)."""
    box = sandbox.containment(network)
    paths = with_caller_pythonpath(import_paths)
    with tempfile.TemporaryDirectory(prefix="spechestra-run-") as private, tempfile.TemporaryFile() as out:
        env = sandbox.child_env(paths, private, box.network, declared_env)
        # The reaper holds the deadline itself and ends with this process: a killed CLI (no
        # bubblewrap to end the run with it) leaves nothing running past the timeout.
        bounds = {**limits_for(timeout, box.sandboxed), "wall": timeout + GRACE, "parent": 1}
        inner = [sys.executable, str(REAPER), "--limits=" + ",".join(f"{k}={v}" for k, v in bounds.items()),
                 *sandbox.landlock_args(box, [private, *writable]), *cmd]
        full = sandbox.wrap(inner, box, cwd, writable=[private, *writable], readable=[*paths, *readable])
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = _wait(proc, timeout)
        if timed_out or stopping.requested():
            signal_group(proc.pid, signal.SIGTERM)  # the reaper kills the whole tree, then exits
            try:
                proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        signal_group(proc.pid, signal.SIGKILL)  # anything still in the group
        text = output_tail(out, keep)
    left = sum(int(n) for n in _LEFT.findall(text))
    limits = _LIMIT.findall(text)
    text = _LIMIT.sub("\n", _LEFT.sub("\n", text)).rstrip()
    return ProcessRun(None if timed_out else proc.returncode, text + ("\n" if text else ""), timed_out, left,
                      limits[-1] if limits else "", box.describe())


def limits_for(timeout: float, sandboxed: bool) -> dict[str, float]:
    """A run's limits (the reaper's, the warm runner's): CPU time per process bounded by the wall
    timeout (a spinning test ends there anyway), the rest from the settings. Inside a PID
    namespace the process watch reads only the run's own processes, so it looks often."""
    return {"cpu": max(1, int(timeout) + 1), "data": settings.sandbox_memory_mb * 2**20,
            "fsize": settings.sandbox_output_mb * 2**20, "procs": settings.sandbox_processes,
            "poll": 0.05 if sandboxed else 0.25}


def with_caller_pythonpath(import_paths: Iterable[str]) -> list[str]:
    """A run's import path: its own folders, then the caller's PYTHONPATH entries not among them."""
    paths = list(import_paths)
    return paths + [p for p in settings_pythonpath() if p not in paths]


def settings_pythonpath() -> list[str]:
    """The caller's own PYTHONPATH entries (folders, not secrets), kept after the run's own."""
    return [p for p in environment().get("PYTHONPATH", "").split(os.pathsep) if p]
