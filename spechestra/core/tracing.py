"""Execution traces as plain data: the document's shape, its JSON copy, and the tree a person reads.

The facts come from Prefect's run history (`orchestration.history` reads them: task-run names,
states and timings, plus the values table the perform run published); this module only shapes
them, so the same trace can be built at the end of a run or for any past run from any process.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Optional

from .fileio import masked_write
from .models import Outcome
from .text import first_line

#: Key of the table artifact holding each step's inputs and outputs.
TRACE_KEY = "perform-trace"
#: Tag on every step's task run, so a trace never depends on how Prefect names task keys.
STEP_TAG = "spechestra-step"

STATE_NAMES = {Outcome.COMPLETED: "Completed", Outcome.STOPPED: "Stopped", Outcome.FAILED: "Failed"}


#: Characters of one value that a trace, an artifact or the terminal shows; the full value stays in
#: the PerformResult (Python) and the step's persisted result in the run history.
VALUE_LIMIT = 2000


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_finite(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """JSON-safe copy: sets, tuples and objects become lists and reprs; NaN and infinities become
    strings, since bare `NaN` is not JSON."""
    return json.loads(json.dumps(_finite(json.loads(json.dumps(_finite(value), default=repr))), allow_nan=False))


def shown(value: Any, limit: int = VALUE_LIMIT) -> Any:
    """`plain(value)`, or, when its JSON is longer than `limit`, a note with the first part."""
    safe = plain(value)
    text = json.dumps(safe)
    if len(text) <= limit:
        return safe
    return {"truncated": f"{len(text):,} characters; the first {limit:,} follow (the full value is in the "
                         "run's result)", "start": text[:limit]}


def value_rows(result) -> list[dict]:
    """One row per step with its values in and out: the table artifact the trace is read from."""
    return [{"step": s.name, "spec": s.spec, "success": s.success, "duration": s.duration,
             "inputs": json.dumps(shown(s.inputs)), "outputs": json.dumps(shown(s.outputs)),
             "error": (s.error or "")[:VALUE_LIMIT]}
            for s in result.steps]


def values_by_step(rows: list[dict]) -> dict[str, dict]:
    return {r["step"]: {"spec": r.get("spec"), "inputs": json.loads(r.get("inputs") or "{}"),
                        "outputs": json.loads(r.get("outputs") or "{}"), "error": r.get("error") or None}
            for r in rows}


def _when(moment) -> Optional[str]:
    return moment.isoformat() if moment is not None and hasattr(moment, "isoformat") else None


def _seconds(task_run) -> float:
    if task_run.start_time and task_run.end_time:
        return round((task_run.end_time - task_run.start_time).total_seconds(), 3)
    return round(task_run.total_run_time.total_seconds(), 3) if task_run.total_run_time else 0.0


def steps_from_runs(task_runs: list, values: dict[str, dict]) -> list[dict]:
    """Trace steps from step task-run records (state, timings) and the values table."""
    steps = []
    for run in sorted(task_runs, key=lambda r: (r.start_time is None, r.start_time or 0)):
        if STEP_TAG not in (run.tags or []):
            continue
        v = values.get(run.name, {})
        steps.append({"name": run.name, "spec": v.get("spec"), "state": run.state.name if run.state else None,
                      "started": _when(run.start_time), "ended": _when(run.end_time), "duration": _seconds(run),
                      "run_count": run.run_count, "inputs": v.get("inputs", {}), "outputs": v.get("outputs", {}),
                      "error": v.get("error") or (run.state.message if run.state and run.state.is_failed() else None)})
    return steps


def document(result, inputs: dict, flow_run_name: Optional[str], steps: list[dict]) -> dict:
    """The trace of a perform that just ended (`result` is its PerformResult)."""
    return {"workflow": result.workflow, "flow_run_id": result.flow_run_id, "flow_run_name": flow_run_name,
            "timestamp": time.time(), "state": STATE_NAMES.get(result.outcome, "Failed"),
            "success": result.success, "duration": result.duration, "inputs": shown(inputs),
            "outputs": shown(result.outputs), "error": result.error, "steps": steps}


def write_copy(trace: dict, build_dir: str) -> str:
    """The JSON copy under build/.spechestra/traces/ (upstream's location); returns its path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{trace['workflow'].replace('/', '.')}-{stamp}-{(trace.get('flow_run_id') or 'local')[:8]}.json"
    path = os.path.join(build_dir, ".spechestra", "traces", name)
    masked_write(path, json.dumps(plain(trace), indent=2, allow_nan=False))
    return path


def _line(value: Any, limit: int = 300) -> str:
    """One value on one line of the tree, cut at `limit` characters with a note."""
    text = json.dumps(shown(value))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters shown in full by --json)"


def format_tree(trace: dict) -> str:
    """A readable tree: the run, then each step with its state, timing, inputs and outputs."""
    head = (f"perform {trace.get('workflow')}  |  flow run {trace.get('flow_run_name')} ({trace.get('flow_run_id')})"
            f"  |  {trace.get('state')}  |  {trace.get('duration', 0):.2f}s")
    lines = [head, f"inputs: {_line(trace.get('inputs', {}))}"]
    steps = trace.get("steps", [])
    for i, step in enumerate(steps):
        branch, pad = ("└── ", "    ") if i == len(steps) - 1 else ("├── ", "│   ")
        lines.append(f"{branch}{step['name']} ({step.get('spec')})  {step.get('state')}  {step.get('duration', 0):.2f}s")
        lines.append(f"{pad}in:  {_line(step.get('inputs', {}))}")
        if step.get("error"):
            lines.append(f"{pad}error: {first_line(str(step['error']))}")
        else:
            lines.append(f"{pad}out: {_line(step.get('outputs', {}))}")
    lines.append(f"outputs: {_line(trace.get('outputs', {}))}")
    if trace.get("error"):
        lines.append(f"stopped: {trace['error']}")
    return "\n".join(lines)
