"""One build at a time per project, and one compose writing specs: OS file locks in
<project>/.spechestra/ (`build.lock`, `compose.lock`).

Two builds on one project would test each other's half-written files and leave build/ and the
cache from different runs; two composes writing specs at once would each pay for every component
(the second now waits, then skips the specs the first wrote). The lock is `flock`: the OS releases it when its holder dies, even by
`kill -9`, so it can never be left stale. The file says who holds it (pid, flow run, start),
which is what a waiting build shows, and what the next holder reads to find a run that was
killed mid-way (its flow run is still "Running" in the history).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from .. import stopping
from ..errors import ProjectBusy


def lock_path(project_dir: str, kind: str = "build") -> Path:
    return Path(project_dir) / ".spechestra" / f"{kind}.lock"


def _describe(holder: dict, kind: str = "build") -> str:
    if not holder:
        return f"another {kind}"
    since = time.strftime("%H:%M:%S", time.localtime(holder.get("started", 0)))
    run = f", flow run {holder['flow_run_id']}" if holder.get("flow_run_id") else ""
    return f"the {kind} started at {since} by process {holder.get('pid')}{run}"


@contextlib.contextmanager
def project_lock(project_dir: str, timeout: float, flow_run_id: Optional[str] = None,
                 on_wait: Callable[[str], None] = print, kind: str = "build") -> Iterator[dict]:
    """Hold the project's `kind` lock; wait up to `timeout` seconds (saying so once) for another
    holder. Yields what the previous holder had written (its flow run may need marking)."""
    path = lock_path(project_dir, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        deadline, told = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                stopping.check()  # a Ctrl-C ends the wait (else it lasted until the holder was done)
                holder = _read(handle)
                if time.monotonic() >= deadline:
                    raise ProjectBusy(project_dir, _describe(holder, kind), timeout) from None
                if not told:
                    on_wait(f"waiting for {_describe(holder, kind)} on this project to finish (up to {timeout:g}s)")
                    told = True
                stopping.sleep(0.5)
        previous = _read(handle)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "flow_run_id": flow_run_id, "started": time.time()}))
        handle.flush()
        yield previous
    finally:
        handle.close()  # releases the lock


def _read(handle) -> dict:
    try:
        handle.seek(0)
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}
