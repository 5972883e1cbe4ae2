"""Prefect's console lines in a terminal Spechestra draws on: above a live display, and one line
(no traceback) for a run that failed on one of our own errors. The run history is untouched:
these change only the console handlers' file and formatter, never the API handler's."""

from __future__ import annotations

import contextlib
import logging
import re

from ..core.llm_calls import chain
from ..errors import SpechestraError
from ..streams import StartsLine, line_ends


def console_handlers() -> set:
    """Prefect's console handlers, wherever logging put them (each keeps the stream it found)."""
    from prefect.logging.handlers import PrefectConsoleHandler
    # Copied in one step (no thread runs mid-copy): other threads make loggers as they import.
    known = list(logging.Logger.manager.loggerDict.values())
    loggers = [logging.getLogger()] + [one for one in known if isinstance(one, logging.Logger)]
    return {h for one in loggers for h in one.handlers if isinstance(h, PrefectConsoleHandler)}


#: Prefect's line for an item its events or logs worker could not send (the server gone): the
#: item's whole repr, ~3 KB for one task run's event, one such line per event. Read from the
#: message as written, since with a key set `redaction` has already formatted it.
_UNSENT = re.compile(r"(Service '\w+' failed to process item )(.{200,})", re.DOTALL)
_EVENT = re.compile(r"^Event\(.*?\bevent='([^']+)'.*?'prefect\.resource\.id': '([^']+)'", re.DOTALL)


class _OneLineForOurErrors:
    """A console formatter that leaves out the traceback of a run that failed on one of our own
    errors (a provider's 404, a bad spec): its message already says what is wrong and what to do.
    The run history (Prefect's API handler, another formatter) keeps the whole traceback."""

    def __init__(self, inner):
        self.inner = inner

    def format(self, record) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not any(isinstance(link, SpechestraError) for link in chain(exc)):
            return self.inner.format(record)
        kept = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = kept

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _name_unsent_items(record: logging.LogRecord) -> bool:
    """A filter on Prefect's internal logger (its own handler, never the run history's): the
    item named, an event by its name and resource, anything else by its type."""
    if "failed to process item" not in str(record.msg):
        return True
    unsent = _UNSENT.match(record.getMessage())
    if unsent:
        item = unsent.group(2)
        event = _EVENT.match(item)
        named = f"<event {event.group(1)} of {event.group(2)}>" if event else f"<{item.split('(', 1)[0][:60]}>"
        record.msg, record.args = unsent.group(1) + named, None
    return True


def one_line_for_our_errors() -> None:
    """Idempotent: Prefect's console lines for our errors without their traceback (49 lines for a
    missing key, 95 for a 404 were printed before the command's own one-line error), and an event
    Prefect could not send (its server gone) named in one short line, not dumped; and each console
    line on a line of its own after text Prefect left without a newline."""
    internal = logging.getLogger("prefect._internal.concurrency")
    if _name_unsent_items not in internal.filters:
        internal.addFilter(_name_unsent_items)
    tracked = line_ends()  # the command's own stderr (its own process only)
    for handler in console_handlers():
        if not isinstance(handler.formatter, _OneLineForOurErrors):
            handler.setFormatter(_OneLineForOurErrors(handler.formatter or logging.Formatter()))
        file = handler.console.file
        if tracked is not None and not isinstance(file, StartsLine) and line_ends(file) is tracked:
            handler.console.file = StartsLine(file)


class _Above:
    """A file for Prefect's console handler that prints each finished line through a Rich
    console with a live display: above the display, which is drawn again below it. (Rich's own
    stderr proxy would not do: a Console unwraps it and writes to the real stream.)"""

    def __init__(self, console, real):
        self.console, self.real, self.pending = console, real, ""

    def write(self, text: str) -> int:
        from rich.text import Text
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.real.isatty()


@contextlib.contextmanager
def console_logs_to(console):
    """Prefect's console handlers keep the stderr they found when logging was set up: under a
    Rich live display their lines are written past it, then erased or overwritten by its next
    refresh ("View at ...", "Finished in state ..." lost). While the display is up their lines
    go through its console instead, above it."""
    kept = {h: h.console.file for h in console_handlers()}
    for handler, file in kept.items():
        handler.console.file = _Above(console, file)
    try:
        yield
    finally:
        for handler, file in kept.items():
            handler.console.file = file
