"""Deterministic providers for tests and benchmarks: scripted answers, latency, faults.

They implement SpecSoloist's `LLMProvider` protocol (`generate(prompt, temperature, model)`),
so they stand in for a real model without mocking anything else.
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Callable, Optional, Union

from ..errors import ProviderError

Answer = Union[str, Callable[[str], str]]
Match = Union[str, "re.Pattern[str]", Callable[[str], bool]]


class ScriptedProvider:
    """Answers the first rule whose matcher fits the prompt.

    A matcher is a substring, a compiled regex or a predicate; an answer is a string or a
    function of the prompt. Every prompt is kept in `prompts` so tests can inspect them.
    """

    def __init__(self, rules: list[tuple[Match, Answer]], default: Optional[Answer] = None):
        self.rules = list(rules)
        self.default = default
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def _fits(matcher: Match, prompt: str) -> bool:
        if isinstance(matcher, str):
            return matcher in prompt
        if isinstance(matcher, re.Pattern):
            return bool(matcher.search(prompt))
        return bool(matcher(prompt))

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        with self._lock:
            self.prompts.append(prompt)
        for matcher, answer in self.rules:
            if self._fits(matcher, prompt):
                return answer(prompt) if callable(answer) else answer
        if self.default is not None:
            return self.default(prompt) if callable(self.default) else self.default
        first = next((line for line in prompt.splitlines() if line.strip()), "")
        raise LookupError(f"ScriptedProvider has no rule for prompt starting {first.strip()[:80]!r}")


class LatencyProvider:
    """Sleeps before delegating: `seconds` times a factor drawn per prompt (seeded log-normal).

    The factor depends on the prompt and the seed only, so a run is repeatable and two systems
    compared on the same prompts see the same latencies.
    """

    def __init__(self, inner, seconds: float, sigma: float = 0.5, seed: int = 0):
        self.inner, self.seconds, self.sigma, self.seed = inner, seconds, sigma, seed

    def delay_for(self, prompt: str) -> float:
        rng = random.Random(f"{self.seed}:{prompt}")
        return self.seconds * rng.lognormvariate(0.0, self.sigma)

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        time.sleep(self.delay_for(prompt))
        return self.inner.generate(prompt, temperature=temperature, model=model)


class TransientProviderError(ProviderError):
    """A fault like a timeout, rate limit or 5xx: worth retrying (says so by its `transient` flag)."""

    def __init__(self, message: str = "transient fault"):
        super().__init__(message, status_code=503, transient=True)


class FlakyProvider:
    """Raises `TransientProviderError` on about `rate` of calls (seeded), never more than
    `max_in_a_row` times in a row for the same prompt."""

    def __init__(self, inner, rate: float = 0.3, seed: int = 0, max_in_a_row: int = 2):
        self.inner, self.rate, self.max_in_a_row = inner, rate, max_in_a_row
        self._rng = random.Random(seed)
        self._streak: dict[str, int] = {}
        self._lock = threading.Lock()
        self.faults = 0

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        with self._lock:
            streak = self._streak.get(prompt, 0)
            fail = streak < self.max_in_a_row and self._rng.random() < self.rate
            self._streak[prompt] = streak + 1 if fail else 0
            if fail:
                self.faults += 1
        if fail:
            raise TransientProviderError("503 Service Unavailable (injected fault)")
        return self.inner.generate(prompt, temperature=temperature, model=model)
