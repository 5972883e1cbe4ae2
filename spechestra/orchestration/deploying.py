"""Deploying the flows in prefect.yaml to a process work pool, through Prefect's API.

The work pool is looked up and created through the client, and what was deployed is read back
from the server, never parsed from CLI table text (tables are cut to the terminal's width:
`spechestra` showed as `spechest…` at 80 columns, and a second deploy tried to create the pool
again). `prefect deploy` itself is Prefect's own command, run as is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
from prefect.exceptions import ObjectNotFound

from ..core.text import first_line
from ..errors import DeployError, ProjectError
from ..server.local import prefect_exe
from ..settings import environment
from .prefect import client
from .zombies import ensure_automation


def ensure_pool(name: str) -> bool:
    """The process work pool `name` exists afterwards; True if this call created it."""
    with client() as c:
        try:
            c.read_work_pool(name)
            return False
        except ObjectNotFound:
            c.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def deployed_in(pool: str) -> list[str]:
    """`flow/deployment` names of every deployment in the pool, as the server has them."""
    with client() as c:
        deployments = c.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
        flows = {d.flow_id: c.read_flow(d.flow_id).name for d in deployments}
    return sorted(f"{flows[d.flow_id]}/{d.name}" for d in deployments)


def deploy(root: Path, pool: str) -> list[str]:
    """Create the work pool if missing, deploy everything in `root/prefect.yaml`, say what is there."""
    root = root.resolve()
    if not (root / "prefect.yaml").is_file():
        raise ProjectError(f"no prefect.yaml in {root} (run this from the Spechestra checkout, or pass --dir)",
                           path=str(root))
    done = [f"created work pool {pool!r} (process)" if ensure_pool(pool) else f"work pool {pool!r} exists"]
    # Prefect's own command gets the whole environment (its settings, the API), a wide table, and
    # the checkout the deployments' pull step points at.
    env = environment(COLUMNS="200", SPECHESTRA_HOME=str(root))  # the pull step's fallback: this checkout
    proc = subprocess.run([prefect_exe(), "--no-prompt", "deploy", "--all"], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-3000:]
        raise DeployError(f"`prefect deploy --all` failed (exit {proc.returncode}): {first_line(output[-300:])}",
                          output=output)
    return done + [f"deployed {name} (pool {pool})" for name in deployed_in(pool)] + ensure_automation()
