"""A local Prefect server that is simply there: started in the background by the first command
that needs one (for the current PREFECT_HOME), reused by every later command and by the Python
API, and managed with `spechestra server start|stop|status`.

Prefect's own temporary server costs every command 5-20 s to start (and up to 43 s under load,
past Prefect's 20 s limit, which then fails the command), and a killed command leaves it
running. A managed server starts once, is waited for as long as a slow machine needs, and its
runs stay browsable in the UI while they run. `SPECHESTRA_SERVER=temporary` gives each command a
server of its own instead, waited for as long as it takes and ended with the command, however
the command ends (`temporary`, `guard`).
Standard library only: which API is configured is read through Prefect's settings by the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from .. import settings
from ..core.fileio import atomic_write
from ..errors import ServerError
from ..processes.control import alive, stop_group
from .fresh_database import has_blocks, seed
from .launch import RECORD

DEFAULT_PORT = 4200
PORT_TRIES = 3
REGISTER_BLOCKS = "PREFECT_API_BLOCKS_REGISTER_ON_START"
Say = Callable[[str], None]


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


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
    return settings.prefect_home()


def _state_file(home: Path) -> Path:
    return home / "spechestra-server.json"


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


def home_port(home: Path, asked: int) -> int:
    """The port of this PREFECT_HOME's managed server, the same at every start, so an exported
    PREFECT_API_URL stays right: the one it used before, else 4200, else a port derived from the
    home's path (4201-4299); a port given with --port is used as given, or refused if taken.
    Remembered for the next start."""
    if asked != DEFAULT_PORT:
        if _bind(asked) is None:
            raise _taken(asked)
        chosen = asked
    else:
        chosen = expected_port(home)
    atomic_write(home / "spechestra-server.port", str(chosen))
    return chosen


def _taken(port: int) -> ServerError:
    return ServerError(f"port {port} on 127.0.0.1 is in use: choose another with --port")


def expected_port(home: Path) -> int:
    """The port `spechestra server start` would choose now for this PREFECT_HOME (nothing kept):
    what a link to a run can name when no server is up (temporary mode)."""
    try:
        before = [int((home / "spechestra-server.port").read_text().strip())]
    except (OSError, ValueError):
        before = []
    offset = zlib.crc32(str(home).encode()) % 99
    candidates = before + [DEFAULT_PORT] + [4201 + (offset + i) % 99 for i in range(99)]
    return next((p for p in candidates if _bind(p) is not None), 0) or free_port(0)


def _bind(port: int) -> Optional[int]:
    """The port a listening socket could bind on 127.0.0.1 (the one asked, or any for 0), else None.

    Asked as the server binds (uvicorn, and Prefect's own check, set SO_REUSEADDR): only a socket
    that listens there takes the port. Without it, the connections a killed server leaves in
    TIME_WAIT (60 s) made its port look taken, and `server start` moved the server to another port,
    away from every PREFECT_API_URL, UI tab and running build that knew the old one."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
        return sock.getsockname()[1]


def free_port(preferred: int) -> int:
    port = _bind(preferred) or _bind(0)
    if port is None:
        raise ServerError("no free port on 127.0.0.1")
    return port


def prefect_exe() -> str:
    """The `prefect` CLI of this interpreter's environment (not whichever is first on PATH)."""
    here = Path(sys.executable).parent / "prefect"
    return str(here) if here.exists() else "prefect"


#: Prefect server settings a server started here gets unless the user chose their own.
SERVER_DEFAULTS = {
    # Concurrency-slot leases on disk (PREFECT_HOME/concurrency_leases), not in the server's
    # memory: after a restart the server still knows who holds the LLM limit's slots, frees a
    # dead holder's when its lease ends, and never counts slots nobody holds.
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
}


def server_defaults() -> dict[str, str]:
    return {name: value for name, value in SERVER_DEFAULTS.items() if settings.prefect_source(name) == "default"}


def server_env(home: Path, port: int, seeded: Optional[Path] = None) -> dict[str, str]:
    """What a server started here runs with: the whole environment (its database and other
    Prefect settings), this PREFECT_HOME, no telemetry, the UI told the API's real address, and
    no PREFECT_API_URL (it would point the server's own services elsewhere). On a database just
    copied from a template that holds this install's block types, the server does not register
    them again (unless the user set that themselves); later starts register as Prefect always does."""
    return settings.environment(drop=("PREFECT_API_URL",), PREFECT_HOME=str(home),
                                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                                PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
                                **server_defaults(), **seeded_start(seeded))


def seeded_start(seeded: Optional[Path]) -> dict[str, str]:
    """What a server's first start on a copy of the template (`seed`) skips: registering block
    types the copy already holds (unless the user set that themselves)."""
    if seeded is not None and has_blocks(seeded) and settings.prefect_source(REGISTER_BLOCKS) == "default":
        return {REGISTER_BLOCKS: "false"}
    return {}


def server_command(port: int, host: str = "127.0.0.1", record: Optional[str] = None) -> list[str]:
    """`prefect server start` by Prefect's own CLI, in this interpreter (`launch`: a start 0.5-0.7 s
    of CPU shorter); `record`: what `launch.record_self` writes."""
    return [sys.executable, "-m", "spechestra.server.launch", *([RECORD, record] if record else []),
            "server", "start", "--host", host, "--port", str(port)]


def start(home: Optional[Path] = None, port: int = DEFAULT_PORT, timeout: Optional[float] = None,
          say: Say = to_stderr) -> ServerInfo:
    """The running managed server, or a new one started in the background and waited for."""
    home = home or prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    timeout = timeout if timeout is not None else settings.settings.server_start_timeout
    with _start_lock(home):  # two commands starting at once start one server
        found = running(home) or _slow(home, timeout, say)
        if found:
            return found
        deadline = time.monotonic() + timeout
        for _ in range(PORT_TRIES):
            info = _launch(home, home_port(home, port), deadline, timeout, say)
            if info is not None:  # recorded by `_launch` from its start
                say(f"local Prefect server ready: {info.ui_url} (stop it with `spechestra server stop`)")
                return info
            if port != DEFAULT_PORT:  # the port asked for was taken meanwhile: never another in its place
                raise _taken(port)
            # else taken meanwhile by a server of another home: home_port chooses again
        raise ServerError(f"no port stayed free for the local Prefect server ({PORT_TRIES} tries): "
                          "choose one with --port", log=str(home / "spechestra-server.log"))


@contextlib.contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    with open(home / "spechestra-server.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def seed_alone(home: Path) -> Optional[Path]:
    """`seed` for a server started outside `start` (in the foreground, or a temporary one), under
    the lock `start` holds: two starts on a new home never copy a database over each other's."""
    home.mkdir(parents=True, exist_ok=True)
    with _start_lock(home):
        return seed(home)


def _launch(home: Path, port: int, deadline: float, timeout: float, say: Say) -> Optional[ServerInfo]:
    """Start a server for `home` on `port` and wait until it answers for `home`; None when the
    port was taken between choosing and binding it (a command on another home starting its
    server at the same moment: it answers health checks there, so the answer must be ours)."""
    log = home / "spechestra-server.log"
    seeded = seed(home)  # a new home's database, migrated already (7 s of a first start)
    say(f"starting local Prefect server on http://127.0.0.1:{port} (log: {log}"
        + (f"; a new database from {seeded}" if seeded else "") + ") ...")
    info = ServerInfo(pid=0, port=port, home=str(home), log=str(log), started=time.time())
    # Recorded from its start, not once it answers: a command killed (or stopped with Ctrl-C) while
    # its server starts leaves that server running, and the next command must find it (and wait
    # for it) rather than start a second server on the same database; `server stop` ends it. The
    # server records itself first thing too (`launch.record_self`): this command may be killed
    # before the write below.
    record = json.dumps({"path": str(_state_file(home)), "info": asdict(info)})
    with open(log, "ab") as out:
        proc = subprocess.Popen(server_command(port, record=record), env=server_env(home, port, seeded),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    info.pid = proc.pid
    atomic_write(_state_file(home), json.dumps(asdict(info)))
    while not (healthy(info.api_url) and _serves_home(info.api_url, home) is not False):
        if proc.poll() is not None:
            _forget(home, info)
            if _bind(port) is None:  # someone else listens there now
                return None
            raise ServerError(f"the local Prefect server exited (code {proc.returncode}) while starting; "
                              f"its log is {log}:\n{tail(log)}", log=str(log))
        if time.monotonic() > deadline:
            stop_group(proc.pid)
            _forget(home, info)
            raise ServerError(f"the local Prefect server did not answer within {timeout:g}s "
                              f"(SPECHESTRA_SERVER_START_TIMEOUT); its log is {log}:\n{tail(log)}", log=str(log))
        time.sleep(0.1)
    return info


def _forget(home: Path, info: ServerInfo) -> None:
    """The state file no longer names `info`'s server (ended), unless it names another already."""
    recorded = _recorded(home)
    if recorded is not None and recorded.pid == info.pid:
        with contextlib.suppress(FileNotFoundError):
            _state_file(home).unlink()


def _serves_home(api_url: str, home: Path) -> Optional[bool]:
    """Whether the server answering at `api_url` runs for `home` (None: it does not say, e.g. it
    asks for credentials)."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/admin/settings", timeout=5) as reply:
            said = json.loads(reply.read()).get("home")
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return None
    return None if not said else Path(said).expanduser().resolve() == home.expanduser().resolve()


def _recorded_alive(home: Path) -> Optional[ServerInfo]:
    """The recorded server while its process runs (answering or not)."""
    info = _recorded(home)
    return info if info is not None and alive(info.pid) and _serves(info) else None


def silent(home: Optional[Path] = None) -> Optional[ServerInfo]:
    """The recorded server when its process runs but does not answer (still starting, or busy)."""
    info = _recorded_alive(home or prefect_home())
    return info if info is not None and not healthy(info.api_url) else None


def _slow(home: Path, timeout: float, say: Say) -> Optional[ServerInfo]:
    """The recorded server when its process still runs but did not answer at once (a busy
    machine): waited for, never replaced, since a second server would share its database."""
    info = _recorded_alive(home)
    if info is None:
        return None
    say(f"the local Prefect server (pid {info.pid}) is still starting or slow to answer; waiting up to {timeout:g}s ...")
    deadline = time.monotonic() + timeout
    while not healthy(info.api_url, timeout=5.0):
        if not alive(info.pid):
            return None  # it ended meanwhile: a new one is started
        if time.monotonic() > deadline:
            raise ServerError(f"the local Prefect server (pid {info.pid}) runs but has not answered for {timeout:g}s "
                              f"(SPECHESTRA_SERVER_START_TIMEOUT); its log is {info.log}. Wait, or restart it: "
                              "spechestra server stop", log=info.log)
        time.sleep(0.5)
    return info


def _serves(info: ServerInfo) -> bool:
    """Whether the recorded PID is still the server started on that port (not a reused PID)."""
    try:
        args = Path(f"/proc/{info.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to ask: the PID is taken at its word
    return b"server" in args and str(info.port).encode() in args


def stop(home: Optional[Path] = None) -> Optional[ServerInfo]:
    """Stop the managed server of this PREFECT_HOME; returns what was stopped (None if nothing)."""
    home = home or prefect_home()
    info = _recorded(home)
    if info is None:
        return None
    if alive(info.pid):
        stop_group(info.pid)
    with contextlib.suppress(FileNotFoundError):
        _state_file(home).unlink()
    return info


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
