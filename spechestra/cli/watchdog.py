"""Ending a command promptly when its Prefect server goes away, and never because it is busy.

Prefect's client retries every request with backoff, so a command whose server was killed kept
going for 4-7 minutes and ended on a bare `Connection refused`. While a long command runs against a
server (`PREFECT_API_URL`), a thread asks the server's `/health` the way Prefect's own client
reaches it (httpx, the same proxy settings). Two cases differ:

- *gone* (nothing accepts the connection): after `SPECHESTRA_SERVER_GRACE` seconds (default 15)
  the command says so in one line and exits 1;
- *slow* (the connection is accepted but no answer comes, as on a machine whose every core is
  busy): the command says once that it is waiting, and gives up only after
  `SPECHESTRA_SERVER_HANG` seconds (default 180), so a loaded machine never ends a healthy build.

Nothing finished is lost either way: built specs are in the project's cache, the build lock is
released by the OS, and the next build marks the abandoned run Crashed and resumes from the cache.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from rich.console import Console

from ..errors import ServerError
from ..server.temporary import wait_ready
from ..settings import settings

POLL = 2.0
TIMEOUT = 10.0  # one probe; generous, since a slow answer is not a missing server

OK, GONE, SLOW = "ok", "gone", "slow"


def probe(api_url: str, timeout: float = TIMEOUT) -> str:
    import httpx  # Prefect's own HTTP client, so proxies and NO_PROXY apply exactly as for its calls
    try:
        reply = httpx.get(api_url.rstrip("/") + "/health", timeout=timeout)
    except httpx.ConnectError:
        return GONE
    except (httpx.HTTPError, OSError):
        return SLOW
    return OK if reply.status_code == 200 else SLOW


def watch_server(err: Console, api_url: str) -> None:
    """Start the watchdog (a daemon thread) on the server this command talks to."""
    grace = settings.server_grace
    hang = max(grace, settings.server_hang)

    def stop(why: str) -> None:
        err.print(f"[red]error:[/] the Prefect server at {api_url} {why}, so this command stops here. Finished "
                  "specs are kept in the project's cache: run the same command again once the server is back, "
                  "and it resumes.", highlight=False)
        sys.stderr.flush()
        os._exit(1)

    def watch():
        try:
            wait_ready()  # a temporary server still starting is not a server gone away
        except ServerError:
            return  # the command's own first API call reports it
        last_ok, warned = time.monotonic(), False
        while True:
            time.sleep(POLL)
            state = probe(api_url)
            silent = time.monotonic() - last_ok
            if state == OK:
                last_ok, warned = time.monotonic(), False
            elif state == GONE and silent >= grace:
                stop(f"has not answered for {grace:g}s (connection refused)")
            elif silent >= hang:
                stop(f"accepted connections but has not answered for {hang:g}s")
            elif state == SLOW and silent >= grace and not warned:
                warned = True
                err.print(f"[yellow]waiting:[/] the Prefect server at {api_url} is slow to answer "
                          f"({silent:.0f}s so far); going on.", highlight=False)

    threading.Thread(target=watch, name="spechestra-server-watchdog", daemon=True).start()
