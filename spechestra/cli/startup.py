"""A command's own process imports Prefect with Python's cyclic garbage collector paused.

Importing Prefect makes a few hundred thousand objects that live as long as the process; the
collector walks that growing heap ~370 times on the way (0.1 s), and every full collection of
the run walks it again. Imported with the collector paused and then frozen (`gc.freeze`: kept out
of every later collection), a build used 1.38-1.43 s of CPU instead of 1.52-1.61 s here, its
collections 0.015 s instead of 0.11 s. Module objects are never garbage, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import gc

#: Commands that never import Prefect: paying for its import up front would make them slower.
NO_PREFECT = frozenset({"graph"})
HELP = frozenset({"--help", "-h"})


def import_prefect_quietly(args: list[str]) -> None:
    """Only for the process's own command (`main()` without argv): a freeze in a process that
    runs `main` among other work would keep that work's objects out of collection too."""
    if not args or args[0] in NO_PREFECT or HELP & set(args):
        return
    gc.disable()
    try:
        with contextlib.suppress(Exception):  # a broken install: the command itself says what is wrong
            import prefect  # noqa: F401 (its flows, tasks, client and settings: what every such command uses)
    finally:
        gc.enable()
    gc.freeze()
