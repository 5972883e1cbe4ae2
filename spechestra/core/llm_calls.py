"""How one spec's build talks to its provider: retried, gated, counted, and resumable.

A task-level retry of a whole spec would buy again every answer it already has (the compiled code,
the tests) and could fail on a different prompt each time, so transient faults are retried per
call here, with exponential backoff and jitter. Answers received in one attempt of a task are kept
in order (on disk, beside the project's results): when Prefect retries the task, or a killed build
is started again, the same prompts in the same order are answered from that record instead of the
provider. Every real call holds one slot of a Prefect concurrency limit (a
`gate`), so a rate limit holds however many builds run at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import urllib.error
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Optional, Union

from .. import stopping
from ..errors import Interrupted, LimitError
from . import pricing, usage
from .budget import Budget, BudgetReached
from .fileio import masked_write
from .options import RETRIES, RETRY_DELAY

#: HTTP statuses worth another try: timeout, too early, rate limited, server errors, overloaded.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 529})
#: Exception types (by class name, so no client library is imported) that mean the call never
#: got an answer: timeouts, refused or dropped connections (httpx, openai, anthropic SDKs).
TRANSIENT_TYPES = frozenset({"TimeoutException", "ConnectTimeout", "ReadTimeout", "ConnectError", "ReadError",
                             "RemoteProtocolError", "APIConnectionError", "APITimeoutError", "RemoteDisconnected",
                             "IncompleteRead"})


def status_code(exc: BaseException) -> Optional[int]:
    """The HTTP status an exception carries (urllib's `code`, httpx/SDK `status_code`, a response's)."""
    for holder in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "code", "status"):
            value = getattr(holder, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
    return None


def chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """A provider fault worth retrying, decided by exception type and HTTP status along the
    exception's chain (SpecSoloist wraps urllib's HTTPError in a RuntimeError), never by the
    words of a message: a test's output that says "timed out" or "500" is not a provider fault."""
    for link in chain(exc):
        if isinstance(link, (BudgetReached, LimitError, Interrupted)):
            return False  # no call was made: retrying cannot help, and it is no provider fault
        if getattr(link, "transient", False):
            return True
        code = status_code(link)
        if code is not None:
            return code in TRANSIENT_STATUS
        if isinstance(link, (TimeoutError, ConnectionError)):
            return True
        if isinstance(link, urllib.error.URLError) and not isinstance(link, urllib.error.HTTPError):
            return True  # no answer at all: DNS, refused, reset
        if any(cls.__name__ in TRANSIENT_TYPES for cls in type(link).__mro__):
            return True
    return False


def backoff(attempt: int, base: float, rng: random.Random) -> float:
    """base * 2**attempt, spread by +/-50% so parallel specs do not retry in lockstep."""
    return base * (2 ** attempt) * rng.uniform(0.5, 1.5)


Answer = tuple  # (sha256 of model and prompt, response)


class MemoryRecord:
    """Answers kept in a list the caller owns (tests; one process)."""

    def __init__(self, items: Optional[list] = None):
        self.items = items if items is not None else []

    def load(self) -> list:
        return list(self.items)

    def save(self, answers: list) -> None:
        self.items[:] = answers

    def clear(self) -> None:
        self.items.clear()


class FileRecord:
    """Answers kept in a JSON file, written atomically after every paid call."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)

    def load(self) -> list:
        try:
            return [tuple(a) for a in json.loads(self.path.read_text(encoding="utf-8"))]
        except (OSError, ValueError):
            return []

    def save(self, answers: list) -> None:
        masked_write(self.path, json.dumps([list(a) for a in answers]))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def make_ready(provider) -> None:
    """A provider made on first use (`LazyProvider`, or one wrapping it) made now, so a missing key
    is raised before anything counts a call; any other provider is left as it is."""
    ready = getattr(provider, "ready", None)
    if callable(ready):
        ready()


def guarded_call(call: Callable[[], str], budget: Budget, gate: Callable[[], ContextManager] = contextlib.nullcontext,
                 on_start: Callable[[], None] = lambda: None, prompt: str = "") -> str:
    """One LLM call held to what holds every call Spechestra makes (a spec's, a compose step's):
    the run's budget first (`BudgetReached`: no call starts past the cap, nor one whose `prompt`
    alone would go over it), then one slot of the concurrency `gate` while it is in flight.
    `usage` is reset just before, so the caller reads what this call used."""
    stopping.check()  # Ctrl-C: no call starts, not even one that was waiting for a slot
    budget.reserve(usage.estimate(prompt, "").input_tokens if prompt else 0)
    with gate():
        stopping.check()
        on_start()
        usage.start()
        return call()


class SpecProvider:
    """The provider as one spec's build sees it (see the module docstring)."""

    def __init__(self, inner, record: Union[list, MemoryRecord, FileRecord], retries: int = RETRIES.default,
                 delay: float = RETRY_DELAY.default,
                 gate: Callable[[], ContextManager] = contextlib.nullcontext,
                 log: Callable[[str], None] = print, seed: Optional[str] = None, budget: Optional[Budget] = None):
        self.inner, self.retries, self.delay, self.gate, self.log = inner, retries, delay, gate, log
        self.budget = budget if budget is not None else Budget()
        self.store = MemoryRecord(record) if isinstance(record, list) else record
        self.previous = self.store.load()  # answers from earlier attempts of this task, in call order
        self.answers: list = []
        self.calls = self.retried = self.reused = 0
        self.input_tokens = self.output_tokens = 0
        self.tokens_estimated = False
        self.cost_usd: Optional[float] = None
        self._prices = pricing.price_table()
        self._replaying = True
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        key = hashlib.sha256(f"{model}\0{prompt}".encode("utf-8")).hexdigest()
        with self._lock:
            index = len(self.answers)
            earlier = self.previous[index] if self._replaying and index < len(self.previous) else None
            if earlier is not None and earlier[0] == key:
                self.answers.append(earlier)
                self.reused += 1
                return earlier[1]
            self._replaying = False
        return self._call(prompt, temperature, model, key)

    def _keep(self, key: str, response: str, unkept: list) -> str:
        """On disk the moment it arrives, before the slot is given back or the budget counted (a
        server call and a lock): a process killed in between would otherwise lose what it paid for.
        A write that fails is no provider fault: its error goes to `unkept`, raised by the caller
        once the call is counted, never through the provider's retries."""
        with self._lock:
            self.answers.append((key, response))
            try:
                self.store.save(self.answers)  # after divergence the old tail is useless: replace it
            except Exception as exc:  # noqa: BLE001 - raised by `_call`, as it was
                unkept.append(exc)
        return response

    def _call(self, prompt: str, temperature: float, model: Optional[str], key: str) -> str:
        make_ready(self.inner)  # a provider made on first use: made before a call counts
        attempt = 0
        unkept: list = []
        while True:
            try:
                response = guarded_call(
                    lambda: self._keep(key, self.inner.generate(prompt, temperature=temperature, model=model), unkept),
                    self.budget, self.gate, on_start=self._started, prompt=prompt)
                self._count(usage.of_call(prompt, response))
            except (BudgetReached, LimitError, Interrupted):
                raise
            except Exception as exc:
                self._count(usage.last())  # a failed call may still have been billed
                if attempt >= self.retries or not is_transient(exc):
                    raise
                wait = max(backoff(attempt, self.delay, self._rng), min(retry_after_of(exc) or 0.0, MAX_RETRY_AFTER))
                attempt += 1
                with self._lock:
                    self.retried += 1
                self.log(f"provider call failed ({type(exc).__name__}: {exc}); "
                         f"retry {attempt}/{self.retries} in {wait:.1f}s")
                stopping.sleep(wait)  # a Ctrl-C ends the wait: the next try then refuses to start
                continue
            if unkept:
                raise unkept[0]
            return response

    def _started(self) -> None:
        with self._lock:
            self.calls += 1

    def _count(self, used: Optional[usage.Usage]) -> None:
        if used is None:
            return
        with self._lock:
            self.input_tokens += used.input_tokens
            self.output_tokens += used.output_tokens
            self.tokens_estimated = self.tokens_estimated or used.estimated
            cost = pricing.cost(used.model, used.input_tokens, used.output_tokens, self._prices)
            if cost is not None:
                self.cost_usd = (self.cost_usd or 0.0) + cost
        self.budget.spend(used.total)


#: The longest server-requested wait we honour; beyond it the call fails like any other.
MAX_RETRY_AFTER = 600.0


def retry_after_of(exc: BaseException) -> Optional[float]:
    """The server's own Retry-After (seconds), found anywhere on the exception's chain."""
    for link in chain(exc):
        value = getattr(link, "retry_after", None)
        if isinstance(value, (int, float)) and value >= 0:
            return float(value)
    return None
