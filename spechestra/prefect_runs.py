"""The Prefect boundary, second half: run history (reads) and pauses for input.

Split from `prefect_api` (which re-exports everything here) to keep each file small; the rest of
the package still imports from `prefect_api` only.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Type, TypeVar

from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, resume_flow_run

from . import settings
from .prefect_api import current_flow_run_id, logger

T = TypeVar("T")

def root_flow_run_id() -> Optional[str]:
    """The top-level flow run above the current one (itself when it is not a subflow)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    run = ctx.flow_run
    with client() as c:
        while run.parent_task_run_id is not None:
            run = c.read_flow_run(c.read_task_run(run.parent_task_run_id).flow_run_id)
    return str(run.id)


def pause_for_input(input_type: Type[T], description: str, key: str, **initial: Any) -> T:
    """Pause until someone answers `input_type` (UI, CLI or API).

    It is the *top-level* run that pauses: the one a user triggered and is looking at (a review
    in the compose stage of `compose_build_perform` pauses the pipeline run, not a subflow the
    UI shows one level down). Polls every `SPECHESTRA_REVIEW_POLL` seconds (default 1; Prefect's
    own default of 10 s made resume-to-continue take ~11 s here) and gives up after
    `SPECHESTRA_REVIEW_TIMEOUT`.
    """
    form = input_type.with_initial_data(description=description, **initial)
    root = root_flow_run_id()
    if root is None or root == current_flow_run_id():
        return pause_flow_run(wait_for_input=form, timeout=settings.review_timeout(),
                              poll_interval=settings.review_poll_interval(), key=safe_key(key))
    return _pause_run(root, form, safe_key(key))


def _pause_run(flow_run_id: str, form, key: str):
    """`pause_flow_run` for another (the parent) run, whose process is busy running this subflow."""
    from uuid import UUID
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.states import Paused
    timeout = settings.review_timeout()
    state = Paused(timeout_seconds=timeout, reschedule=False, pause_key=key)
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = keyset
    logger().info("Pausing flow run %s for input (%s); resume it to continue.", flow_run_id, key)
    with client() as c:
        result = c.set_flow_run_state(flow_run_id, state)
        if result.state is None or not result.state.is_paused():
            raise RuntimeError(f"flow run {flow_run_id} cannot be paused: {result.details}")
        form.save(keyset, flow_run_id=UUID(flow_run_id))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(settings.review_poll_interval())
            run = c.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_running():
                return form.load(keyset, flow_run_id=UUID(flow_run_id))
            if run.state is not None and run.state.is_final():
                raise RuntimeError(f"flow run {flow_run_id} ended ({run.state.name}) while waiting for input")
    raise TimeoutError(f"no answer for {key} within {timeout}s")


def safe_key(text: str) -> str:
    """Prefect keys (pauses, inputs, artifacts) allow only lowercase letters, digits and dashes."""
    import re
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "key"


def resume_with_input(flow_run_id: str, answer: dict, timeout: float = 15.0) -> None:
    """Answer a paused flow run, exactly as the UI's resume form does.

    Prefect sets the run Paused a moment before it stores the form's schema; an answer in that
    gap is refused with "Run input schema not found", so it is retried briefly.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            resume_flow_run(flow_run_id, run_input=answer)
            return
        except RuntimeError as exc:
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def client():
    from prefect.client.orchestration import get_client
    return get_client(sync_client=True)


def read_flow_run(flow_run_id: str):
    with client() as c:
        return c.read_flow_run(flow_run_id)


def read_flow_runs(flow_name: str, tag: Optional[str] = None, limit: int = 50) -> list:
    """Runs of one flow (optionally with a tag), newest first."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort
    run_filter = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])) if tag else None
    with client() as c:
        return c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                                flow_run_filter=run_filter, sort=FlowRunSort.START_TIME_DESC, limit=limit)


def paused_runs(limit: int = 50) -> list:
    """Flow runs waiting for an answer (reviews, checkpoints), oldest first."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with client() as c:
        return c.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.START_TIME_ASC, limit=limit)


def read_child_flow_runs(flow_run_id: str) -> list:
    """Subflow runs started by one flow run (e.g. the stages of `compose_build_perform`)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    with client() as c:
        return c.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))


def stages(flow_run_id: str) -> list[tuple[str, str]]:
    """(flow name, state name) of each subflow run of a flow run, in start order."""
    runs = sorted(read_child_flow_runs(flow_run_id), key=lambda r: (r.start_time is None, r.start_time or 0))
    with client() as c:
        names = {fid: c.read_flow(fid).name for fid in {r.flow_id for r in runs}}
    return [(names[r.flow_id], r.state.name if r.state else "?") for r in runs]


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
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort
    runs: list = []
    with client() as c:
        while True:  # the API returns at most 200 rows per call
            page = c.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200, offset=len(runs))
            runs.extend(page)
            if len(page) < 200:
                return runs


def read_artifacts(flow_run_id: str, key: Optional[str] = None) -> list:
    """Artifacts a flow run published (tables, markdown, progress), newest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
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
    from prefect.deployments import run_deployment
    return str(run_deployment(deployment, parameters=parameters, timeout=0).id)


def read_deployment(name: str):
    with client() as c:
        return c.read_deployment_by_name(name)
