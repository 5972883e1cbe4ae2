"""Running Prefect's server in the foreground (`spechestra server`).

A thin wrapper over Prefect's own CLI, so what the README shows by hand and what this command
does are the same thing.
"""

from __future__ import annotations

import subprocess

from ..server.local import server_command, server_defaults
from ..settings import environment, variable_is_set


def serve(host: str = "127.0.0.1", port: int = 4200) -> int:
    """`prefect server start`; the UI's browser code is told the API's real address (on any
    port other than 4200 it would otherwise call 127.0.0.1:4200 and show "Can't connect")."""
    ui_api: dict[str, str] = {} if variable_is_set("PREFECT_UI_API_URL") else {"PREFECT_UI_API_URL": f"http://{host}:{port}/api"}
    return subprocess.call(server_command(port, host),
                           env={**environment(), **server_defaults(), **ui_api})
