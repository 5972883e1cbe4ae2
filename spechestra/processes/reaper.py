"""Runs a command and, when it ends or is told to stop, kills every process it left behind.

`python reaper.py CMD...`. Standalone (standard library; no spechestra import, only its sibling
`control.py` as a plain module, so it starts fast and cannot be shadowed) and Linux-aware:
it makes itself a child subreaper, so a background process that the command detached (`&`,
`setsid`, a new session) is re-parented here instead of to init, and can still be found and
killed. A step or a test suite that returned is judged on what it returned; what it left
running is killed and reported on the last line of the output.
"""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # even under PYTHONSAFEPATH
from control import is_zombie  # noqa: E402  (the sibling file, as a plain module)

MARKER = "spechestra-reaper: killed"
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: process-group kills still apply
        pass


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found += kids
        todo += kids
    return found


def kill_left_behind() -> int:
    killed = 0
    for _ in range(3):  # a dying process may still fork: look again
        pids = [pid for pid in descendants(os.getpid()) if not is_zombie(pid)]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def report(killed: int) -> None:
    if killed:
        print(f"\n{MARKER} {killed} process(es) left running", flush=True)


def main(argv: list[str]) -> int:
    become_subreaper()
    child = subprocess.Popen(argv)

    def stop(signum, frame):
        report(kill_left_behind())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    code = child.wait()
    report(kill_left_behind())
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
