"""Run one step's compiled module in its own interpreter, with a timeout. No Prefect here."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("step_child.py")


class StepError(RuntimeError):
    """The step's own failure (exception, timeout, crash), with its output for the log."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


@dataclass
class StepRun:
    outputs: dict
    output: str  # what the step printed


def run_step(module_path: str, function: str, inputs: dict, import_dirs: tuple[str, ...],
             timeout: float) -> StepRun:
    with tempfile.TemporaryDirectory(prefix="spechestra-step-") as tmp:
        request, result = os.path.join(tmp, "request.pkl"), os.path.join(tmp, "result.pkl")
        try:
            with open(request, "wb") as handle:
                pickle.dump({"module_path": module_path, "function": function, "inputs": inputs,
                             "import_dirs": list(import_dirs)}, handle)
        except Exception as exc:
            raise StepError(f"the step's inputs cannot be passed on: {exc}") from None
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([*import_dirs, os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.Popen([sys.executable, str(CHILD), request, result], cwd=os.path.dirname(module_path),
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            raise StepError(f"step timed out after {timeout:g}s", output or "") from None
        if not os.path.exists(result):
            raise StepError(f"step process died (exit code {proc.returncode}) before returning", output or "")
        try:
            with open(result, "rb") as handle:
                status, value = pickle.load(handle)
        except Exception as exc:  # e.g. an object of a class only the step's module defines
            raise StepError(f"the step's outputs cannot be read back: {exc}", output or "") from None
    if status != "ok":
        raise StepError(value, output or "")
    return StepRun(outputs=value, output=output or "")
