"""A hard cap on what one run may spend: LLM calls and tokens.

Checked before every call (`reserve`), so once the cap is reached no new call starts; calls
already in flight finish and are counted (`spend`). A spec that hits the cap ends Skipped with
reason "budget"; the answers it already paid for stay on disk, so the next build with a larger
budget resumes without paying for them again. One `Budget` per run, in memory: concurrent builds
do not share one (a shared count would need an atomic counter on the server, which Prefect's
API does not offer; cap each run instead, or cap concurrency with the `spechestra-llm` limit).
"""

from __future__ import annotations

import threading
from typing import Optional

from ..errors import BudgetReached, UsageError

__all__ = ["Budget", "BudgetReached"]


class Budget:
    def __init__(self, max_calls: Optional[int] = None, max_tokens: Optional[int] = None):
        for name, value in (("max LLM calls", max_calls), ("max tokens", max_tokens)):
            if value is not None and value < 0:
                raise UsageError(f"{name} must be 0 or more, got {value}")
        self.max_calls, self.max_tokens = max_calls, max_tokens
        self.calls = self.tokens = 0
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return self.max_calls is not None or self.max_tokens is not None

    @property
    def reached(self) -> bool:
        with self._lock:
            return self._reached()

    def _reached(self) -> bool:
        return ((self.max_calls is not None and self.calls >= self.max_calls)
                or (self.max_tokens is not None and self.tokens >= self.max_tokens))

    def reason(self) -> str:
        with self._lock:
            return self._describe()

    def reserve(self) -> None:
        """Count one call about to start, or raise `BudgetReached` if it would go over."""
        with self._lock:
            if self._reached():
                raise BudgetReached(self._describe())
            self.calls += 1

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

    def spend(self, tokens: int) -> None:
        with self._lock:
            self.tokens += max(0, tokens)

