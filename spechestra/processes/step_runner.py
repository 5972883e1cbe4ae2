"""Run one step's compiled module in its own interpreter, with a timeout that holds even when the
step leaves processes behind, contained like every run of generated code (see `reaped`): it may
write only its own temp dir. No Prefect here."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import StepError
from .reaped import run_reaped

CHILD = Path(__file__).with_name("step_child.py")


@dataclass
class StepRun:
    outputs: dict
    output: str  # what the step printed
    left_running: int = 0  # processes the step left behind (killed)


#: Below this much free space, a request or result that could not be written is the disk's fault.
FULL_BELOW = 2**20


def _full(tmp: str) -> str:
    """Why a step's request or result could not be written, when the temp folder's disk is full
    (the step is not at fault; its text would only say "cannot be read back"), else ""."""
    try:
        free = shutil.disk_usage(tmp).free
    except OSError:
        return ""
    if free >= FULL_BELOW:
        return ""
    return (f"the temp folder {os.path.dirname(tmp)} is full ({free / 2**20:.1f} MiB free), so the step's inputs or "
            "result could not be written; free some space there (or set TMPDIR to a larger disk) and perform again")


def run_step(module_path: str, function: str, inputs: dict, import_dirs: tuple[str, ...],
             timeout: float, network: bool = False, declared_env: tuple[str, ...] = ()) -> StepRun:
    with tempfile.TemporaryDirectory(prefix="spechestra-step-") as tmp:
        request, result = os.path.join(tmp, "request.pkl"), os.path.join(tmp, "result.json")
        try:
            with open(request, "wb") as handle:
                pickle.dump({"module_path": module_path, "function": function, "inputs": inputs,
                             "import_dirs": list(import_dirs)}, handle)
        except Exception as exc:
            raise StepError(_full(tmp) or f"the step's inputs cannot be passed on: {exc}") from None
        run = run_reaped([sys.executable, str(CHILD), request, result], os.path.dirname(module_path), timeout,
                         import_paths=list(import_dirs), writable=[tmp], readable=[module_path], network=network,
                         declared_env=declared_env)
        output = run.output + (f"\n(the step left {run.left_running} process(es) running; they were killed)"
                               if run.left_running else "")
        if run.timed_out:
            raise StepError(f"step timed out after {timeout:g}s", output)
        if run.limit:
            raise StepError(f"step stopped: it used {run.limit} (see the SPECHESTRA_SANDBOX_* settings)", output)
        if not os.path.exists(result):
            raise StepError(_full(tmp) or f"step process died (exit code {run.returncode}) before returning", output)
        try:  # data only: never unpickle what generated code wrote
            with open(result, encoding="utf-8") as handle:
                status, value = json.load(handle)
            if status not in ("ok", "error") or (status == "ok" and not isinstance(value, dict)):
                raise ValueError("not a step result")
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            raise StepError(_full(tmp) or f"the step's outputs cannot be read back ({type(exc).__name__}): the step "
                            "process wrote something else than its result", output) from None
    if status != "ok":
        raise StepError(value, output)
    return StepRun(outputs=value, output=output, left_running=run.left_running)
