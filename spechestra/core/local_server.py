"""A local Prefect server that is simply there: started in the background by the first command
that needs one (for the current PREFECT_HOME), reused by every later command and by the Python
API, and managed with `spechestra server start|stop|status`.

Prefect's own temporary server costs every command 5-20 s to start (and up to 43 s under load,
past Prefect's 20 s limit, which then fails the command), and a killed command leaves it
running. A managed server starts once, is waited for as long as a slow machine needs, and its
runs stay browsable in the UI while they run. `SPECHESTRA_SERVER=temporary` gives each command a
server of its own instead, waited for as long as it takes and ended with the command, however
the command ends (`server_guard`).
Standard library only: `server status` and `doctor` must not import Prefect.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from .fileio import alive, atomic_write

DEFAULT_PORT = 4200
START_TIMEOUT = 300.0  # seconds; a first start migrates the database, slow on a busy machine


class ServerError(RuntimeError):
    """The local server could not be started or reached; the message names its log."""


@dataclass
class ServerInfo:
    pid: int
    port: int
    home: str
    log: str
    started: float

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _state_file(home: Path) -> Path:
    return home / "spechestra-server.json"


def mode() -> str:
    """`SPECHESTRA_SERVER`: `managed` (default: a background server, reused) or `temporary`."""
    value = (os.environ.get("SPECHESTRA_SERVER") or "managed").strip().lower()
    if value not in ("managed", "temporary"):
        raise ValueError(f"SPECHESTRA_SERVER={value!r}: use managed (the default) or temporary")
    return value


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _recorded(home: Path) -> Optional[ServerInfo]:
    """The server this PREFECT_HOME last started (running or not), from its state file."""
    try:
        return ServerInfo(**json.loads(_state_file(home).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def running(home: Optional[Path] = None) -> Optional[ServerInfo]:
    """The managed server of this PREFECT_HOME, if it is running and answers."""
    info = _recorded(home or prefect_home())
    return info if info is not None and alive(info.pid) and healthy(info.api_url) else None


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ServerError("no free port on 127.0.0.1")


def prefect_exe() -> str:
    """The `prefect` CLI of this interpreter's environment (not whichever is first on PATH)."""
    here = Path(sys.executable).parent / "prefect"
    return str(here) if here.exists() else "prefect"


def start(home: Optional[Path] = None, port: int = DEFAULT_PORT, timeout: Optional[float] = None,
          say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> ServerInfo:
    """The running managed server, or a new one started in the background and waited for."""
    home = home or prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    timeout = timeout if timeout is not None else float(os.environ.get("SPECHESTRA_SERVER_START_TIMEOUT", START_TIMEOUT))
    with open(home / "spechestra-server.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands starting at once start one server
        found = running(home)
        if found:
            return found
        port = _free_port(port)
        log = home / "spechestra-server.log"
        env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api")
        env.pop("PREFECT_API_URL", None)
        say(f"starting local Prefect server on http://127.0.0.1:{port} (log: {log}) ...")
        with open(log, "ab") as out:
            proc = subprocess.Popen([prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        info = ServerInfo(pid=proc.pid, port=port, home=str(home), log=str(log), started=time.time())
        deadline = time.monotonic() + timeout
        while not healthy(info.api_url):
            if proc.poll() is not None:
                raise ServerError(f"the local Prefect server exited (code {proc.returncode}) while starting; "
                                  f"its log is {log}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                _stop_pid(proc.pid)
                raise ServerError(f"the local Prefect server did not answer within {timeout:g}s "
                                  f"(SPECHESTRA_SERVER_START_TIMEOUT); its log is {log}:\n{_tail(log)}")
            time.sleep(0.5)
        atomic_write(_state_file(home), json.dumps(asdict(info)))
        say(f"local Prefect server ready: {info.ui_url} (stop it with `spechestra server stop`)")
        return info


def stop(home: Optional[Path] = None) -> Optional[ServerInfo]:
    """Stop the managed server of this PREFECT_HOME; returns what was stopped (None if nothing)."""
    home = home or prefect_home()
    info = _recorded(home)
    if info is None:
        return None
    if alive(info.pid):
        _stop_pid(info.pid)
    with contextlib.suppress(FileNotFoundError):
        _state_file(home).unlink()
    return info


def _stop_pid(pid: int, grace: float = 20.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid) or _zombie(pid):
                return
            time.sleep(0.2)


def _zombie(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def api_url_for_this_process(say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
                             wait: bool = True) -> Optional[str]:
    """The API every command should use: PREFECT_API_URL when set; else the managed server
    (started if need be); in temporary mode, a server that ends with this command."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if mode() == "temporary":
        return start_temporary(say=say, wait=wait).api_url
    return start(say=say).api_url


_TEMPORARY: dict = {}  # this process's temporary server: {"info", "guard", "ready", "timeout"}


def start_temporary(home: Optional[Path] = None, timeout: Optional[float] = None, wait: bool = True,
                    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> ServerInfo:
    """A server for this process only, ended when the process ends, even by SIGKILL (see
    `server_guard`). One per process. With `wait=False` the server boots while the command
    imports and plans (its start is mostly Prefect's own import, ~2.7 s here); `wait_ready`
    is called where the API is first needed."""
    if not _TEMPORARY:
        home = home or prefect_home()
        home.mkdir(parents=True, exist_ok=True)
        port = _free_port(0)
        log = home / "spechestra-temporary-server.log"
        env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api")
        env.pop("PREFECT_API_URL", None)
        say(f"starting a temporary Prefect server for this command on http://127.0.0.1:{port} (log: {log}) ...")
        # Its stdin is a pipe from this process, kept open until this process ends.
        guard = subprocess.Popen([sys.executable, "-m", "spechestra.core.server_guard", str(port), str(log)],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        _TEMPORARY.update(info=ServerInfo(pid=guard.pid, port=port, home=str(home), log=str(log), started=time.time()),
                          guard=guard, ready=False, timeout=timeout if timeout is not None else float(
                              os.environ.get("SPECHESTRA_SERVER_START_TIMEOUT", START_TIMEOUT)))
    if wait:
        wait_ready()
    return _TEMPORARY["info"]


def temporary_api_url() -> Optional[str]:
    """The API of this process's temporary server, if it has one (gone once the process ends)."""
    return _TEMPORARY["info"].api_url if _TEMPORARY else None


def wait_ready() -> None:
    """Block until this process's temporary server answers (at once if there is none, or it did)."""
    if not _TEMPORARY or _TEMPORARY["ready"]:
        return
    info, guard, timeout = _TEMPORARY["info"], _TEMPORARY["guard"], _TEMPORARY["timeout"]
    deadline = info.started + timeout
    while not healthy(info.api_url):
        if guard.poll() is not None or time.time() > deadline:
            guard.stdin.close()  # the guard ends the server
            why = (f"exited (code {guard.returncode})" if guard.poll() is not None
                   else f"did not answer within {timeout:g}s (SPECHESTRA_SERVER_START_TIMEOUT)")
            raise ServerError(f"the temporary Prefect server {why}; its log is {info.log}:\n{_tail(Path(info.log))}")
        time.sleep(0.2)
    _TEMPORARY["ready"] = True
