"""A Prefect server for this process only (`SPECHESTRA_SERVER=temporary`), ended when the process
ends, even by SIGKILL: a guard process (`guard`) holds it and ends it when this process's pipe to
the guard closes. The server boots while the command imports and plans (its start is mostly
Prefect's own import, ~2.7 s here); `wait_ready` is called where the API is first needed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .. import settings
from ..errors import ServerError
from .local import (
    Say,
    ServerInfo,
    free_port,
    healthy,
    prefect_home,
    seed_alone,
    server_env,
    tail,
    to_stderr,
)

_TEMPORARY: dict = {}  # this process's temporary server: {"info", "guard", "ready", "timeout"}


def start_temporary(home: Optional[Path] = None, timeout: Optional[float] = None, wait: bool = True,
                    say: Say = to_stderr) -> ServerInfo:
    """This process's temporary server (one per process), started if need be."""
    if not _TEMPORARY:
        home = home or prefect_home()
        seeded = seed_alone(home)  # a new home's database, migrated already, as a managed start's
        port = free_port(0)
        log = home / "spechestra-temporary-server.log"
        say(f"starting a temporary Prefect server for this command on http://127.0.0.1:{port} (log: {log}"
            + (f"; a new database from {seeded}" if seeded else "") + ") ...")
        # Its stdin is a pipe from this process, kept open until this process ends.
        guard = subprocess.Popen([sys.executable, "-m", "spechestra.server.guard", str(port), str(log)],
                                 env=server_env(home, port, seeded), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        _TEMPORARY.update(info=ServerInfo(pid=guard.pid, port=port, home=str(home), log=str(log), started=time.time()),
                          guard=guard, ready=False,
                          timeout=timeout if timeout is not None else settings.settings.server_start_timeout)
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
            raise ServerError(f"the temporary Prefect server {why}; its log is {info.log}:\n{tail(Path(info.log))}",
                              log=info.log)
        time.sleep(0.2)
    _TEMPORARY["ready"] = True


def stop_temporary() -> None:
    """End this process's temporary server now (one started early that turned out not to be needed)."""
    if _TEMPORARY:
        _TEMPORARY["guard"].stdin.close()  # the guard ends the server
        _TEMPORARY.clear()
