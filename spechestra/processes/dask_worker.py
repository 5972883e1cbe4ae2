"""Preloaded into each worker process of the local Dask cluster a build starts.

Ctrl-C in a terminal reaches the whole foreground process group, and Dask's worker processes
died of it, each printing tracebacks under the build's own "stopped" line. They leave SIGINT to
the command: it asks the run to stop, and the specs they run hear it through the run's stop file
(`stopping.following`), keeping what they paid for.

A worker writes to the command's terminal too, and Prefect there leaves its error without a
newline when the server is gone; its next console line was glued to it ("...All connection
attempts failed16:01:08.335 | WARNING | ..."). Its stderr notes where lines end, as the command's
own does, before Prefect (imported with the first spec) sets up the console handlers that the
spec's task then has start each line on a line of its own.
"""

import signal

from ..streams import track_line_ends


def dask_setup(worker) -> None:  # noqa: ARG001 - Dask calls it with the worker it preloads
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    track_line_ends()
