"""Reading Prefect's run history back: flow runs, task runs, artifacts, and the traces built
from them. This is how any process (the CLI, a test, another machine) sees what ran.
"""

from __future__ import annotations

import json
import time
from typing import Optional
from uuid import UUID

from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterTags,
)
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, TaskRunSort
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from ..core import tracing
from ..errors import RunNotFound
from .prefect import client, markdown_artifact, table_artifact


def read_flow_run(flow_run_id: str):
    """One flow run; RunNotFound (a LookupError) naming the id (and where we looked) when there is none."""
    try:
        with client() as c:
            return c.read_flow_run(flow_run_id)
    except ObjectNotFound:
        where = PREFECT_API_URL.value() or f"the local history in {PREFECT_HOME.value()}"
        raise RunNotFound(f"no flow run {flow_run_id} in {where}", flow_run_id=flow_run_id) from None


def read_flow_runs(flow_name: str, tag: Optional[str] = None, limit: int = 50) -> list:
    """Runs of one flow (optionally with a tag), newest first."""
    run_filter = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])) if tag else None
    with client() as c:
        return c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                                flow_run_filter=run_filter, sort=FlowRunSort.START_TIME_DESC, limit=limit)


def read_child_flow_runs(flow_run_id: str) -> list:
    """Subflow runs started by one flow run (e.g. the stages of `compose_build_perform`)."""
    with client() as c:
        return c.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(flow_run_id)])))


def settle_runs(flow_run_id: str, timeout: float = 30.0) -> None:
    """Wait until a flow run and its subflows have every task-run record stored and final.

    A process in ephemeral mode that exits right after a flow returns can lose task-run records
    still on their way to the API; counts are stable twice in a row before this returns.
    """
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        ids = [flow_run_id] + [str(r.id) for r in read_child_flow_runs(flow_run_id)]
        runs = [t for i in ids for t in read_task_runs(i)]
        now = (len(ids), len(runs), all(t.state and t.state.is_final() for t in runs))
        if now == last and now[2]:
            return
        last = now
        time.sleep(0.3)


def read_task_runs(flow_run_id: str) -> list:
    """All task runs of one flow run, oldest first."""
    runs: list = []
    with client() as c:
        while True:  # the API returns at most 200 rows per call
            page = c.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200, offset=len(runs))
            runs.extend(page)
            if len(page) < 200:
                return runs


def read_artifacts(flow_run_id: str, key: Optional[str] = None) -> list:
    """Artifacts a flow run published (tables, markdown, progress), newest first."""
    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]),
                         key=ArtifactFilterKey(any_=[key]) if key else None)
    with client() as c:
        return c.read_artifacts(artifact_filter=flt, sort=ArtifactSort.CREATED_DESC)


def wait_for_task_runs(flow_run_id: str, expected: int, timeout: float = 30.0) -> list:
    """Wait until `expected` task runs of a flow run are recorded in a final state.

    Task-run records reach the API asynchronously; a process that reads or exits right after a
    flow returns can see (or store) only part of them.
    """
    deadline = time.monotonic() + timeout
    runs: list = []
    while True:
        runs = read_task_runs(flow_run_id)
        if len(runs) >= expected and all(r.state and r.state.is_final() for r in runs):
            return runs
        if time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def record_trace(result, inputs: dict, build_dir: str) -> dict:
    """Inside the perform flow, at its end: publish the values, read the run back, write the JSON
    copy. Returns the trace, with its file's path under "path"."""
    rows = tracing.value_rows(result)
    table_artifact(rows, key=tracing.TRACE_KEY, description=f"Steps of workflow {result.workflow}: values in and out")
    runs = wait_for_task_runs(result.flow_run_id, expected=len(result.steps)) if result.flow_run_id else []
    flow_run = read_flow_run(result.flow_run_id) if result.flow_run_id else None
    steps = tracing.steps_from_runs(runs, tracing.values_by_step(rows))
    trace = tracing.document(result, inputs, flow_run.name if flow_run else None, steps)
    trace["path"] = tracing.write_copy(trace, build_dir)
    markdown_artifact(f"```\n{tracing.format_tree(trace)}\n```\n", key="perform-tree",
                      description=f"Trace of workflow {result.workflow}")
    return trace


def trace_of(flow_run) -> dict:
    """One past perform run, rebuilt from the Prefect API alone."""
    tables = read_artifacts(str(flow_run.id), key=tracing.TRACE_KEY)
    rows: list[dict] = []
    if tables:
        data = tables[0].data
        rows = json.loads(data) if isinstance(data, str) else (data or [])
    steps = tracing.steps_from_runs(read_task_runs(str(flow_run.id)), tracing.values_by_step(rows))
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
    return [trace_of(run) for run in read_flow_runs("perform", tag=f"workflow:{workflow}", limit=limit)]


def get_trace_by_id(flow_run_id: str) -> dict:
    """The trace of a perform run, or of the perform stage of a pipeline run; any other run (a
    build's, say) has no trace, said in one line (was printed as `perform None`, exit 0)."""
    run = read_flow_run(flow_run_id)
    with client() as c:
        def name_of(one) -> str:
            return c.read_flow(one.flow_id).name
        name = name_of(run)
        if name != "perform":
            run = next((r for r in read_child_flow_runs(str(run.id)) if name_of(r) == "perform"), None)
    if run is None:
        raise RunNotFound(f"flow run {flow_run_id} is a {name} run, which performed no workflow: give the id of a "
                          "perform run, or of the pipeline run above one (`spechestra trace --workflow NAME` "
                          "finds the newest)", flow_run_id=flow_run_id)
    return trace_of(run)
