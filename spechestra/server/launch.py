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
import sys


def main(argv: list[str]) -> int:
    gc.disable()
    try:
        import prefect.server.api.server  # noqa: F401 (what `server start` imports to serve)
        from prefect.cli import app
    finally:
        gc.enable()
    gc.freeze()
    sys.argv = ["prefect", *argv]
    app()  # as the `prefect` script runs it: an error exits with Prefect's own code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
