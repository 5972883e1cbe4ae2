"""Operating Spechestra the Prefect way: a local server and deployments.

Thin wrappers over Prefect's own CLI and API, so what the README shows by hand and what these
commands do are the same thing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

POOL = "spechestra"


def prefect_exe() -> str:
    """The `prefect` CLI of this interpreter's environment (not whichever is first on PATH)."""
    here = Path(sys.executable).parent / "prefect"
    return str(here) if here.exists() else "prefect"


def serve(host: str = "127.0.0.1", port: int = 4200) -> int:
    """`prefect server start`; the UI's browser code is told the API's real address (on any
    port other than 4200 it would otherwise call 127.0.0.1:4200 and show "Can't connect")."""
    env = dict(os.environ)
    env.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")
    return subprocess.call([prefect_exe(), "server", "start", "--host", host, "--port", str(port)], env=env)


def deploy(root: Path, pool: str = POOL) -> list[str]:
    """Create the work pool if missing, then deploy everything in `root/prefect.yaml`."""
    root = root.resolve()
    if not (root / "prefect.yaml").is_file():
        raise FileNotFoundError(f"no prefect.yaml in {root} (run this from the Spechestra checkout, or pass --dir)")
    env = dict(os.environ)
    env.setdefault("SPECHESTRA_HOME", str(root))
    done: list[str] = []
    pools = _run([prefect_exe(), "work-pool", "ls"], root, env)
    if pool not in pools:
        _run([prefect_exe(), "work-pool", "create", pool, "--type", "process"], root, env)
        done.append(f"created work pool {pool!r} (process)")
    else:
        done.append(f"work pool {pool!r} exists")
    out = _run([prefect_exe(), "--no-prompt", "deploy", "--all"], root, env)
    done += [line.strip() for line in out.splitlines() if "Deployment '" in line and "successfully" in line]
    return done


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[1:])}` failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout
