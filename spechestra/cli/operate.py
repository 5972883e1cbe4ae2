"""Running Prefect's server in the foreground (`spechestra server`).

A thin wrapper over Prefect's own CLI, so what the README shows by hand and what this command
does are the same thing.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from .. import stopping
from ..server.local import seed_alone, seeded_start, server_command, server_defaults
from ..settings import environment, variable_is_set
from .consoles import say

#: Seconds a stopped server has to shut down (its services, its database) before it is killed.
SHUTDOWN_S = 30.0
#: How a server that shut down as asked ends: on its own, or by the signal it was given.
STOPPED = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}


def serve(home: Path, host: str = "127.0.0.1", port: int = 4200) -> int:
    """`prefect server start`; the UI's browser code is told the API's real address (on any
    port other than 4200 it would otherwise call 127.0.0.1:4200 and show "Can't connect").

    Ctrl-C or SIGTERM is how this command ends, not an interruption: the server is sent SIGTERM
    and waited for. (Popen's own clean-up killed it mid-shutdown; SIGTERM, not a second SIGINT,
    since a terminal's Ctrl-C already reached it and uvicorn takes a second SIGINT as "force".)

    A new PREFECT_HOME starts from the migrated template, as the managed server's does (before,
    this command's first start ran all of Prefect's migrations: ~7 s of CPU, twice the wait)."""
    ui_api: dict[str, str] = {} if variable_is_set("PREFECT_UI_API_URL") else {"PREFECT_UI_API_URL": f"http://{host}:{port}/api"}
    seeded = seed_alone(home)
    if seeded is not None:
        say(f"a new database for {home} from {seeded}")
    env = {**environment(), **server_defaults(), **seeded_start(seeded), **ui_api}
    server = subprocess.Popen(server_command(port, host), env=env)
    try:
        return server.wait()
    except KeyboardInterrupt:
        pass
    try:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=SHUTDOWN_S)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):  # asked again, or it hangs: now it is killed
        server.kill()
        server.wait()
        raise
    if code not in STOPPED:
        return code
    stopping.reset()  # the command's normal end: nothing was cut short
    return 0
