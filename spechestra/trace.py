"""Execution traces, read from Prefect's run history (flow run, task runs, artifacts).

Names, states and timings come from the task-run records; the values each step received and
returned come from the `perform-trace` table artifact the run published. A trace is therefore
available for any past run, from any process, with no file of ours; the JSON file under
`build/.spechestra/traces/` is a copy for tools that want a file (upstream's location).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

from .fileio import atomic_write
from .prefect_api import (markdown_artifact, read_artifacts, read_flow_run, read_flow_runs, read_task_runs,
                          table_artifact, wait_for_task_runs)

TRACE_KEY = "perform-trace"


def _plain(value: Any) -> Any:
    """JSON-safe copy (values a step returned may be sets, tuples, objects)."""
    return json.loads(json.dumps(value, default=repr))


def _when(moment) -> Optional[str]:
    return moment.isoformat() if moment is not None and hasattr(moment, "isoformat") else None


def _seconds(task_run) -> float:
    if task_run.start_time and task_run.end_time:
        return round((task_run.end_time - task_run.start_time).total_seconds(), 3)
    return round(task_run.total_run_time.total_seconds(), 3) if task_run.total_run_time else 0.0


def _steps(task_runs: list, values: dict[str, dict]) -> list[dict]:
    steps = []
    for run in sorted(task_runs, key=lambda r: (r.start_time is None, r.start_time or 0)):
        if not run.task_key.startswith("step_task"):
            continue
        v = values.get(run.name, {})
        steps.append({"name": run.name, "spec": v.get("spec"), "state": run.state.name if run.state else None,
                      "started": _when(run.start_time), "ended": _when(run.end_time), "duration": _seconds(run),
                      "run_count": run.run_count, "inputs": v.get("inputs", {}), "outputs": v.get("outputs", {}),
                      "error": v.get("error") or (run.state.message if run.state and run.state.is_failed() else None)})
    return steps


def record(result, inputs: dict, build_dir: str) -> dict:
    """Inside the perform flow, at its end: publish the values, read the run back, write the JSON copy."""
    rows = [{"step": s.name, "spec": s.spec, "success": s.success, "duration": s.duration,
             "inputs": json.dumps(_plain(s.inputs)), "outputs": json.dumps(_plain(s.outputs)), "error": s.error or ""}
            for s in result.steps]
    table_artifact(rows, key=TRACE_KEY, description=f"Steps of workflow {result.workflow}: values in and out")
    runs = wait_for_task_runs(result.flow_run_id, expected=len(result.steps)) if result.flow_run_id else []
    values = {r["step"]: {"spec": r["spec"], "inputs": json.loads(r["inputs"]), "outputs": json.loads(r["outputs"]),
                          "error": r["error"] or None} for r in rows}
    flow_run = read_flow_run(result.flow_run_id) if result.flow_run_id else None
    trace = {"workflow": result.workflow, "flow_run_id": result.flow_run_id,
             "flow_run_name": flow_run.name if flow_run else None, "timestamp": time.time(),
             "state": "Completed" if result.success else ("Stopped" if (result.error or "").startswith("stopped")
                                                           else "Failed"),
             "success": result.success, "duration": result.duration, "inputs": _plain(inputs),
             "outputs": _plain(result.outputs), "error": result.error, "steps": _steps(runs, values)}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = os.path.join(build_dir, ".spechestra", "traces",
                        f"{result.workflow.replace('/', '.')}-{stamp}-{(result.flow_run_id or 'local')[:8]}.json")
    atomic_write(path, json.dumps(trace, indent=2))
    trace["path"] = path
    markdown_artifact(f"```\n{format_tree(trace)}\n```\n", key="perform-tree",
                      description=f"Trace of workflow {result.workflow}")
    return trace


def from_history(flow_run) -> dict:
    """One past perform run, rebuilt from the Prefect API alone."""
    tables = read_artifacts(str(flow_run.id), key=TRACE_KEY)
    rows = []
    if tables:
        data = tables[0].data
        rows = json.loads(data) if isinstance(data, str) else (data or [])
    values = {r["step"]: {"spec": r.get("spec"), "inputs": json.loads(r.get("inputs") or "{}"),
                          "outputs": json.loads(r.get("outputs") or "{}"), "error": r.get("error") or None}
              for r in rows}
    steps = _steps(read_task_runs(str(flow_run.id)), values)
    params = flow_run.parameters or {}
    done = [s for s in steps if s["state"] == "Completed"]
    state = flow_run.state
    return {"workflow": params.get("workflow"), "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name,
            "timestamp": flow_run.start_time.timestamp() if flow_run.start_time else None,
            "state": state.name if state else None, "success": bool(state and state.is_completed()),
            "duration": round(flow_run.total_run_time.total_seconds(), 3) if flow_run.total_run_time else 0.0,
            "inputs": params.get("inputs") or {}, "outputs": done[-1]["outputs"] if done else {},
            "error": state.message if state and not state.is_completed() else None, "steps": steps}


def get_traces(workflow: str, limit: int = 50) -> list[dict]:
    """Past runs of `workflow`, newest first, from Prefect's run history (not from files)."""
    return [from_history(run) for run in read_flow_runs("perform", tag=f"workflow:{workflow}", limit=limit)]


def get_trace_by_id(flow_run_id: str) -> dict:
    return from_history(read_flow_run(flow_run_id))


def format_tree(trace: dict) -> str:
    """A readable tree: the run, then each step with its state, timing, inputs and outputs."""
    head = (f"perform {trace.get('workflow')}  |  flow run {trace.get('flow_run_name')} ({trace.get('flow_run_id')})"
            f"  |  {trace.get('state')}  |  {trace.get('duration', 0):.2f}s")
    lines = [head, f"inputs: {json.dumps(trace.get('inputs', {}))}"]
    steps = trace.get("steps", [])
    for i, step in enumerate(steps):
        branch, pad = ("└── ", "    ") if i == len(steps) - 1 else ("├── ", "│   ")
        lines.append(f"{branch}{step['name']} ({step.get('spec')})  {step.get('state')}  {step.get('duration', 0):.2f}s")
        lines.append(f"{pad}in:  {json.dumps(step.get('inputs', {}))}")
        if step.get("error"):
            lines.append(f"{pad}error: {str(step['error']).splitlines()[0]}")
        else:
            lines.append(f"{pad}out: {json.dumps(step.get('outputs', {}))}")
    lines.append(f"outputs: {json.dumps(trace.get('outputs', {}))}")
    if trace.get("error"):
        lines.append(f"stopped: {trace['error']}")
    return "\n".join(lines)
