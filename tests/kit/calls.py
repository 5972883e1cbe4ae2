"""Test kit: the call log a TimedProvider keeps across processes, and what tests read from it.

Each line is `start end pid digest`: when a call ran, in which process, and a digest of its
prompt, so a test can tell an answer bought twice from two different answers, and a call whose
answer died with a killed process from a finished spec paying again."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path


class TimedProvider:
    """Appends one line per call to `path` (see the module's docstring), across processes."""

    def __init__(self, inner, path: str, seconds: float):
        self.inner, self.path, self.seconds = inner, path, seconds

    def generate(self, prompt, temperature=0.1, model=None):
        started = time.time()
        time.sleep(self.seconds)
        answer = self.inner.generate(prompt, temperature=temperature, model=model)
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        with open(self.path, "a") as log:
            log.write(f"{started} {time.time()} {os.getpid()} {digest}\n")
        return answer


@dataclass(frozen=True)
class Call:
    start: float
    end: float
    pid: int
    digest: str


def calls(path: Path) -> list[Call]:
    if not Path(path).exists():
        return []
    found = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            start, end, pid, digest = line.split()
            found.append(Call(float(start), float(end), int(pid), digest))
    return found


def bought_twice(log: list[Call]) -> list[tuple[Call, Call]]:
    """(first, again) for every prompt asked more than once, in the order they ran."""
    first: dict[str, Call] = {}
    twice = []
    for call in sorted(log, key=lambda c: c.start):
        if call.digest in first:
            twice.append((first[call.digest], call))
        else:
            first[call.digest] = call
    return twice


def peak_overlap(log: list[Call]) -> int:
    """The most calls in flight at one moment."""
    events = [e for c in log for e in ((c.start, 1), (c.end, -1))]
    level = peak = 0
    for _, step in sorted(events):
        level += step
        peak = max(peak, level)
    return peak
