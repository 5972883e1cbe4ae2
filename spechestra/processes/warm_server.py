"""The warm test runner: an interpreter with pytest imported that forks a fresh child per test run.

`python warm_server.py --idle=S`, started inside one bubblewrap sandbox per build (see `warm.py`).
A fresh interpreter spends ~0.25-0.4 s of CPU importing pytest before a spec's first test runs;
a fork of this process starts with it imported, so a run costs only its own tests.

Isolation stays per run: the server itself never runs a test. For each request (one JSON line
on stdin) it forks a run process that becomes a child subreaper in a session of its own, and
that forks the test process, which restricts itself with Landlock to write only the spec's own
staging folder and a private temp dir (the sandbox makes the whole staging root writable),
takes the reaper's resource limits, closes every descriptor it inherited (it can never reach
the server or another run) and calls `pytest.main`. The run process enforces the timeout and
the process limit, kills whatever the tests left running, and sends back one JSON line (the
output's tail, pytest's junit report). Exits when stdin closes or after `--idle` seconds unused.

Standard library plus pytest; no spechestra import (siblings as plain modules, like reaper.py).
"""

import gc
import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # even under PYTHONSAFEPATH
import landlock  # noqa: E402
import reaper  # noqa: E402
from control import output_tail  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
REPORT_LIMIT = 8 * 2**20  # bytes of junit report sent back at most


def preload() -> None:
    """What every run imports first: pytest itself, and the plugins installed with it (xdist,
    pytest-timeout...), imported by a session of pytest's own so that they go through its
    assertion-rewriting hook as in any run (a module imported another way would make every run
    warn that it cannot be rewritten). Their import and rewriting were ~0.1 s of the ~0.2 s of
    CPU each run took here; the session costs ~0.35 s once per build. Then what every run's junit
    report compiles (a regular expression of every character XML refuses: ~10 ms) is compiled
    here once, in `re`'s cache that each fork inherits."""
    import pytest
    from _pytest import config, junitxml, main, python, runner, terminal  # noqa: F401
    junitxml.bin_xml_escape("")
    empty = tempfile.mkdtemp(prefix="preload-")
    saved = {k: os.environ.pop(k) for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS") if k in os.environ}
    out, err = os.dup(1), os.dup(2)  # stdout is the protocol's pipe: nothing of the session's goes there
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        # As the runs are asked for (spec_build): anyio's plugin is left to the runs that name it.
        pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:anyio", "--rootdir", empty, "--confcutdir", empty,
                     "-o", "addopts=", "--collect-only", empty])
    except Exception:  # noqa: BLE001 - then each run imports the plugins itself, as before
        pass
    finally:
        sys.stdout.flush()  # what the session left buffered goes to /dev/null, never later to the pipe
        sys.stderr.flush()
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (out, err, null):
            os.close(fd)
        os.environ.update(saved)
        shutil.rmtree(empty, ignore_errors=True)


def base_path() -> list:
    """sys.path as a fresh `python -m pytest` would have it, less the run's own folders (the
    server starts with an empty PYTHONPATH)."""
    return [p for p in sys.path[1:] if p and p != _HERE]


def test_process(req: dict, tmp: str, out_fd: int, path: list) -> None:
    """The forked test process: never returns."""
    code = 70
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.closerange(3, 65536)
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        landlock.restrict_writes([*req["writable"], tmp, os.devnull])
        limits = req.get("limits") or {}
        reaper.apply_limits(limits)
        os.environ.clear()
        os.environ.update(req["env"], HOME=home, TMPDIR=home)
        tempfile.tempdir = None
        sys.dont_write_bytecode = True
        os.chdir(req["cwd"])
        sys.path[:] = [req["cwd"], *req["import_paths"], *path]
        argv = [a.replace("{run_tmp}", tmp) for a in req["argv"]]
        sys.argv = ["pytest", *argv]
        import atexit

        import pytest
        code = int(pytest.main(argv))
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - reported in the run's output
        import traceback
        traceback.print_exc()
        print(f"spechestra warm runner: the test process failed: {exc}", flush=True)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_process(req: dict, reply_fd: int, path: list) -> None:
    """The forked run process (the reaper of one run): never returns."""
    answer = {"id": req["id"]}
    try:
        missing = [p for p in [req["cwd"], *req["writable"]] if not os.path.isdir(p)]
        if missing:  # removed and made again outside: this sandbox still shows the old folder
            raise FileNotFoundError(f"not in this sandbox's view: {', '.join(missing)}")
        os.setsid()
        reaper.become_subreaper()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        tmp = tempfile.mkdtemp(prefix="run-")
        output = os.path.join(tmp, "output")
        out_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pid = os.fork()
        if pid == 0:
            os.close(reply_fd)
            test_process(req, tmp, out_fd, path)
        os.close(out_fd)
        code, timed_out, hit = watch(pid, req)
        answer["left"] = reaper.kill_left_behind()
        answer["timed_out"] = timed_out
        answer["returncode"] = None if timed_out else (code if code >= 0 else 128 - code)  # as the reaper exits
        answer["limit"] = "" if timed_out else reaper.limit_reached(code, req.get("limits") or {}, [hit] if hit else [],
                                                                    os.stat(output).st_size, answer["left"])
        answer["output"] = _tail(output, int(req.get("keep", 200_000)))
        report = os.path.join(tmp, "report.xml")
        answer["report"] = _tail(report, REPORT_LIMIT) if os.path.exists(report) else None
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as exc:  # noqa: BLE001 - the client runs the tests cold instead
        answer["error"] = f"{type(exc).__name__}: {exc}"
    data = (json.dumps(answer) + "\n").encode()
    while data:
        data = data[os.write(reply_fd, data):]
    os._exit(0)


def watch(pid: int, req: dict) -> tuple[int, bool, str]:
    """Wait for the test process within the timeout and the process limit: (its exit code,
    negative for a signal; whether it timed out; the process limit it passed, or "")."""
    limits = req.get("limits") or {}
    deadline = time.monotonic() + float(req["timeout"])
    procs, poll = int(limits.get("procs", 0)), float(limits.get("poll", 0.05))
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:  # what it left running is judged by the caller, once killed
            return os.waitstatus_to_exitcode(status), False, ""
        over_time = time.monotonic() > deadline
        too_many = reaper.over_process_limit(procs) if procs else ""
        if over_time or too_many:
            reaper.kill_left_behind()
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), over_time, "" if over_time else too_many
        time.sleep(poll)


def _tail(path: str, keep: int) -> str:
    with open(path, "rb") as handle:
        return output_tail(handle, keep)


def serve(idle: float) -> int:
    preload()
    # What every run starts with, kept out of its collections (pytest collects once at its end):
    # ~25 ms of a run's ~90 ms of CPU here.
    gc.freeze()
    path = base_path()
    out = sys.stdout.buffer
    out.write((json.dumps({"ready": True, "abi": landlock.abi(), "pid": os.getpid()}) + "\n").encode())
    out.flush()
    selector = selectors.DefaultSelector()
    stdin = sys.stdin.fileno()
    selector.register(stdin, selectors.EVENT_READ, None)
    pending = b""
    runs: dict = {}   # reply fd -> [pid, bytes so far, request id]
    last_used = time.monotonic()
    while True:
        events = selector.select(timeout=1.0)
        if not events and not runs and time.monotonic() - last_used > idle:
            return 0
        for key, _ in events:
            if key.data is None:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return 0  # the client is gone: the sandbox ends every run with us
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        start(json.loads(line), selector, runs, path)
                last_used = time.monotonic()
                continue
            fd = key.fd
            chunk = os.read(fd, 65536)
            if chunk:
                runs[fd][1] += chunk
                continue
            selector.unregister(fd)
            os.close(fd)
            pid, data, ident = runs.pop(fd)
            os.waitpid(pid, 0)
            if not data.strip():
                data = json.dumps({"id": ident, "error": "the run process ended without an answer"}).encode()
            out.write(data if data.endswith(b"\n") else data + b"\n")
            out.flush()
            last_used = time.monotonic()


def start(req: dict, selector, runs: dict, path: list) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        for fd in list(runs):
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        run_process(req, write_fd, path)
    os.close(write_fd)
    runs[read_fd] = [pid, b"", req.get("id")]
    selector.register(read_fd, selectors.EVENT_READ, "run")


if __name__ == "__main__":
    idle = next((float(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--idle=")), 30.0)
    sys.exit(serve(idle))
