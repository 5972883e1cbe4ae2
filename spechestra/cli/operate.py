"""Running Prefect's server in the foreground (`spechestra server`).

Thin wrappers over Prefect's own CLI and API, so what the README shows by hand and what these
commands do are the same thing.
"""

from __future__ import annotations

import os
import subprocess

from ..core.local_server import prefect_exe

POOL = "spechestra"


def serve(host: str = "127.0.0.1", port: int = 4200) -> int:
    """`prefect server start`; the UI's browser code is told the API's real address (on any
    port other than 4200 it would otherwise call 127.0.0.1:4200 and show "Can't connect")."""
    env = dict(os.environ)
    env.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")
    return subprocess.call([prefect_exe(), "server", "start", "--host", host, "--port", str(port)], env=env)
