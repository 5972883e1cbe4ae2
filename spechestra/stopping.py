"""A stop asked for: Ctrl-C or SIGTERM while a build runs.

The signal lands in the main thread, but the work is in the task runner's threads: each spec's
fix loop, its test runs. They look here at their next step: no LLM call starts once a stop is
asked for (`check`), a running test process is ended, and a spec that stops keeps the answers
it paid for (its record) for the next build. An LLM call already in flight is let finish, so its
answer is kept too. A signal's stop is the process's: it stops the whole command. A library
call's own stop (its server gone, a Ctrl-C its caller's thread got) is that call's (`scoped`).

Python runs a signal's handler in the main thread only once that thread has the GIL back from the
task threads: 3-60 ms after the signal on this machine, idle or loaded, long enough for a fix loop
to start one more call. While `listening`, the signal's byte reaches a pipe at once (Python's
wakeup fd, written where the signal lands) and the next thread to look here sees it first.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
import weakref
from typing import Callable, Iterator

from .errors import Interrupted

_asked = threading.Event()
_why = ""
#: A signal's name as a stop's reason says it.
HEARD: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
_pipe: tuple[int, int] | None = None  # made once and never closed: a thread may be reading it
_listening = False
#: Files a stop is written to, for a run's work in other processes (Dask or Ray workers), and the
#: file the work in this context follows. Per context, not per process: a worker may run tasks of
#: two builds, and one build's stop is not the other's.
_shared: set[str] = set()
_followed: contextvars.ContextVar[str] = contextvars.ContextVar("spechestra_stop_file", default="")


class Stop:
    """The stop of one call of the library (`scoped`): its server gone, or a Ctrl-C its caller's
    thread got. Not the process's: a later call resets the process's stop at its start, and must
    not so undo this one, whose threads may still be in Prefect's retries when that call starts."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.why = ""
        self.shared: set[str] = set()

    def request(self, why: str) -> None:
        self.why = self.why or why
        self.asked.set()
        _write(self.shared, self.why)


_scope: contextvars.ContextVar[Stop | None] = contextvars.ContextVar("spechestra_stop", default=None)
_scopes: "weakref.WeakSet[Stop]" = weakref.WeakSet()  # a signal stops every call in the process


@contextlib.contextmanager
def scoped() -> Iterator[Stop]:
    """Work in this context (and contexts copied from it: the flow's thread, the task runner's
    threads) stops when the yielded `Stop` is asked to, besides the process's own stop."""
    stop = Stop()
    _scopes.add(stop)  # a process's stop already asked for is seen by `requested` and `sleep` as it is
    token = _scope.set(stop)
    try:
        yield stop
    finally:
        _scope.reset(token)


def request(why: str) -> None:
    """The process's stop (a signal): every call in it stops."""
    global _why
    _why = _why or why
    _asked.set()
    for stop in list(_scopes):
        stop.asked.set()  # wakes their `sleep`s
    _write(_shared, _why)


def requested() -> bool:
    if _listening and not _asked.is_set():
        _hear()
    own = _scope.get()
    return _asked.is_set() or (own is not None and own.asked.is_set()) or _told()


def reason() -> str:
    own = _scope.get()
    if not _why and own is not None and own.why:
        return own.why
    if _why or not _told():
        return _why
    try:
        with open(_followed.get(), encoding="utf-8") as handle:
            return handle.read().strip() or "stopped"
    except OSError:
        return "stopped"


def share(path: str) -> Callable[[], None]:
    """Tell work in other processes of a stop through `path` (what `following` there reads).
    Returns what takes the file away again; a file left by an earlier holder is removed first."""
    with contextlib.suppress(OSError):
        os.remove(path)
    _shared.add(path)
    own = _scope.get()
    if own is not None:
        own.shared.add(path)
    if requested():
        _write({path}, reason())

    def unshare() -> None:
        _shared.discard(path)
        if own is not None:
            own.shared.discard(path)
        with contextlib.suppress(OSError):
            os.remove(path)
    return unshare


@contextlib.contextmanager
def following(path: str) -> Iterator[None]:
    """In a task that may run in another process than its flow: a stop is asked for once `path`
    exists (the flow's process writes it, `share`), besides this process's own signals."""
    token = _followed.set(path)
    try:
        yield
    finally:
        _followed.reset(token)


def _told() -> bool:
    path = _followed.get()
    return bool(path) and os.path.exists(path)


def _write(paths: set[str], why: str) -> None:
    for path in list(paths):
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(why)


def check() -> None:
    """Raise `Interrupted` if a stop was asked for (before anything that costs: a call, a test run)."""
    if requested():
        raise Interrupted(f"stopped ({reason()}): no new LLM call was started; answers already paid for are kept")


def sleep(seconds: float) -> None:
    """`time.sleep` that ends early once a stop is asked for (a retry's back-off, say)."""
    own = _scope.get()
    if own is None:
        _asked.wait(seconds)
    elif not _asked.is_set():
        own.asked.wait(seconds)  # the process's stop sets it too


def reset() -> None:
    """Forget an earlier stop of the process (a long-lived process that goes on after one, and
    tests). A call's own stop (`scoped`) is never forgotten: its work may still be winding down."""
    global _why
    _drain()  # a signal heard before this stop was forgotten is not a new one
    _why = ""
    _asked.clear()


def listen() -> Callable[[], None]:
    """Hear SIGINT and SIGTERM as they land (main thread only, with a Python handler installed for
    them: the wakeup fd is written by Python's own handler). Returns what puts back the wakeup fd
    there was before."""
    global _pipe, _listening
    if _pipe is None:
        _pipe = os.pipe()
        for end in _pipe:
            os.set_blocking(end, False)
    previous = signal.set_wakeup_fd(_pipe[1], warn_on_full_buffer=False)
    _listening = True

    def stop_listening() -> None:
        global _listening
        _listening = False
        signal.set_wakeup_fd(previous)
    return stop_listening


def _hear() -> None:
    for number in _drain():
        if number in HEARD:
            request(HEARD[number])
            return


def _drain() -> bytes:
    try:
        return os.read(_pipe[0], 512) if _pipe is not None else b""
    except OSError:  # nothing there (EAGAIN)
        return b""
