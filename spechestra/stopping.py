"""A stop asked for: Ctrl-C or SIGTERM while a build runs.

The signal lands in the main thread, but the work is in the task runner's threads: each spec's
fix loop, its test runs. They look here at their next step: no LLM call starts once a stop is
asked for (`check`), a running test process is ended, and a spec that stops keeps the answers
it paid for (its record) for the next build. An LLM call already in flight is let finish, so its
answer is kept too. Process-wide on purpose: a signal stops the whole command.
"""

from __future__ import annotations

import threading

from .errors import Interrupted

_asked = threading.Event()
_why = ""


def request(why: str) -> None:
    global _why
    _why = _why or why
    _asked.set()


def requested() -> bool:
    return _asked.is_set()


def reason() -> str:
    return _why


def check() -> None:
    """Raise `Interrupted` if a stop was asked for (before anything that costs: a call, a test run)."""
    if _asked.is_set():
        raise Interrupted(f"stopped ({_why}): no new LLM call was started; answers already paid for are kept")


def sleep(seconds: float) -> None:
    """`time.sleep` that ends early once a stop is asked for (a retry's back-off, say)."""
    _asked.wait(seconds)


def reset() -> None:
    """Forget an earlier stop (a long-lived process that goes on after one, and tests)."""
    global _why
    _why = ""
    _asked.clear()
