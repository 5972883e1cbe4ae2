"""Metering wrapper: every LLM call through Spechestra is recorded here.

Later stages report cost, concurrency and per-spec provider calls from these records, so the
meter sits between every caller and every provider, real or fake.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional


@dataclass
class CallRecord:
    task: str            # Prefect task run name, or "" outside a task
    started: float       # time.time() at the start of the call
    ended: float
    prompt_chars: int
    response_chars: int
    model: Optional[str]
    error: Optional[str] = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def as_dict(self) -> dict:
        return asdict(self) | {"seconds": round(self.seconds, 4)}


class Meter:
    """Thread-safe list of call records, shared by every provider wrapped with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def snapshot(self) -> list[CallRecord]:
        with self._lock:
            return list(self.records)

    @property
    def calls(self) -> int:
        return len(self.snapshot())

    def calls_for(self, task_prefix: str) -> int:
        return sum(1 for r in self.snapshot() if r.task.startswith(task_prefix))

    def summary(self) -> dict:
        recs = self.snapshot()
        return {
            "calls": len(recs),
            "errors": sum(1 for r in recs if r.error),
            "prompt_chars": sum(r.prompt_chars for r in recs),
            "response_chars": sum(r.response_chars for r in recs),
            # ~4 characters per token is the usual rough estimate for English and code.
            "approx_tokens": (sum(r.prompt_chars + r.response_chars for r in recs)) // 4,
            "llm_seconds": round(sum(r.seconds for r in recs), 3),
        }

    def max_concurrency(self) -> int:
        """Most calls in flight at one instant, from the recorded start/end times."""
        events = sorted([(r.started, 1) for r in self.snapshot()] + [(r.ended, -1) for r in self.snapshot()],
                        key=lambda e: (e[0], e[1]))
        level = peak = 0
        for _, delta in events:
            level += delta
            peak = max(peak, level)
        return peak


def _no_label() -> str:
    return ""


class MeteredProvider:
    """An `LLMProvider` that records each call in a `Meter` and delegates to `inner`.

    `label()` names the caller of each call (the orchestration layer passes the current task
    run's name), so this module needs nothing from Prefect.
    """

    def __init__(self, inner, meter: Optional[Meter] = None, label: Callable[[], str] = _no_label):
        self.inner = inner
        self.meter = meter if meter is not None else Meter()
        self.label = label

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        started = time.time()
        error = None
        response = ""
        try:
            response = self.inner.generate(prompt, temperature=temperature, model=model)
            return response
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.meter.add(CallRecord(task=self.label(), started=started, ended=time.time(),
                                      prompt_chars=len(prompt), response_chars=len(response or ""),
                                      model=model, error=error))

    def __getstate__(self):
        # The meter holds a lock; a pickled copy (e.g. for a distributed worker) starts a fresh one.
        return {"inner": self.inner, "meter": None, "label": self.label}

    def __setstate__(self, state):
        self.inner, self.label = state["inner"], state.get("label", _no_label)
        self.meter = Meter()
