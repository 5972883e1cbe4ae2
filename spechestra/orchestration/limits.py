"""The LLM concurrency limit (a Prefect global concurrency limit): the gate each call passes,
and what `spechestra limits` shows and repairs.

A slot is a *lease* on the server: Prefect renews it while the call runs, and the server's
repossessor frees it once it is not renewed (a killed process) within `LEASE_SECONDS`. The
gate keeps two faults apart from the provider's: a slot that cannot be taken is a `LimitError`
(no call was made), and a slot that cannot be given back is logged, never raised, because the
answer is already paid for and raising would buy it again.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Optional
from uuid import UUID

import httpx
from prefect.exceptions import ObjectNotFound

from ..errors import LimitError
from ..settings import settings
from .prefect import client, configured_api_url, logger

#: Prefect's shortest lease (its API refuses less): a dead holder's slot is back within about
#: this long plus one pass of the server's repossessor (15 s by default).
LEASE_SECONDS = 60.0


def active_limit(name: Optional[str]) -> Optional[str]:
    """`name` if a global concurrency limit of that name exists and is active, else None.

    Checked once per build, so builds without a limit make no extra API call per LLM call.
    """
    if not name:
        return None
    try:
        with client() as c:
            return name if c.read_global_concurrency_limit_by_name(name).active else None
    except Exception:  # ObjectNotFound: no such limit configured
        return None


def limit_slot(name: Optional[str]) -> Callable[[], ContextManager]:
    """A context-manager factory holding one slot of global concurrency limit `name` (if any)."""
    if not name:
        return contextlib.nullcontext
    return lambda: _slot(name)


#: Pauses between attempts to take a slot the server could not give at once: from the first,
#: doubling, to the longest (a full limit's own Retry-After is honoured instead).
FIRST_PAUSE, LONGEST_PAUSE = 0.02, 0.5
#: Answers that mean "not now": 423 the limit is full; 503 (SQLite busy: the acquisition's read
#: then write collides with another writer and fails at once), 502 and 504 a blip.
NOT_NOW = frozenset({423, 502, 503, 504})


@contextlib.contextmanager
def _slot(name: str) -> Iterator[None]:
    """One slot for one call, on a lease renewed while the call runs.

    Not Prefect's `concurrency()`: it queues every acquisition of a limit in one service, and
    its client waits 2 s before retrying a 503, which a local (SQLite) server answers whenever
    two writes collide; one such wait held every other call's slot back behind it (a 5-spec
    build took 2-2.4x as long with an uncontended limit). Here each call asks on its own and
    retries "not now" within 20-500 ms, until SPECHESTRA_LLM_LIMIT_WAIT. Nor Prefect's lease
    keeper, which starts a thread and a client per call and renews at once (80 ms a call here,
    against 15 ms): one client per process and one thread renew every lease this process holds."""
    lease = _take(name, settings.llm_limit_wait)
    if lease is None:  # the limit was deleted meanwhile: nothing to hold
        yield
        return
    _RENEWER.hold(lease, _client())  # renewed through the API that gave it (not the renewer thread's)
    try:
        yield
    finally:
        _RENEWER.drop(lease)
        _give_back(lease, name)


def _take(name: str, wait: float) -> Optional[UUID]:
    deadline = time.monotonic() + wait
    pause = FIRST_PAUSE
    while True:
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
        time.sleep(min(left, (hint if hint is not None else pause) * random.uniform(0.8, 1.2)))
        pause = min(pause * 2, LONGEST_PAUSE)


def _ask_once(name: str):
    """One request for one slot, answered as the server answers it. Sent by the Prefect client's
    own HTTP client (its address, auth and TLS) but past its retry wrapper, which sleeps 2 s on
    a 503 even when told to retry nothing; a server that wants a CSRF token gets the wrapper."""
    body = {"names": [name], "slots": 1, "mode": "concurrency", "lease_duration": LEASE_SECONDS}
    c = _client()
    http = c._client
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


def _give_back(lease: UUID, name: str) -> None:
    """Never raises: the answer is paid for, and raising would buy it again."""
    try:
        _client().release_concurrency_slots_with_lease(lease)
    except Exception as exc:
        _forget_client()
        logger().warning("could not give back a slot of %s (%s: %s); the server frees it when its lease ends "
                         "(within %gs)", name, type(exc).__name__, exc, LEASE_SECONDS + 15)


# --- one client per process and API, kept open (a new one cost ~20 ms per request here) ---------
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
    """Drop this process's clients after a transport error: the next request connects anew."""
    with _CLIENTS_LOCK:
        for key in [k for k in _CLIENTS if k[0] == os.getpid()]:
            stale = _CLIENTS.pop(key)
            with contextlib.suppress(Exception):
                stale.__exit__(None, None, None)  # type: ignore[attr-defined]


class _Renewer:
    """Renews every lease this process holds, before it ends, from one thread. A call shorter
    than RENEW_AFTER costs no renewal at all; a killed process stops renewing, and the server's
    repossessor frees its slots within about LEASE_SECONDS."""

    RENEW_AFTER = LEASE_SECONDS / 3

    def __init__(self) -> None:
        self._held: dict[UUID, list] = {}  # lease -> [when last taken or renewed, the client it came from]
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0

    def hold(self, lease: UUID, through) -> None:
        with self._lock:
            self._held[lease] = [time.monotonic(), through]
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="spechestra-lease-renewer", daemon=True)
                self._thread.start()

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


# --- `spechestra limits` --------------------------------------------------------------------------
@dataclass(frozen=True)
class LimitStatus:
    name: str
    limit: int
    active_slots: int
    active: bool


def status(name: str) -> Optional[LimitStatus]:
    """The limit as the server counts it, or None when there is no such limit."""
    try:
        with client() as c:
            gcl = c.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    return LimitStatus(gcl.name, gcl.limit, gcl.active_slots, gcl.active)


def reset(name: str) -> LimitStatus:
    """Count no slot as held: for slots a server restart orphaned (leases kept only in the
    server's memory are lost with it; with file lease storage the server frees them itself)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    if status(name) is None:
        raise LimitError(f"no concurrency limit named {name!r} (create it: prefect gcl create {name} --limit N)",
                         limit=name)
    with client() as c:
        c.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        gcl = c.read_global_concurrency_limit_by_name(name)
    return LimitStatus(gcl.name, gcl.limit, gcl.active_slots, gcl.active)
