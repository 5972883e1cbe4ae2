"""Ending a command promptly when its Prefect server goes away.

Prefect's client retries every request with backoff, so a command whose server was killed kept
going for 4-7 minutes and ended on a bare `Connection refused`. While a long command runs against a
server (`PREFECT_API_URL`), a thread asks the server's `/health`; when it has not answered for
`SPECHESTRA_SERVER_GRACE` seconds (default 15) the command says so in one line and exits 1. Nothing
finished is lost: built specs are in the project's cache, the build lock is released by the OS, and
the next build marks the abandoned run Crashed and resumes from the cache.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.error
import urllib.request

from rich.console import Console

POLL = 2.0


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=3) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def watch_server(err: Console) -> None:
    """Start the watchdog (a daemon thread) if this command talks to a server."""
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        return  # a temporary server lives and dies with this process
    grace = float(os.environ.get("SPECHESTRA_SERVER_GRACE", "15"))

    def watch():
        last_ok = time.monotonic()
        while True:
            time.sleep(POLL)
            if _healthy(api_url):
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok >= grace:
                err.print(f"[red]error:[/] the Prefect server at {api_url} has not answered for {grace:g}s, so this "
                          "command stops here. Finished specs are kept in the project's cache: run the same "
                          "command again once the server is back, and it resumes.", highlight=False)
                sys.stderr.flush()
                os._exit(1)

    threading.Thread(target=watch, name="spechestra-server-watchdog", daemon=True).start()
