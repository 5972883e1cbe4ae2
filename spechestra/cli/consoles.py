"""The two consoles every command writes to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from rich.console import Console

console = Console()
err = Console(stderr=True)


def say(line: str) -> None:
    """A progress line on stderr (dim): starting a server, waiting for one."""
    err.print(line, style="dim", highlight=False)
