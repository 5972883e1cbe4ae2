"""A Prefect server that lives exactly as long as one command (`SPECHESTRA_SERVER=temporary`).

Prefect's own temporary server is a plain child process: a command killed with SIGKILL leaves it
running (one was seen 45 minutes later). Here a small guard process starts `prefect server start`
in a process group of its own and reads its standard input, a pipe from the command; when the
command ends, however it ends, the pipe closes, the read returns, and the guard ends the server's
whole group. Run as `python -m spechestra.core.server_guard PORT LOG`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys


def _end_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the server's group, SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything the server started and left behind


def main(argv: list[str]) -> int:
    port, log = argv[0], argv[1]
    from .local_server import prefect_exe
    with open(log, "ab") as out:
        server = subprocess.Popen([prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", port],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: (_end_group(server), sys.exit(0)))
    try:
        while sys.stdin.buffer.read(1 << 16):  # returns b"" once the command's end of the pipe closes
            pass
    finally:
        _end_group(server)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
