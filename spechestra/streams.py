"""A text stream wrapped to do something with what is written (redact it, note where the line
ends) and the real stream in everything else (isatty, fileno, encoding...), so terminals stay
terminals. Wrappers stack: `inner` leads to the stream they were put around."""

from __future__ import annotations

import sys


class Wrapped:
    def __init__(self, inner):
        self.inner = inner

    def write(self, text: str) -> int:
        return self.inner.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name):
        return getattr(self.inner, name)


class LineEnds(Wrapped):
    """The process's stderr, remembering whether its last write ended a line. Prefect writes some
    errors without a final newline (`--- Error logging to API ---`, then the error, when its server
    is gone): the command's own error line was glued to them ("...attempts failederror: ..."), and
    so was Prefect's next console line ("...attempts failed12:42:48.807 | WARNING | ...")."""

    at_line_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self.inner.write(text)


class StartsLine(Wrapped):
    """A Prefect console handler's stream: each record (Rich writes one in one write) starts a line
    of its own when the tracked stderr was left mid-line."""

    def write(self, text: str) -> int:
        fresh_line()
        return self.inner.write(text)


def track_line_ends() -> None:
    """In a process of our own only (the command's, a local Dask worker's), before Prefect sets up
    its console handlers (they keep the stream they find): a command run in-process leaves its
    caller's stderr alone."""
    if sys.stderr is not None and line_ends() is None:
        sys.stderr = LineEnds(sys.stderr)


def fresh_line() -> None:
    """Before an error line: end a line someone else left open."""
    tracked = line_ends()
    if tracked is not None and not tracked.at_line_start:
        tracked.write("\n")


def line_ends(stream=None) -> "LineEnds | None":
    """The tracker `stream` (stderr by default) writes through, if any."""
    stream = sys.stderr if stream is None else stream  # a key's redaction may have wrapped it since
    while isinstance(stream, Wrapped) and not isinstance(stream, LineEnds):
        stream = stream.inner
    return stream if isinstance(stream, LineEnds) else None
