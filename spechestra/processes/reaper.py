"""Runs a command and, when it ends or is told to stop, kills every process it left behind.

`python reaper.py [--limits=cpu=S,data=B,fsize=B,procs=N,poll=S,wall=S,parent=1] [--writable=JSON] CMD...`. Standalone (standard library; no spechestra import, only its sibling
`control.py` as a plain module, so it starts fast and cannot be shadowed) and Linux-aware:
it makes itself a child subreaper, so a background process that the command detached (`&`,
`setsid`, a new session) is re-parented here instead of to init, and can still be found and
killed. A step or a test suite that returned is judged on what it returned; what it left
running is killed and reported on the last line of the output.

With `--limits` the command also gets resource limits: CPU seconds, data memory and file size
(RLIMIT_CPU/DATA/FSIZE, which also bound what it prints into the output file) and a number of
processes, watched here (RLIMIT_NPROC counts a user's processes machine-wide and never binds
root). A limit reached is reported on its own line (`LIMIT_MARKER what`).
"""

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # even under PYTHONSAFEPATH
from control import is_zombie  # noqa: E402  (the sibling file, as a plain module)

MARKER = "spechestra-reaper: killed"
LIMIT_MARKER = "spechestra-reaper: limit reached:"
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


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
    """Kill every descendant; the number of processes killed (each counted once, though a
    dying one may be seen, and signalled, again)."""
    killed: set = set()
    for _ in range(3):  # a dying process may still fork: look again
        pids = [pid for pid in descendants(os.getpid()) if not is_zombie(pid)]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
    return len(killed)


def report(killed: int) -> None:
    if killed:
        print(f"\n{MARKER} {killed} process(es) left running", flush=True)


def parse_limits(argv: list[str]) -> tuple[dict, list[str]]:
    if argv and argv[0].startswith("--limits="):
        pairs = (item.split("=", 1) for item in argv[0][len("--limits="):].split(",") if item)
        return {k: float(v) for k, v in pairs}, argv[1:]
    return {}, argv


def parse_writable(argv: list[str]) -> tuple[list, list[str]]:
    """`--writable=JSON-LIST`: the only folders the command may write (Landlock), where no
    bubblewrap contains it."""
    if argv and argv[0].startswith("--writable="):
        return json.loads(argv[0][len("--writable="):]), argv[1:]
    return [], argv


def prepare_child(limits: dict, writable: list) -> None:
    """In the command's process, before it starts (inherited by everything it starts)."""
    apply_limits(limits)
    if writable:
        import landlock
        landlock.restrict_writes([*writable, os.devnull])


def apply_limits(limits: dict) -> None:
    """In the command's process, before it starts (inherited by everything it starts)."""
    for key, which, extra in (("cpu", resource.RLIMIT_CPU, 2), ("data", resource.RLIMIT_DATA, 0),
                              ("fsize", resource.RLIMIT_FSIZE, 0)):
        if key in limits:
            soft = int(limits[key])
            resource.setrlimit(which, (soft, soft + extra))


def over_process_limit(limit: int, alive: Optional[int] = None) -> str:
    """The limit in words if more than `limit` processes are alive at once (default: the live
    processes that descend from this one now), else ""."""
    if alive is None:
        alive = len([p for p in descendants(os.getpid()) if not is_zombie(p)])
    return f"more than {int(limit)} processes at once" if alive > limit else ""


def watch_processes(limit: int, poll: float, hit: list) -> None:
    while not hit:
        time.sleep(poll)
        over = over_process_limit(limit)
        if over:
            hit.append(over)
            kill_left_behind()


def limit_reached(code: int, limits: dict, hit: list, printed: Optional[int] = None, left: int = 0) -> str:
    """Which limit ended the command, in words ("" none). `code`: its exit code, negative for a
    signal; `printed`: the size of its output (default: this process's stdout, a file); `left`:
    the processes it left running, all alive at once (a fork loop that ended between two looks
    of the watch passed the process limit otherwise)."""
    if hit:
        return hit[0]
    too_many = over_process_limit(limits["procs"], alive=left) if "procs" in limits else ""
    if too_many:
        return too_many
    if code == -signal.SIGXCPU and "cpu" in limits:
        return f"more than {limits['cpu']:g} s of CPU time"
    if printed is None:
        try:
            printed = os.fstat(1).st_size
        except OSError:
            printed = 0
    if "fsize" in limits and (code == -signal.SIGXFSZ or printed >= limits["fsize"]):
        return f"more than {limits['fsize'] / 2**20:g} MiB of output (or of one file)"
    return ""


def end_with_parent(parent: int) -> None:
    """SIGTERM to this process when the one that started it dies (kill -9 of the CLI, a lost
    worker): the command and everything it left are killed then, not left running unwatched."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the line above (`parent`: read at start, as seen from here)
        os.kill(os.getpid(), signal.SIGTERM)


def keep_deadline(seconds: float) -> None:
    """The run's own deadline, held here too: whatever happens to the process that waits for it,
    nothing this command started runs past it (plus the caller's grace)."""
    def expire() -> None:
        time.sleep(seconds)
        report(kill_left_behind())
        print(f"\n{LIMIT_MARKER} more than {seconds:g} s of wall time", flush=True)
        os._exit(124)
    threading.Thread(target=expire, daemon=True).start()


def main(argv: list[str]) -> int:
    parent = os.getppid()  # inside bubblewrap, the sandbox's init: it ends with the caller too
    limits, argv = parse_limits(argv)
    writable, argv = parse_writable(argv)
    become_subreaper()
    child = subprocess.Popen(argv, preexec_fn=(lambda: prepare_child(limits, writable)) if limits or writable else None)
    hit: list = []
    if "procs" in limits:
        threading.Thread(target=watch_processes, args=(int(limits["procs"]), limits.get("poll", 0.05), hit),
                         daemon=True).start()

    def stop(signum, frame):
        report(kill_left_behind())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if limits.get("parent"):
        end_with_parent(parent)
    if "wall" in limits:
        keep_deadline(limits["wall"])
    code = child.wait()
    left = kill_left_behind()
    reached = limit_reached(code, limits, hit, left=left)
    hit.append("done")  # stops the watcher
    report(left)
    if reached:
        print(f"\n{LIMIT_MARKER} {reached}", flush=True)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
