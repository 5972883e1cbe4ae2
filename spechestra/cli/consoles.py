"""The two consoles every command writes to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console()
err = Console(stderr=True)

#: Lines sent to a file or a pipe are never wrapped, and tables are as wide as their content.
UNWRAPPED_WIDTH = 1000


def fit_to_output() -> None:
    """Called once per command: Rich wraps everything at 80 columns when it is not writing to a
    terminal (paths split mid-word, errors over 2-3 lines, table columns cut to `math_…`); a file
    or a pipe gets whole lines instead. A terminal keeps Rich's own handling of its width."""
    for out in (console, err):
        if not out.is_terminal:
            out.soft_wrap = True
            out.width = UNWRAPPED_WIDTH


def say(line: str) -> None:
    """A progress line on stderr (dim): starting a server, waiting for one."""
    err.print(line, style="dim", highlight=False)


def command() -> str:
    """How to type this command again, for hints: `spechestra` when that is what PATH finds,
    else the path it was started by (`.venv/bin/spechestra` after `make install`; the README's
    way), else `python -m spechestra`."""
    import os
    import shutil
    from pathlib import Path
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is None or started.name in ("__main__.py", "-c"):
        return f"{sys.executable} -m spechestra"
    found = shutil.which("spechestra")
    if found and Path(found).resolve() == started.resolve():
        return "spechestra"
    relative = os.path.relpath(started.resolve())
    return relative if not relative.startswith("..") else str(started.resolve())
