"""Ending a command promptly when its Prefect server goes away, and never because it is busy
(`server.watch` tells the two apart).

Nothing finished is lost: built specs are in the project's cache, the build lock is released by
the OS, and the next build marks the abandoned run Crashed and resumes from the cache.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from rich.console import Console

from ..errors import ServerError
from ..server.temporary import wait_ready
from ..server.watch import POLL, Silence


def watch_server(err: Console, api_url: str) -> None:
    """Start the watchdog (a daemon thread) on the server this command talks to."""

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
        silence = Silence(api_url)
        while True:
            time.sleep(POLL)
            why, warning = silence.check()
            if why:
                stop(why)
            if warning:
                err.print(f"[yellow]waiting:[/] {warning}", highlight=False)

    threading.Thread(target=watch, name="spechestra-server-watchdog", daemon=True).start()
