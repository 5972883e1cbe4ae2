"""The gate every LLM call passes when the `spechestra-llm` limit is active: one slot per call.

A slot is a *lease* on the server, renewed here while the call runs; the server's repossessor
frees it once it is not renewed (a killed process) within `LEASE_SECONDS`. The gate keeps two
faults apart from the provider's: a slot that cannot be taken is a `LimitError` (no call was
made), and a slot that cannot be given back is logged, never raised, because the answer is
already paid for and raising would buy it again.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import os
import queue
import random
import threading
import time
from typing import Iterator, Optional
from uuid import UUID

import httpx

from .. import stopping
from ..errors import LimitError
from ..settings import settings
from .prefect import client, configured_api_url, logger

#: Prefect's shortest lease (its API refuses less): a dead holder's slot is back within about
#: this long plus one pass of the server's repossessor (15 s by default).
LEASE_SECONDS = 60.0


#: How long a slot stays with a spec after its call, for the spec's next call. A spec asks for its
#: tests right after its code (a few ms apart): keeping the slot saves a give-back and a take (on
#: a busy local server 15-200 ms each, a 1.15x slower 5-spec build). Short enough that nothing
#: else happens meanwhile: the slot is never held through a test run or a wait.
LINGER_SECONDS = 0.05


class Gate:
    """One spec's gate: a slot per call, on a lease renewed while the call runs, kept
    LINGER_SECONDS for its next call.

    Not Prefect's `concurrency()`: it queues every acquisition of a limit in one service, and
    its client waits 2 s before retrying a 503, which a local (SQLite) server answers whenever
    two writes collide; one such wait held every other call's slot back behind it (a 5-spec
    build took 2-2.4x as long with an uncontended limit). Here each call asks on its own and
    retries "not now" within 5-500 ms, until SPECHESTRA_LLM_LIMIT_WAIT. Nor Prefect's lease
    keeper, which starts a thread and a client per call and renews at once (80 ms a call here,
    against 12 ms): one client per process and one thread renew every lease this process holds."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._kept: Optional[tuple] = None  # (lease, client) between two calls

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            held, self._kept = self._kept, None
        if held is None:
            lease = _take(self.name, settings.llm_limit_wait)
            if lease is None:  # the limit was deleted meanwhile: nothing to hold
                yield
                return
            held = (lease, _client())  # renewed and given back through the API that gave it
            _RENEWER.hold(*held)
        try:
            yield
        finally:
            with self._lock:
                self._kept = held
            _LINGER.later(self, held)

    def give_back_if_kept(self, held: tuple) -> None:
        with self._lock:
            if self._kept is not held:
                return  # taken again by the spec's next call
            self._kept = None
        _RENEWER.drop(held[0])
        _RELEASER.give_back(held[0], self.name, held[1])


class _Helper:
    """One daemon thread running `_loop`, started on first use (again in a forked child, which
    inherits the object but not the thread)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._starting = threading.Lock()

    def _running(self) -> None:
        with self._starting:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        raise NotImplementedError


class _Linger(_Helper):
    """Gives back each kept slot when its time is up, from one thread."""

    def __init__(self) -> None:
        super().__init__("spechestra-slot-linger")
        self._due: list = []  # (when, tie, gate, held)
        self._wake = threading.Condition()
        self._tie = 0

    def later(self, gate: Gate, held: tuple) -> None:
        self._running()
        with self._wake:
            self._tie += 1
            heapq.heappush(self._due, (time.monotonic() + LINGER_SECONDS, self._tie, gate, held))
            self._wake.notify()

    def now(self) -> None:
        """Give back every kept slot at once (a spec's task ends, or the process exits)."""
        with self._wake:
            due, self._due = self._due, []
        for _, _, gate, held in due:
            gate.give_back_if_kept(held)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _, _, gate, held = heapq.heappop(self._due)
            gate.give_back_if_kept(held)


_LINGER = _Linger()


#: Pauses between attempts to take a slot the server could not give at once: from the first,
#: doubling, to the longest (a full limit's own Retry-After is honoured instead). A busy SQLite
#: server's refusal is over within milliseconds.
FIRST_PAUSE, LONGEST_PAUSE = 0.005, 0.5
#: Answers that mean "not now": 423 the limit is full; 503 (SQLite busy: the acquisition's read
#: then write collides with another writer and fails at once), 502 and 504 a blip.
NOT_NOW = frozenset({423, 502, 503, 504})


def _take(name: str, wait: float) -> Optional[UUID]:
    deadline = time.monotonic() + wait
    pause = FIRST_PAUSE
    while True:
        stopping.check()  # a Ctrl-C ends the wait for a slot: no call would start after it anyway
        hint: Optional[float] = None
        try:
            reply = _ask_once(name)
            if reply.status_code == 200:
                answer = reply.json()
                return UUID(answer["lease_id"]) if answer.get("limits") else None
            if reply.status_code not in NOT_NOW:
                raise LimitError(f"could not take a slot of concurrency limit {name!r} ({reply.status_code}: "
                                 f"{' '.join(reply.text.split())[:200]})", limit=name)
            if reply.status_code == 423:
                hint = _seconds(reply.headers.get("Retry-After"))
        except (httpx.TransportError, OSError):
            _forget_client()  # the server restarting: try again, as for a blip, on a new connection
        except LimitError:
            raise
        except Exception as exc:
            raise LimitError(f"could not take a slot of concurrency limit {name!r} ({type(exc).__name__}: {exc})",
                             limit=name) from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise LimitError(f"no slot of concurrency limit {name!r} came free within {wait:g}s "
                             "(SPECHESTRA_LLM_LIMIT_WAIT); `spechestra limits` shows who holds them", limit=name)
        stopping.sleep(min(left, (hint if hint is not None else pause) * random.uniform(0.8, 1.2)))
        pause = min(pause * 2, LONGEST_PAUSE)


#: One request for a slot at a time from this process: a burst of them (specs starting together)
#: made a local SQLite server refuse most (15 refusals for 10 slots, 100-200 ms lost at the start
#: of a build); one after another each takes a few ms. Requests from other processes still race.
_ASKING = threading.Lock()


def _ask_once(name: str):
    """One request for one slot, answered as the server answers it. Sent by the Prefect client's
    own HTTP client (its address, auth and TLS) but past its retry wrapper, which sleeps 2 s on
    a 503 even when told to retry nothing; a server that wants a CSRF token gets the wrapper."""
    body = {"names": [name], "slots": 1, "mode": "concurrency", "lease_duration": LEASE_SECONDS}
    c = _client()
    http = c._client
    with _ASKING:
        reply = httpx.Client.send(http, http.build_request("POST", "/v2/concurrency_limits/increment-with-lease",
                                                           json=body))
    if reply.status_code == 403 and "csrf" in reply.text.lower():
        try:
            reply = c.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency",
                                                             lease_duration=LEASE_SECONDS)
        except httpx.HTTPStatusError as exc:
            reply = exc.response
    return reply


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _give_back(lease: UUID, name: str, through) -> None:
    """Never raises: the answer is paid for, and raising would buy it again."""
    try:
        through.release_concurrency_slots_with_lease(lease)
    except Exception as exc:
        _forget_client()
        logger().warning("could not give back a slot of %s (%s: %s); the server frees it when its lease ends "
                         "(within %gs)", name, type(exc).__name__, exc, LEASE_SECONDS + 15)


# --- one client per process and API, kept open (a connection, not one per request) --------------
_CLIENTS: dict[tuple[int, str], object] = {}
_CLIENTS_LOCK = threading.Lock()


def _client():
    """This process's open client for the API it talks to now (a fork or a new API gets its own)."""
    key = (os.getpid(), configured_api_url() or "")
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is None:
            found = _CLIENTS[key] = client().__enter__()
        return found


def _forget_client() -> None:
    """After a transport error: the next request connects anew. The old client is not closed
    here: a lease being renewed or given back may still hold it (it closes when unused)."""
    with _CLIENTS_LOCK:
        for key in [k for k in _CLIENTS if k[0] == os.getpid()]:
            _CLIENTS.pop(key)


class _Renewer(_Helper):
    """Renews every lease this process holds, before it ends, from one thread. A call shorter
    than RENEW_AFTER costs no renewal at all; a killed process stops renewing, and the server's
    repossessor frees its slots within about LEASE_SECONDS."""

    RENEW_AFTER = LEASE_SECONDS / 3

    def __init__(self) -> None:
        super().__init__("spechestra-lease-renewer")
        self._held: dict[UUID, list] = {}  # lease -> [when last taken or renewed, the client it came from]
        self._lock = threading.Lock()

    def hold(self, lease: UUID, through) -> None:
        self._running()
        with self._lock:
            self._held[lease] = [time.monotonic(), through]

    def drop(self, lease: UUID) -> None:
        with self._lock:
            self._held.pop(lease, None)

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                due = [(lease, held[1]) for lease, held in self._held.items()
                       if time.monotonic() - held[0] >= self.RENEW_AFTER]
            for lease, through in due:
                try:
                    through.renew_concurrency_lease(lease_id=lease, lease_duration=LEASE_SECONDS)
                except Exception as exc:
                    gone = getattr(getattr(exc, "response", None), "status_code", 0) in (404, 410)
                    logger().warning("could not renew a concurrency slot's lease (%s: %s); %s", type(exc).__name__,
                                     exc, "the server no longer holds it" if gone else "trying again")
                    if gone:
                        self.drop(lease)
                    continue
                with self._lock:
                    if lease in self._held:
                        self._held[lease][0] = time.monotonic()


_RENEWER = _Renewer()


class _Releaser(_Helper):
    """Gives slots back from one thread, so the call that is done does not wait for the server
    (15-30 ms a call on a busy local server). A slot is given back a moment later, never
    sooner, so the limit only ever counts more calls in flight than there are; whatever is
    still queued when the process exits is given back then."""

    def __init__(self) -> None:
        super().__init__("spechestra-slot-releaser")
        self._queue: queue.Queue = queue.Queue()

    def give_back(self, lease: UUID, name: str, through) -> None:
        self._running()
        self._queue.put((lease, name, through))

    def _loop(self) -> None:
        while True:
            lease, name, through = self._queue.get()
            try:
                _give_back(lease, name, through)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (a bounded time) until every queued slot is given back."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


_RELEASER = _Releaser()


def settle() -> None:
    """Give back the slots kept for a next call, and wait until this process has given back
    every slot it was done with (at the end of a spec's task or a compose step)."""
    _LINGER.now()
    _RELEASER.drain()


atexit.register(settle)
