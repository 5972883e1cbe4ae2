"""Prefect's own CLI (`prefect server start ...`), in a process that first imported Prefect's
server with Python's cyclic garbage collector paused and then froze what it imported.

The import makes some million objects that live as long as the server; with the collector on it
walks that growing heap hundreds of times on the way (0.5-0.7 s of the 3.1-3.4 s the import
takes here), and every full collection of the server's life walks it again. Frozen
(`gc.freeze`), they are left out of every collection. Run as `python -m spechestra.server.launch
server start --host H --port P`: the arguments are Prefect's own, so the process still reads as a
`server start` on that port (`local._serves`).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys

#: `--record JSON` before Prefect's arguments (from `local._launch`): {"path": the state file,
#: "info": the server's record without its PID}.
RECORD = "--record"


def import_frozen(*modules: str) -> None:
    """Import `modules` with the cyclic collector paused, then freeze everything imported so far.
    Only where the process is this program's own: a freeze keeps every object alive now out of
    later collections, a caller's too."""
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        gc.enable()
    gc.freeze()


def record_self(asked: str) -> None:
    """Write this server's state file (its PID added), before anything else. The command that
    launched it writes the same record once it has the PID, but a command killed in between (a
    few ms, more on a loaded machine) left this server running unrecorded: the next command
    started a second one on the same database, and `server stop` could never end this one."""
    from ..core.fileio import atomic_write  # the command's own writer: a killed write leaves no torn file
    try:
        wanted = json.loads(asked)
        atomic_write(wanted["path"], json.dumps({**wanted["info"], "pid": os.getpid()}))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # the command's own record still follows
        print(f"spechestra: could not record this server ({exc})", file=sys.stderr)


def main(argv: list[str]) -> int:
    if argv[:1] == [RECORD]:
        record_self(argv[1])
        argv = argv[2:]
    import_frozen("prefect.server.api.server", "prefect.cli")  # what `server start` imports to serve
    from prefect.cli import app
    sys.argv = ["prefect", *argv]
    app()  # as the `prefect` script runs it: an error exits with Prefect's own code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
