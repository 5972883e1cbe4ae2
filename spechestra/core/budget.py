"""A hard cap on what one run may spend: LLM calls and tokens.

Checked before every call (`reserve`), so once the cap is reached no new call starts; calls
already in flight finish and are counted (`spend`). A spec that hits the cap ends Skipped with
reason "budget"; the answers it already paid for stay on disk, so the next build with a larger
budget resumes without paying for them again.

One `Budget` per run. In one process its counts are in memory. When the run's specs are built in
other processes (Dask workers, on this machine or others), the build `share`s it through a ledger
file in the project (which every worker sees at the same path: builds need that anyway): each
reserve and spend is one read-modify-write of that file under an OS lock, so every process spends
from one count and the cap holds across them. Concurrent *runs* do not share one (a shared count
for the whole server would need an atomic counter there, which Prefect's API does not offer; cap
each run, and cap concurrency with the `spechestra-llm` limit).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from pathlib import Path
from typing import Iterator, Optional

from ..errors import BudgetReached, UsageError

__all__ = ["Budget", "BudgetReached"]


class Budget:
    def __init__(self, max_calls: Optional[int] = None, max_tokens: Optional[int] = None):
        for name, value in (("max LLM calls", max_calls), ("max tokens", max_tokens)):
            if value is not None and value < 0:
                raise UsageError(f"{name} must be 0 or more, got {value}")
        self.max_calls, self.max_tokens = max_calls, max_tokens
        self.calls = self.tokens = 0
        self.ledger: Optional[str] = None
        self._lock = threading.Lock()

    # Pickled to other processes (Dask): the lock stays behind, the ledger travels.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return self.max_calls is not None or self.max_tokens is not None

    @property
    def reached(self) -> bool:
        with self._counts():
            return self._reached()

    def _reached(self) -> bool:
        return ((self.max_calls is not None and self.calls >= self.max_calls)
                or (self.max_tokens is not None and self.tokens >= self.max_tokens))

    def calls_so_far(self) -> int:
        """Calls started so far, in every process spending from this budget."""
        with self._counts():
            return self.calls

    def reason(self) -> str:
        with self._counts():
            return self._describe()

    def reserve(self, prompt_tokens: int = 0) -> None:
        """Count one call about to start, or raise `BudgetReached` if it would go over: the cap
        already reached, or a prompt (`prompt_tokens`, estimated) larger than what is left, which
        would otherwise be paid in full before its answer counted."""
        with self._counts(write=True):
            if self._reached():
                raise BudgetReached(self._describe())
            if self.max_tokens is not None and self.tokens + prompt_tokens > self.max_tokens:
                raise BudgetReached(f"budget: this call's prompt alone is ~{prompt_tokens:,} tokens and "
                                    f"{max(0, self.max_tokens - self.tokens):,} of {self.max_tokens:,} are left; "
                                    "nothing was sent")
            self.calls += 1

    def spend(self, tokens: int) -> None:
        with self._counts(write=True):
            self.tokens += max(0, tokens)

    def _describe(self) -> str:
        parts = []
        if self.max_calls is not None:
            parts.append(f"{self.calls} of {self.max_calls} LLM calls")
        if self.max_tokens is not None:
            parts.append(f"{self.tokens} of {self.max_tokens} tokens")
        return "budget reached: " + ", ".join(parts)

    def stops_at(self, calls: int, tokens: int) -> Optional[str]:
        """Why a run that has spent `calls` and `tokens` would stop under this cap (None: it would not)."""
        spent = Budget(self.max_calls, self.max_tokens)
        spent.calls, spent.tokens = calls, tokens
        return spent.reason() if spent.reached else None

    # --- across processes ---------------------------------------------------------------------
    @contextlib.contextmanager
    def shared(self, ledger: Path) -> Iterator["Budget"]:
        """Inside: the counts live in `ledger` (starting from this object's), so copies of this
        budget in other processes spend from the same count; afterwards they are back in memory,
        whole, and the file is gone. Shared uncapped too: its count is then the true number of
        calls the run made, in every process (lost attempts included)."""
        ledger.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            ledger.unlink()  # a stale one, from a killed run of the same id: this object's counts win
        with self._lock:
            self.ledger = str(ledger)
        try:
            with self._counts(write=True):
                pass  # the file starts from this object's counts
            yield self
        finally:
            self.calls_so_far()  # the file's counts, read back into memory
            with self._lock:
                self.ledger = None
            with contextlib.suppress(FileNotFoundError):
                ledger.unlink()

    @contextlib.contextmanager
    def _counts(self, write: bool = False) -> Iterator[None]:
        """The counts, current: from the ledger (held under its OS lock) when shared."""
        with self._lock:
            if self.ledger is None:
                yield
                return
            with open(self.ledger, "a+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.seek(0)
                try:
                    counts = json.loads(handle.read() or "{}")
                except ValueError:
                    counts = {}
                self.calls, self.tokens = int(counts.get("calls", self.calls)), int(counts.get("tokens", self.tokens))
                yield
                if write:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps({"calls": self.calls, "tokens": self.tokens}))
                    handle.flush()

