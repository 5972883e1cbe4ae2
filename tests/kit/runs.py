"""Test kit: reading and driving runs on a Prefect server the way a test needs to (what is
paused, the stages of a pipeline run, waiting for a state, triggering a deployment)."""

from __future__ import annotations

import time

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments import run_deployment

from spechestra.orchestration.history import read_child_flow_runs, read_flow_run
from spechestra.orchestration.prefect import client


def paused_runs(limit: int = 50) -> list:
    """Flow runs waiting for an answer (reviews, checkpoints), oldest first."""
    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with client() as c:
        return c.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.START_TIME_ASC, limit=limit)


def stages(flow_run_id: str) -> list[tuple[str, str]]:
    """(flow name, state name) of each subflow run of a flow run, in start order."""
    runs = sorted(read_child_flow_runs(flow_run_id), key=lambda r: (r.start_time is None, r.start_time or 0))
    with client() as c:
        names = {fid: c.read_flow(fid).name for fid in {r.flow_id for r in runs}}
    return [(names[r.flow_id], r.state.name if r.state else "?") for r in runs]


def wait_for_flow_run_state(flow_run_id: str, predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll a flow run until `predicate(state)` holds; return the flow run, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        run = read_flow_run(flow_run_id)
        if run.state is not None and predicate(run.state):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"flow run {flow_run_id} is still {run.state.name if run.state else None!r}")
        time.sleep(interval)


def trigger(deployment: str, parameters: dict) -> str:
    """Start a run of a deployment (`flow-name/deployment-name`) for a worker to pick up; its id."""
    return str(run_deployment(deployment, parameters=parameters, timeout=0).id)


def read_deployment(name: str):
    with client() as c:
        return c.read_deployment_by_name(name)


def flow_run_events(flow_run_id: str, until: str = "prefect.flow-run.Completed", timeout: float = 60.0) -> list[str]:
    """The names of the events the server stored about a flow run, once `until` is among them
    (what a run's process sent while it ran, such as a heartbeat at its start, reached the server
    before its final state did)."""
    from prefect.events.filters import EventFilter, EventResourceFilter
    deadline = time.monotonic() + timeout
    while True:
        flt = EventFilter(resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]))  # up to now
        with client() as c:
            reply = c._client.post("/events/filter", json={"filter": flt.model_dump(mode="json"), "limit": 50})
        names = [event["event"] for event in reply.json()["events"]]
        if until in names:
            return names
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {until} event for flow run {flow_run_id} after {timeout}s: {names}")
        time.sleep(0.5)


def recorded(flow_run_id: str, specs: int, timeout: float = 20) -> tuple[list[str], list[str]]:
    """The run's log lines and the final states of its task runs on the server, once the run's
    last log line and `specs` finished task runs are there (or after `timeout` s)."""
    from prefect.client.schemas.filters import FlowRunFilterId, LogFilter, LogFilterFlowRunId
    deadline = time.monotonic() + timeout
    while True:
        with client() as c:
            logs = [log.message for log in c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]
            runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        states = sorted(r.state.name for r in runs if r.state)
        if (any("Finished in state" in m for m in logs) and states.count("Completed") >= specs) \
                or time.monotonic() > deadline:
            return logs, states
        time.sleep(0.5)


# --- traces ------------------------------------------------------------------------------------


def count_task_run_reads(monkeypatch) -> list:
    """The task runs this process reads one by one from the API from now on (Prefect's sync and
    async clients, which still answer): how a flow loop that should not ask is caught asking."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    asked: list = []
    for cls in (SyncPrefectClient, PrefectClient):
        def counted(self, *args, _real=cls.read_task_run, **kwargs):
            asked.append(kwargs.get("task_run_id", args[0] if args else None))
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(cls, "read_task_run", counted)
    return asked
