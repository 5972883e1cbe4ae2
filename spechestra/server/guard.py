"""A Prefect server that lives exactly as long as one command (`SPECHESTRA_SERVER=temporary`).

Prefect's own temporary server is a plain child process: a command killed with SIGKILL leaves it
running (one was seen 45 minutes later). Here a small guard process starts `prefect server start`
in a process group of its own and reads its standard input, a pipe from the command; when the
command ends, however it ends, the pipe closes, the read returns, and the guard ends the server's
whole group. Run as `python -m spechestra.server.guard PORT LOG`, with the environment
`local.server_env` gives it.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from ..processes.control import stop_group
from .local import server_command


def main(argv: list[str]) -> int:
    port, log = int(argv[0]), argv[1]
    with open(log, "ab") as out:
        server = subprocess.Popen(server_command(port), stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    def stop(*_: object) -> None:
        stop_group(server.pid)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while sys.stdin.buffer.read(1 << 16):  # returns b"" once the command's end of the pipe closes
            pass
    finally:
        stop_group(server.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
