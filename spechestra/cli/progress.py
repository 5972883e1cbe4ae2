"""Live progress for build and perform: what each spec (or step) is doing, how many are done,
LLM calls and estimated tokens so far, elapsed time. A live panel in a terminal; plain lines,
one per change, when the output is a file or a pipe (CI logs, `| tee`)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Optional

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..core.pricing import summary_words

FINISHED = {"built", "cached", "reference", "failed", "blocked", "skipped", "done"}


class LiveProgress:
    def __init__(self, console: Console, total: int, what: str = "specs", meter=None, live: bool = True):
        self.console, self.total, self.what, self.meter = console, total, what, meter
        self.use_live = live and console.is_terminal  # a review prompt needs the terminal to itself
        self.phases: dict[str, str] = {}
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.live: Optional[Live] = None
        self.rerouted = contextlib.ExitStack()
        self.elsewhere = 0  # the run's own count of calls (see calls_made)

    def __call__(self, name: str, phase: str) -> None:
        # A task reports its end, and so does the flow that collects it (the flow's report is the
        # one that arrives when the task ran in another process): show each change once.
        with self.lock:
            if self.phases.get(name) == phase:
                return
            self.phases[name] = phase
        if self.live is not None:
            self.live.update(self.render())
        else:
            self.console.print(f"[{self._elapsed()}] {name}: {phase}  ({self._counts()})", markup=False,
                               highlight=False)

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _counts(self) -> str:
        with self.lock:
            done = sum(1 for p in self.phases.values() if p in FINISHED)
        calls = ""
        if self.meter is not None:
            summary = self.meter.summary()
            if self.elsewhere > summary.get("calls", 0):  # specs built in other processes (a cluster)
                calls = f", {self.elsewhere} LLM call(s)"
            else:
                calls = f", {summary_words(summary)}"
        return f"{done} of {self.total} {self.what} done{calls}"

    def calls_made(self, count: int) -> None:
        """The run's true call count (the flow reports it as specs finish, wherever they ran)."""
        self.elsewhere = max(self.elsewhere, count)

    def render(self):
        with self.lock:
            running = {n: p for n, p in self.phases.items() if p not in FINISHED}
        table = Table(show_header=False, box=None, padding=(0, 2))
        for name, phase in sorted(running.items()):
            table.add_row(name, phase)
        return Group(Text(f"{self._counts()} · {self._elapsed()} elapsed", style="bold"), table)

    def __enter__(self) -> "LiveProgress":
        if self.use_live:
            self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
            from ..orchestration.console_logs import console_logs_to
            self.rerouted.enter_context(console_logs_to(self.console))
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.rerouted.close()
            self.live.__exit__(*exc)
            self.live = None
