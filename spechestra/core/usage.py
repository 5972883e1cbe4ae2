"""Token usage of the LLM call in progress, told by the provider that made it.

`generate()` returns only text (SpecSoloist's protocol), so a provider that knows what a call
cost (every HTTP wire format we speak reports it) says so here, on the calling thread; the meter
and the per-spec counter read it back after the call. Providers that say nothing are estimated
(~4 characters per token) and labelled as estimates wherever the figure is shown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

_local = threading.local()


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool = False
    model: Optional[str] = None  # the model that answered, when the provider says

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate(prompt: str, response: str) -> Usage:
    return Usage(len(prompt) // 4, len(response) // 4, estimated=True)


def report(input_tokens: int, output_tokens: int, model: Optional[str] = None) -> None:
    """Called by a provider, inside `generate`, with what the response says it used."""
    _local.usage = Usage(int(input_tokens or 0), int(output_tokens or 0), model=model)


def start() -> None:
    """Forget the previous call's usage (the outermost wrapper calls this before each call)."""
    _local.usage = None


def last() -> Optional[Usage]:
    return getattr(_local, "usage", None)


def of_call(prompt: str, response: str) -> Usage:
    """What the provider reported for the call just made on this thread, else an estimate."""
    told = last()
    return told if told is not None else estimate(prompt, response)
