"""Preloaded into each worker process of the local Dask cluster a build starts.

Ctrl-C in a terminal reaches the whole foreground process group, and Dask's worker processes
died of it, each printing tracebacks under the build's own "stopped" line. They leave SIGINT to
the command: it asks the run to stop, and the specs they run hear it through the run's stop file
(`stopping.following`), keeping what they paid for.
"""

import signal


def dask_setup(worker) -> None:  # noqa: ARG001 - Dask calls it with the worker it preloads
    signal.signal(signal.SIGINT, signal.SIG_IGN)
