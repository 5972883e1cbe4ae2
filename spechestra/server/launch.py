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
import sys


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


def main(argv: list[str]) -> int:
    import_frozen("prefect.server.api.server", "prefect.cli")  # what `server start` imports to serve
    from prefect.cli import app
    sys.argv = ["prefect", *argv]
    app()  # as the `prefect` script runs it: an error exits with Prefect's own code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
