"""The one boundary between Spechestra and Prefect.

Everything Prefect-specific that the rest of the package relies on lives here: our task and
flow defaults (no run-id-based caching, no implicit result persistence), the review pause, and
reads of the run history. Swapping a Prefect behaviour means changing this file only.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Optional, Type, TypeVar

from prefect import flow, tags, task, unmapped  # noqa: F401  (unmapped is re-exported)
from prefect.futures import as_completed  # noqa: F401  (re-exported)
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.logging import get_logger, get_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from . import settings

T = TypeVar("T")

TASK_DEFAULTS: dict[str, Any] = {
    # Prefect's default cache policy includes the run id, so it never hits across runs; tasks
    # that want caching pass their own key function instead.
    "cache_policy": NO_CACHE,
    "persist_result": False,
    "log_prints": True,
}
FLOW_DEFAULTS: dict[str, Any] = {"log_prints": True, "persist_result": False}


def sp_task(fn=None, **options):
    """`@prefect.task` with Spechestra's defaults (overridable per task)."""
    merged = {**TASK_DEFAULTS, **options}
    return task(fn, **merged) if fn is not None else task(**merged)


def sp_flow(fn=None, **options):
    """`@prefect.flow` with Spechestra's defaults (overridable per flow)."""
    merged = {**FLOW_DEFAULTS, **options}
    if fn is None:
        return lambda f: flow(_document_parameters(f), **merged)
    return flow(_document_parameters(fn), **merged)


def _document_parameters(fn):
    """Copy each `Annotated[..., Field(description=...)]` into an `Args:` docstring section.

    Prefect builds a deployment's parameter form (the UI's run form) from the signature, but
    takes descriptions only from the docstring; this keeps the Field the single source.
    """
    import typing
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return fn
    lines = []
    for name, hint in hints.items():
        for meta in getattr(hint, "__metadata__", ()):
            description = getattr(meta, "description", None)
            if name != "return" and description:
                lines.append(f"    {name}: {description}")
    if lines and "Args:" not in (fn.__doc__ or ""):
        summary = (fn.__doc__ or "").strip() or f"The {fn.__name__} flow."  # griffe needs a summary line first
        fn.__doc__ = summary + "\n\nArgs:\n" + "\n".join(lines) + "\n"
    return fn


def cache_by(key_of):
    """A cache policy keyed only by `key_of(parameters)` (Prefect's default includes the run id)."""
    from prefect.cache_policies import CacheKeyFnPolicy
    return CacheKeyFnPolicy(cache_key_fn=lambda ctx, params: key_of(params))


def thread_runner(max_workers: int) -> ThreadPoolTaskRunner:
    return ThreadPoolTaskRunner(max_workers=max(1, max_workers))


def build_runner(max_workers: int, kind: Optional[str] = None):
    """The task runner for a build: threads, or Dask (needs `pip install prefect-dask`).

    With Dask each spec's task is pickled to a worker process, which chooses its provider by
    setting (`SPECHESTRA_PROVIDER`) and talks to the same Prefect API.
    """
    kind = kind or settings.task_runner()
    if kind == "threads":
        return thread_runner(max_workers)
    if kind == "dask" or kind.startswith("dask:"):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ValueError("SPECHESTRA_TASK_RUNNER=dask needs prefect-dask: pip install 'spechestra[dask]'") from None
        if kind.startswith("dask:"):
            return DaskTaskRunner(address=kind.split(":", 1)[1])
        return DaskTaskRunner(cluster_kwargs={"n_workers": max(1, max_workers), "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    raise ValueError(f"SPECHESTRA_TASK_RUNNER={kind!r}: use threads, dask, or dask:tcp://HOST:PORT")


def run_tags(*names: str):
    """Tags for the flow runs started inside this block (how past runs are found again)."""
    return tags(*names)


def in_flow_run() -> bool:
    return FlowRunContext.get() is not None


def in_task_run() -> bool:
    return TaskRunContext.get() is not None


def current_task_run_name() -> str:
    ctx = TaskRunContext.get()
    return ctx.task_run.name if ctx and ctx.task_run else ""


def current_flow_run_id() -> Optional[str]:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def logger():
    """The run logger inside a run (its lines land in the run history), else a plain logger."""
    try:
        return get_run_logger()
    except Exception:
        return get_logger("spechestra")


@contextlib.contextmanager
def quiet_heartbeats():
    """Run flows without the per-flow heartbeat thread (it costs ~1 s of join per (sub)flow)."""
    with temporary_settings(restore_defaults={PREFECT_FLOWS_HEARTBEAT_FREQUENCY}):
        yield


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


def active_limit(name: Optional[str]) -> Optional[str]:
    """`name` if a global concurrency limit of that name exists and is active, else None.

    Checked once per build, so builds without a limit make no extra API call per LLM call.
    """
    if not name:
        return None
    try:
        with client() as c:
            return name if c.read_global_concurrency_limit_by_name(name).active else None
    except Exception:  # ObjectNotFound: no such limit configured
        return None


def limit_slot(name: Optional[str]):
    """A context-manager factory holding one slot of global concurrency limit `name` (if any)."""
    if not name:
        return contextlib.nullcontext
    from prefect.concurrency.sync import concurrency
    return lambda: concurrency(name, occupy=1, strict=False)


def secret_value(block_name: str) -> str:
    """The value of a Prefect Secret block (raises a clear error if it does not exist)."""
    from prefect.blocks.system import Secret
    try:
        return Secret.load(block_name).get()
    except ValueError as exc:
        raise ValueError(f"SPECHESTRA_API_KEY_BLOCK={block_name!r}: no such Secret block ({exc})") from None


def variable_value(name: str) -> Optional[str]:
    """A Prefect Variable's value, or None when unset or no API is reachable.

    Outside a run with no server configured, Prefect would start a temporary one just to answer;
    there is nothing to read then, so this returns None at once.
    """
    from prefect.settings import PREFECT_API_URL
    if not in_flow_run() and not PREFECT_API_URL.value():
        return None
    try:
        from prefect.variables import Variable
        value = Variable.get(name, default=None)
    except Exception:
        return None
    return str(value) if value not in (None, "") else None


def trigger(deployment: str, parameters: dict) -> str:
    """Start a run of a deployment (`flow-name/deployment-name`) for a worker to pick up; its id."""
    from prefect.deployments import run_deployment
    return str(run_deployment(deployment, parameters=parameters, timeout=0).id)


def read_deployment(name: str):
    with client() as c:
        return c.read_deployment_by_name(name)


def markdown_artifact(markdown: str, key: Optional[str] = None, description: Optional[str] = None) -> None:
    from prefect.artifacts import create_markdown_artifact
    create_markdown_artifact(markdown=markdown, key=key, description=description)


def table_artifact(rows: list[dict], key: Optional[str] = None, description: Optional[str] = None) -> None:
    from prefect.artifacts import create_table_artifact
    create_table_artifact(table=rows, key=key, description=description)


def cancelled_state(message: str, data: Any = None, name: str = "Cancelled"):
    """A final Cancelled state carrying `data`, for a flow that ends on purpose without finishing."""
    from prefect.states import Cancelled
    return Cancelled(message=message, data=EndedEarly(message, data), name=name)


class EndedEarly(Exception):
    """A run that failed or was cancelled on purpose, carrying what it produced (`result`).

    Prefect raises a failed or cancelled state's data when something reads it with raising on
    (the worker's engine does, at the end of every run); data that is not an exception makes
    that a TypeError. This one says why in its message and still hands the partial result to
    `state_result`.
    """

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


def failed_state(message: str, data: Any = None):
    from prefect.states import Failed
    return Failed(message=message, data=EndedEarly(message, data))


def local_storage(path: str):
    """Result storage in a project folder (results survive the process: resumable builds).

    Prefect wants storage blocks saved server-side, so each results folder gets a block named
    after a hash of its path (idempotent).
    """
    import hashlib
    from prefect.filesystems import LocalFileSystem
    block = LocalFileSystem(basepath=path)
    block.save("spechestra-results-" + hashlib.sha1(path.encode()).hexdigest()[:16], overwrite=True)
    return block


def progress_artifact(percent: float, description: str):
    from prefect.artifacts import create_progress_artifact
    try:
        return create_progress_artifact(progress=percent, description=description)
    except Exception:  # artifacts are a convenience; a build never fails for one
        return None


def update_progress(artifact_id, percent: float) -> None:
    if artifact_id is None:
        return
    from prefect.artifacts import update_progress_artifact
    try:
        update_progress_artifact(artifact_id=artifact_id, progress=percent)
    except Exception:
        pass


def flow_value(state) -> Any:
    """What a flow run returned; an exception it raised is raised here."""
    value = state_result(state)
    if isinstance(value, BaseException):
        raise value
    return value


def state_result(state) -> Any:
    """The value a finished run returned, whatever its final state (no raising)."""
    value = state.result(raise_on_failure=False)
    return value.result if isinstance(value, EndedEarly) and value.result is not None else value
