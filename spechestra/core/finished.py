"""What finished in one flow run, kept until that run's build ends.

A cluster (Dask, Ray) that loses a worker runs the tasks whose results that worker held again,
finished ones included. Each spec's outcome is written here when it finishes, under the id of the
flow run that owns the task, so the task run again returns that outcome instead of paying for the
spec a second time. The folder goes when the build ends (`forget`): a later run starts afresh.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from .fileio import masked_write
from .models import SpecOutcome
from .project import Layout, finished_dir

NOTE = "finished earlier in this run; not paid again"


def earlier(layout: Layout, run_id: Optional[str], name: str) -> Optional[SpecOutcome]:
    """The spec's outcome if it already finished in flow run `run_id` (None: build it)."""
    if not run_id:
        return None
    path = Path(layout.finished_path(run_id, name))
    try:
        outcome = SpecOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none yet, or torn by a kill mid-write: building again is the safe answer
    return outcome.model_copy(update={"notes": outcome.notes + [NOTE]})


def record(layout: Layout, run_id: Optional[str], outcome: SpecOutcome) -> None:
    if run_id:
        masked_write(layout.finished_path(run_id, outcome.name), outcome.model_dump_json())


def forget(project_dir: str, run_id: Optional[str]) -> None:
    if run_id:
        shutil.rmtree(finished_dir(project_dir, run_id), ignore_errors=True)
