"""A command's own process imports Prefect with Python's cyclic garbage collector paused.

Importing Prefect makes a few hundred thousand objects that live as long as the process; the
collector walks that growing heap ~300 times on the way (0.1 s), and every full collection of the
run walks it again. Imported with the collector paused and then frozen (`gc.freeze`: kept out of
every later collection), measured here: a 4-spec build 1.34-1.51 s of CPU instead of
1.52-1.65 s (its collections 0.03 s instead of 0.11-0.14 s), `server url` 0.77 s instead of
0.95-1.02 s. Module objects are never garbage, so nothing is lost.
"""

from __future__ import annotations

import contextlib

from ..server.launch import import_frozen

#: Commands that never import Prefect: paying for its import up front would make them slower.
NO_PREFECT = frozenset({"graph"})
HELP = frozenset({"--help", "-h"})


def import_prefect_quietly(args: list[str]) -> None:
    """Only for the process's own command (`main()` without argv): a freeze in a process that
    runs `main` among other work would keep that work's objects out of collection too."""
    if not args or args[0] in NO_PREFECT or HELP & set(args):
        return
    with contextlib.suppress(Exception):  # a broken install: the command itself says what is wrong
        import_frozen("prefect")  # its flows, tasks, client and settings: what every such command uses
