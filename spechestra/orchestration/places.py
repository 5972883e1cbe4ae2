"""Where a run finds its code and its project on the machine it runs on.

A deployment's run may land on any worker, so nothing about places is fixed when deploying: the
worker's own settings say where the checkout is (`SPECHESTRA_HOME`, read by the pull step
`enter_checkout`) and where projects are (`SPECHESTRA_PROJECTS`, storage every worker sees).
A project a worker cannot see fails the run at once, in one line naming the path and the setting;
a run on a worker never creates a new project anywhere but under `SPECHESTRA_PROJECTS`, because
a folder made on one worker's own disk is one the next run, on another worker, would not find.
"""

from __future__ import annotations

import os
from typing import Optional

from ..core.project import check_project_dir
from ..errors import ProjectError
from ..settings import settings
from .prefect import in_deployment_run


def project_here(project_dir: str, creating: bool = False) -> str:
    """The project folder, absolute, on this machine: relative paths are under SPECHESTRA_PROJECTS
    when it is set (else the working directory). `creating`: the run may make the folder."""
    root = settings.projects
    path = check_project_dir(os.path.join(root, project_dir) if root else project_dir)
    if os.path.isdir(path):
        return path
    where = (f"SPECHESTRA_PROJECTS={root}" if root
             else f"relative to {os.getcwd()}; SPECHESTRA_PROJECTS is unset")
    if not creating and not in_deployment_run():
        raise ProjectError(f"the project folder {path} does not exist ({where}): give the folder that holds the specs",
                           path=path)
    if not creating:
        raise ProjectError(f"the project folder {path} does not exist on this machine ({where}; the run's "
                           f"project_dir parameter is {project_dir!r}): give the run a project_dir that exists, "
                           "kept where every worker sees it, with SPECHESTRA_PROJECTS set to that folder there",
                           path=path)
    if in_deployment_run() and not _under(path, root):
        raise ProjectError(f"the project folder {path} does not exist, and a run on a worker creates a new project "
                           f"only under SPECHESTRA_PROJECTS ({where}): set it on every worker to a folder they all "
                           "see, or create the project there first", path=path)
    return path


def _under(path: str, root: Optional[str]) -> bool:
    if not root:
        return False
    real_root = os.path.realpath(root)
    return os.path.isdir(real_root) and os.path.realpath(path).startswith(real_root + os.sep)


def enter_checkout(directory: str = "") -> dict:
    """prefect.yaml's pull step, run by the worker before each run: work in the checkout named by
    the worker's SPECHESTRA_HOME, else `directory` (the deployer's, resolved when deploying)."""
    chosen = settings.home or directory
    if not chosen or not os.path.isdir(os.path.join(chosen, "flows")):
        raise ProjectError(f"the Spechestra checkout {chosen or '(none given)'} is not on this machine (no flows/ "
                           "folder there): set SPECHESTRA_HOME on the worker to its checkout", path=chosen)
    os.chdir(chosen)
    return {"directory": chosen}
