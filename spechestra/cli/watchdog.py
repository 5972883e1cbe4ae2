"""Ending a command promptly when its Prefect server goes away, and never because it is busy
(`server.watch` tells the two apart).

Nothing finished is lost: built specs are in the project's cache, the build lock is released by
the OS, and the next build marks the abandoned run Crashed and resumes from the cache.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable

from rich.console import Console

from ..errors import ServerError
from ..server.temporary import wait_ready
from ..server.watch import POLL, Silence
from ..streams import fresh_line

THREAD_NAME = "spechestra-server-watchdog"
#: Set when the command is the process's own (`main()` without argv): the watch then lasts until
#: the process exits, since Prefect's exit-time flush of events and logs waits on a dead server
#: for minutes. `main(argv)` called in-process ends it with the command: a server that goes away
#: afterwards must not end the caller's process.
_until_exit = threading.Event()


def watch_until_exit(on: bool) -> None:
    if on:
        _until_exit.set()
    else:
        _until_exit.clear()


def watch_server(err: Console, api_url: str) -> Callable[[], None]:
    """Start the watchdog (a daemon thread) on the server this command talks to; returns what ends
    it once the command's body is over (nothing, when the watch lasts until the process exits)."""
    over = threading.Event()

    def stop(why: str) -> None:
        fresh_line()
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
        while not over.wait(POLL):
            why, warning = silence.check()
            if over.is_set():
                return
            if why:
                stop(why)
            if warning:
                err.print(f"[yellow]waiting:[/] {warning}", highlight=False)

    threading.Thread(target=watch, name=THREAD_NAME, daemon=True).start()
    return (lambda: None) if _until_exit.is_set() else over.set
