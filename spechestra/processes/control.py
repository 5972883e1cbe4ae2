"""Looking at and stopping processes by pid: is it there, is it a zombie, stop its group; and
the tail of what one printed.

Standard library only and free of package imports: `reaper.py` runs as a plain script and
imports this file as a sibling module, so the same helpers serve the reaper, the managed
server and the temporary server's guard.
"""

from __future__ import annotations

import os
import signal
import time


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a killed one's does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_zombie(pid: int) -> bool:
    """True for a process that has exited but not been waited for, or that is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def reap(pid: int) -> None:
    """Collect our own child's exit status, if it is our child (so it is not left a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def ended(pid: int) -> bool:
    reap(pid)
    return not alive(pid) or is_zombie(pid)


def stop_group(pgid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group `pgid`, SIGKILL it if anything is left after `grace` seconds,
    and SIGKILL the group once more for whatever its leader left behind."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not signal_group(pgid, sig):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if ended(pgid):
                signal_group(pgid, signal.SIGKILL)
                return
            time.sleep(0.1)


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when there is no such group."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def output_tail(handle, keep: int) -> str:
    """The last `keep` bytes of an output file (open, binary), from a line's start when cut: a key
    cut in two is never half kept, since only whole keys can be masked."""
    handle.seek(0, os.SEEK_END)
    start = max(0, handle.tell() - keep)
    handle.seek(start)
    tail = handle.read()
    if start:
        tail = tail.partition(b"\n")[2]
    return tail.decode("utf-8", errors="replace")
