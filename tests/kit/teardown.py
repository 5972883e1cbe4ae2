"""A build's command at its exit: the provider's process does what LLM client libraries do there
(an `atexit` handler; a non-daemon thread that sends what it holds once the main thread is done),
writing `<EXIT_WORK>.atexit` and `<EXIT_WORK>.thread`, and then crashes in Python's teardown of
its modules, as CPython 3.11.7 can (gh-113566; seen in CI as a finished build's exit code -11):
the provider's module holds an object that sends its process SIGSEGV when the teardown deletes
it. Only the process that made the provider does any of this (not the pytest runs it starts)."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from pathlib import Path

from kit.build import chain_provider

_crash_in_teardown = None


class _CrashInTeardown:
    def __del__(self, kill=os.kill, pid=os.getpid(), sigsegv=signal.SIGSEGV):
        kill(pid, sigsegv)


def chain_provider_with_exit_work():
    global _crash_in_teardown
    work = Path(os.environ["EXIT_WORK"])
    if _crash_in_teardown is None:
        atexit.register(work.with_suffix(".atexit").write_text, "sent")

        def send_when_main_ends():
            threading.main_thread().join()
            work.with_suffix(".thread").write_text("sent")

        threading.Thread(target=send_when_main_ends, name="sdk-flusher", daemon=False).start()
        _crash_in_teardown = _CrashInTeardown()
    return chain_provider()
