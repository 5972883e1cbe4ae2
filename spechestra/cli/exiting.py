"""A command's own process ends once its work is done, without Python's teardown of its modules.

CPython 3.11 before 3.11.8 can crash with SIGSEGV in that teardown when an asyncio object is
printed after `_asyncio` has cleared its state (CPython gh-113566), and Prefect keeps event loops
with pending tasks in daemon threads: a build that had finished, reported and flushed everything
ended with -11 instead of 0 (once in CI). The teardown only frees memory the OS frees anyway, so
the process runs what Python runs before it, in Python's order, and then ends:

1. `threading._shutdown`: the threads' own exit hooks (Prefect sends its last events and logs
   there) and the joins of non-daemon threads;
2. the `atexit` handlers (Prefect's loop threads, logging's final flush);
3. a flush of stdout and stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    try:
        _shutdown = getattr(threading, "_shutdown", None)  # the interpreter's own first step at exit
        if _shutdown is not None:
            _shutdown()
        atexit._run_exitfuncs()
    except KeyboardInterrupt:  # a second Ctrl-C while Prefect sends its last records: leave now
        code = 128 + signal.SIGINT
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(code)
