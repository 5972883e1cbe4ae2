"""Specs' tests from a warm pytest: one sandboxed server per build folder forks a run per request.

Why: a new interpreter per test run spent ~0.25-0.4 s of CPU importing pytest, and with many
specs building at once on a small machine that CPU is the build's critical path. The server
(`warm_server.py`) runs inside one bubblewrap sandbox like a cold run's (read-only file system,
no network, home and Prefect home hidden, new PID namespace), with the build's staging root
writable; each run then restricts itself with Landlock to its own staging folder. Runs keep
everything a cold run has: timeout, process and resource limits, leftovers killed, junit report.

Used only where all of that holds (bubblewrap works, the kernel has Landlock, no network asked
for, SPECHESTRA_WARM_TESTS on); `run_pytest` returns None otherwise, or when the server cannot
answer, and the caller runs the tests cold (`reaped.run_reaped`).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Optional

from .. import stopping
from ..errors import WarmRunnerUnavailable
from ..settings import settings
from . import sandbox
from .control import signal_group
from .reaped import GRACE, STOP_POLL, ProcessRun, limits_for, settings_pythonpath, with_caller_pythonpath

SERVER = Path(__file__).with_name("warm_server.py")
IDLE_SECONDS = 30.0     # an unused server exits after this long (a build's gaps are shorter)
START_SECONDS = 30.0    # a server not ready by then is given up (the build runs cold)

_log = logging.getLogger("spechestra.sandbox")


def usable(network: bool) -> bool:
    """Whether a run with this network choice can be warm here."""
    if network or not settings.warm_tests or sandbox.landlock_abi() < 1:
        return False
    return sandbox.containment(False).sandboxed


def run_pytest(args: list[str], cwd: str, timeout: float, import_paths: Iterable[str], writable: list[str],
               writable_root: str, report: str, declared_env: Iterable[str] = (), keep: int = 200_000
               ) -> Optional[ProcessRun]:
    """Run `pytest args` in `cwd` warm, writing only `writable` (below `writable_root`); pytest's
    junit report is written to `report`. `{run_tmp}` in args is the run's private temp dir.
    None: not possible here or now (run it cold)."""
    if not usable(False):
        return None
    paths = with_caller_pythonpath(import_paths)
    where = os.path.realpath(cwd)
    request: dict = {"cwd": where, "argv": args, "import_paths": paths,
               "writable": [os.path.realpath(w) for w in writable], "timeout": timeout, "keep": keep,
               "env": {k: v for k, v in sandbox.child_env(paths, "", False, declared_env).items()
                       if k not in ("HOME", "TMPDIR")},
               "limits": limits_for(timeout, sandboxed=True)}
    try:
        server = _server(where, os.path.realpath(writable_root))
        answer = server.run(request, timeout + GRACE + 15)
    except (WarmRunnerUnavailable, OSError) as exc:
        _say_cold(str(exc).split(":")[0])
        return None
    if answer.get("report") is not None:
        Path(report).write_text(answer["report"], encoding="utf-8")
    return ProcessRun(answer.get("returncode"), answer.get("output", ""), bool(answer.get("timed_out")),
                      int(answer.get("left", 0)), answer.get("limit", ""), sandbox.containment(False).describe())


class WarmServer:
    """One server process (in its sandbox) and the requests waiting on it."""

    def __init__(self, cwd: str, writable_root: str):
        os.makedirs(writable_root, exist_ok=True)
        readable = [cwd, *settings_pythonpath()]
        box = sandbox.containment(False)
        cmd = [sys.executable, str(SERVER), f"--idle={IDLE_SECONDS:g}"]
        # No --die-with-parent: it is tied to the thread that started bwrap, and a build's task
        # threads come and go; the server exits when its stdin closes (this process gone).
        full = sandbox.wrap(cmd, box, cwd, writable=[writable_root], readable=readable, die_with_parent=False)
        self._errors: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(full, cwd=cwd, env=sandbox.child_env([], "/tmp", False), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._errors, start_new_session=True)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, list] = {}  # id -> [event, answer]
        self._ready = threading.Event()
        self.dead = ""  # why it can no longer answer
        threading.Thread(target=self._read, name="spechestra-warm-reader", daemon=True).start()
        if not self._ready.wait(START_SECONDS) or self.dead:
            self.stop(self.dead or f"not ready within {START_SECONDS:g}s")
            raise WarmRunnerUnavailable(f"the warm test runner did not start: {self.dead}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if answer.get("ready"):
                if int(answer.get("abi", 0)) < 1:
                    self.dead = "no Landlock inside the sandbox"
                self._ready.set()
                continue
            with self._lock:
                slot = self._waiting.pop(answer.get("id"), None)
            if slot is not None:
                slot[1] = answer
                slot[0].set()
        self.dead = self.dead or f"it exited (code {self.proc.wait()}){self._said()}"
        self._ready.set()
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for event, _ in waiting.values():
            event.set()

    def _said(self) -> str:
        self._errors.seek(0)
        text = self._errors.read().decode("utf-8", errors="replace").strip()
        return f": {text.splitlines()[-1]}" if text else ""

    def run(self, request: dict, wait: float) -> dict:
        slot: list = [threading.Event(), None]
        with self._lock:
            if self.dead:
                raise WarmRunnerUnavailable(self.dead)
            request["id"] = ident = next(self._ids)
            self._waiting[ident] = slot
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
            except OSError as exc:
                self._waiting.pop(ident, None)
                raise WarmRunnerUnavailable(f"it stopped reading ({exc})") from None
        deadline = time.monotonic() + wait
        while not slot[0].wait(min(STOP_POLL, max(0.0, deadline - time.monotonic()))):
            if stopping.requested():  # Ctrl-C: this run and every other one in the sandbox end now
                self.stop("a stop was asked for")
                return {"returncode": None, "timed_out": False, "output": "", "left": 0, "limit": ""}
            if time.monotonic() >= deadline:
                # The run process enforces the timeout itself; no answer this long after means the
                # server is stuck: end it (and every run in its sandbox) and report a timeout.
                self.stop(f"no answer within {wait:g}s")
                return {"returncode": None, "timed_out": True, "output": "", "left": 0, "limit": ""}
        answer = slot[1]
        if answer is None:
            raise WarmRunnerUnavailable(self.dead or "it ended")
        if answer.get("error"):
            raise WarmRunnerUnavailable(answer["error"])
        return answer

    def stop(self, why: str = "stopped") -> None:
        self.dead = self.dead or why
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


_SERVERS: dict[tuple, WarmServer] = {}
_SERVERS_LOCK = threading.Lock()


def _server(cwd: str, writable_root: str) -> WarmServer:
    """The live server for this build folder. Its sandbox binds the folders as they were when it
    started: a build folder removed and made again (a clean rebuild) gets a new server."""
    os.makedirs(writable_root, exist_ok=True)
    key = (cwd, writable_root, _identity(cwd), _identity(writable_root))
    with _SERVERS_LOCK:
        for old in [k for k, s in _SERVERS.items() if s.dead or (k[:2] == key[:2] and k != key)]:
            _SERVERS.pop(old).stop("its build folder was replaced")
        server = _SERVERS.get(key)
        if server is None:
            server = _SERVERS[key] = WarmServer(cwd, writable_root)
        return server


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def stop_for(build_dir: str) -> None:
    """End this process's servers for one build folder (its build is over)."""
    where = os.path.realpath(build_dir)
    with _SERVERS_LOCK:
        servers = [_SERVERS.pop(k) for k in [k for k in _SERVERS if k[0] == where]]
    for server in servers:
        server.stop()


def stop_all() -> None:
    """End every warm server of this process (at the end of a build, and at exit)."""
    with _SERVERS_LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.stop()


atexit.register(stop_all)


@functools.lru_cache(maxsize=None)
def _say_cold(why: str) -> None:
    _log.warning("specs' tests run in a new interpreter each (slower): the warm test runner is unavailable (%s)", why)
