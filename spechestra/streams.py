"""A text stream wrapped to do something with what is written (redact it, note where the line
ends) and the real stream in everything else (isatty, fileno, encoding...), so terminals stay
terminals. Wrappers stack: `inner` leads to the stream they were put around."""

from __future__ import annotations


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
