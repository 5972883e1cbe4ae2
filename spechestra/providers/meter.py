"""Metering wrapper: every LLM call through Spechestra is recorded here.

Later stages report cost, concurrency and per-spec provider calls from these records, so the
meter sits between every caller and every provider, real or fake.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from specsoloist.providers import LLMProvider

from .. import redaction
from ..core import pricing, usage
from ..core.llm_calls import chain, is_transient, make_ready, retry_after_of, status_code
from ..errors import AnswerError, ConfigurationError, ProviderError


@dataclass
class CallRecord:
    task: str            # Prefect task run name, or "" outside a task
    started: float       # time.time() at the start of the call
    ended: float
    prompt_chars: int
    response_chars: int
    model: Optional[str]
    error: Optional[str] = None
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = True  # False when the provider reported the call's usage

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

    def summary(self) -> dict:
        recs = self.snapshot()
        return {
            "calls": len(recs),
            "errors": sum(1 for r in recs if r.error),
            "prompt_chars": sum(r.prompt_chars for r in recs),
            "response_chars": sum(r.response_chars for r in recs),
            "input_tokens": sum(r.input_tokens for r in recs),
            "output_tokens": sum(r.output_tokens for r in recs),
            "tokens": sum(r.input_tokens + r.output_tokens for r in recs),
            # True when any call's figure is an estimate (~4 characters per token): shown as "~".
            "tokens_estimated": any(r.tokens_estimated for r in recs),
            "cost_usd": _cost(recs),
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


def _cost(recs: list[CallRecord]) -> Optional[float]:
    """Estimated US dollars for the priced calls (see `core.pricing`); None if none is priced."""
    try:
        table = pricing.price_table()
    except ConfigurationError:
        return None  # a bad table is reported once, by the build that reads it
    costs = [c for c in (pricing.cost(r.model, r.input_tokens, r.output_tokens, table) for r in recs) if c is not None]
    return round(sum(costs), 6) if costs else None


def _whole_text(exc: BaseException) -> str:
    parts = []
    for link in chain(exc):
        parts.append(f"{link} {link.args!r}")
    return " ".join(parts)


def redacted(exc: BaseException) -> Exception:
    """A copy of a provider error with every known key masked, keeping what the retry decision
    reads (HTTP status, transient, Retry-After)."""
    return ProviderError(redaction.redact(f"{type(exc).__name__}: {exc}"), status_code=status_code(exc),
                    transient=is_transient(exc), retry_after=retry_after_of(exc))


KEY_IN_ANSWER = ("the model's answer contains one of your API keys (the value of a key setting); the answer was "
                 "not used, written or stored. A key in a spec or in a file the prompt quotes is the usual cause: "
                 "take it out, then build again")


def _no_label() -> str:
    return ""


class MeteredProvider:
    """An `LLMProvider` that records each call in a `Meter` and delegates to `inner`.

    `label()` names the caller of each call (the orchestration layer passes the current task
    run's name), so this module needs nothing from Prefect.
    """

    def __init__(self, inner: LLMProvider, meter: Optional[Meter] = None, label: Callable[[], str] = _no_label):
        redaction.install()  # the environment's keys; a key from a Secret block is registered where it is read
        redaction.register(getattr(inner, "api_key", None))
        self.inner = inner
        self.meter = meter if meter is not None else Meter()
        self.label = label

    def ready(self) -> None:
        """The wrapped provider made now, if it is made on first use (see `LazyProvider.ready`)."""
        make_ready(self.inner)

    def generate(self, prompt: str, temperature: float = 0.1, model: Optional[str] = None) -> str:
        started = time.time()
        error = None
        response = ""
        usage.start()
        try:
            response = self.inner.generate(prompt, temperature=temperature, model=model)
            if redaction.contains_secret(response):  # paid for (metered below), never written, cached or run
                raise AnswerError(KEY_IN_ANSWER)
            return response
        except Exception as exc:
            error = redaction.redact(f"{type(exc).__name__}: {exc}")
            if redaction.contains_secret(_whole_text(exc)):
                raise redacted(exc) from None  # before Prefect stores a state message, event or result
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            used = usage.of_call(prompt, response or "")
            self.meter.add(CallRecord(task=self.label(), started=started, ended=time.time(),
                                      prompt_chars=len(prompt), response_chars=len(response or ""),
                                      model=used.model or model, error=error, input_tokens=used.input_tokens,
                                      output_tokens=used.output_tokens, tokens_estimated=used.estimated))

    def __getstate__(self):
        # The meter holds a lock; a pickled copy (e.g. for a distributed worker) starts a fresh one.
        return {"inner": self.inner, "meter": None, "label": self.label}

    def __setstate__(self, state):
        self.inner, self.label = state["inner"], state.get("label", _no_label)
        self.meter = Meter()
