"""Our defaults on top of Prefect, in one place: task and flow decorators (no run-id-based
caching, persisted flow results), task runners, run context, states, artifacts, secrets
and variables. Flows and tasks use these instead of Prefect's own where a default matters;
reading run history is `history`, pausing for input is `pauses`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import queue
import typing
from typing import Any, Optional

from prefect import allow_failure, flow, tags, task, unmapped  # noqa: F401  (re-exported)
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE as NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, SyncClientContext, TaskRunContext
from prefect.exceptions import TerminationSignal
from prefect.filesystems import LocalFileSystem
from prefect.logging import get_logger, get_run_logger
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_RETRY_EXTRA_CODES,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.states import Cancelled, Completed, Crashed, Failed

from .. import redaction, stopping
from ..core.llm_calls import is_transient
from ..core.models import Outcome
from ..errors import ConfigurationError, EndedEarly
from ..server.address import api_url_for_this_process
from ..server.temporary import wait_ready
from ..server.tls import api_tls_context
from ..settings import export, prefect_source
from .stored import RedactingPickle

TASK_DEFAULTS: dict[str, Any] = {
    # Prefect's default cache policy includes the run id, so it never hits across runs; tasks
    # that want caching pass their own key function instead.
    "cache_policy": NO_CACHE,
    "persist_result": False,
    "result_serializer": RedactingPickle(),  # a persisted result never holds a key
    "log_prints": True,
}
# Flow results are persisted (under PREFECT_HOME/storage): a returned state occasionally comes
# back from the API without its in-memory data (MissingResult in a parent flow, seen in CI), and
# a persisted result is read back instead.
FLOW_DEFAULTS: dict[str, Any] = {"log_prints": True, "persist_result": True, "result_serializer": RedactingPickle()}


def retry_transient(task, task_run, state) -> bool:
    """A task-level `retry_condition_fn`: retry only a provider fault worth retrying (see
    `core.llm_calls.is_transient`), never a refused key or a bad answer."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


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


def stops_on_interrupt(fn):
    """For a flow's loop that waits on tasks in other threads: a Ctrl-C (KeyboardInterrupt) or a
    SIGTERM (Prefect's own handler raises TerminationSignal while a flow runs) that lands here asks
    those threads to stop (`stopping`) before Prefect ends the run, so no call starts after it."""
    @functools.wraps(fn)
    def waiting(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, TerminationSignal) as exc:
            stopping.request("Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "SIGTERM")
            raise
    return waiting


class Finishing:
    """A flow's submitted task runs, handed back as they finish: each runner's own done callback
    (threads, Dask, Ray) says so. Not `as_completed` and then `state.is_final()` on the others: a
    Prefect future knows its final state only once waited on, so each of those asked the API
    (5-40 ms a request on a busy local server), for every task still running, each time one
    finished, on the loop that starts the next ones."""

    def __init__(self) -> None:
        self._finished: queue.Queue = queue.Queue()

    def add(self, future):
        future.add_done_callback(self._finished.put)
        return future

    def next(self) -> list:
        """The task runs finished since the last call: waits for the first, takes every other."""
        finished = [self._finished.get()]
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                return finished


def run_tags(*names: str):
    """Tags for the flow runs started inside this block (how past runs are found again)."""
    return tags(*names)


def in_flow_run() -> bool:
    return FlowRunContext.get() is not None


def current_task_run_name() -> str:
    ctx = TaskRunContext.get()
    return ctx.task_run.name if ctx and ctx.task_run else ""


def in_deployment_run() -> bool:
    """True inside a run a worker started for a deployment (its top-level flow run)."""
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def is_root_flow_run() -> bool:
    """True inside a flow run that no other flow run started (not a subflow)."""
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.parent_task_run_id is None)


def current_flow_run_id() -> Optional[str]:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def owning_flow_run_id() -> Optional[str]:
    """The flow run the current task run belongs to, also in a process with no flow context (Dask)."""
    ctx = TaskRunContext.get()
    if ctx and ctx.task_run and ctx.task_run.flow_run_id:
        return str(ctx.task_run.flow_run_id)
    return current_flow_run_id()


def logger():
    """The run logger inside a run (its lines land in the run history), else a plain logger."""
    try:
        return get_run_logger()
    except Exception:
        return get_logger("spechestra")


@contextlib.contextmanager
def quiet_heartbeats():
    """Flows run by a command or the Python API send no heartbeats unless the user chose a
    frequency: nothing watches them (the crash automation watches deployment runs, whose job
    variables turn heartbeats on), and Prefect joins the heartbeat thread at every (sub)flow's end,
    which waits out its 1 s sleep (0.86 s of a 2.7 s cached build here). Prefect 3.9's default is
    180 s, not off, so restoring the default is not enough. `local_api` and `using_api` quiet
    them already (with their own settings: one derivation, not one each)."""
    with _settings(_heartbeat_updates()):
        yield


def _heartbeat_updates() -> dict:
    if PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None \
            or prefect_source("PREFECT_FLOWS_HEARTBEAT_FREQUENCY") != "default":
        return {}
    return {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}


@contextlib.contextmanager
def _settings(updates: dict):
    """Prefect's `temporary_settings`, entered only for a change: each builds a new settings object
    from every source Prefect reads (30-45 ms of CPU here), so a call's changes go in at once."""
    if not updates:
        yield
        return
    with temporary_settings(updates):
        yield


def secret_value(block_name: str) -> str:
    """The value of a Prefect Secret block (raises a clear error if it does not exist)."""
    from prefect.blocks.system import (
        Secret,  # importing blocks registers them all: only when used
    )
    wait_ready()
    try:
        value = Secret.load(block_name).get()  # type: ignore[union-attr]
    except ValueError as exc:
        raise ConfigurationError(f"SPECHESTRA_API_KEY_BLOCK={block_name!r}: no such Secret block ({exc})",
                                 setting="SPECHESTRA_API_KEY_BLOCK") from None
    redaction.register(value)  # from here on, logs, prints and provider errors never carry it
    return value


def variable_value(name: str) -> Optional[str]:
    """A Prefect Variable's value, or None when unset or no API is reachable.

    Outside a run with no server configured, Prefect would start a temporary one just to answer;
    there is nothing to read then, so this returns None at once.
    """
    if not in_flow_run() and not PREFECT_API_URL.value():
        return None
    wait_ready()  # a temporary server that never came up says so, as before any read
    try:
        with client() as c:  # not Variable.get: its client would load the CA bundle again
            variable = c.read_variable_by_name(name)
    except Exception:
        return None
    value = variable.value if variable is not None else None
    return str(value) if value not in (None, "") else None


def markdown_artifact(markdown: str, key: Optional[str] = None, description: Optional[str] = None) -> str:
    """The artifact's id (a resume form links to it)."""
    return str(create_markdown_artifact(markdown=redaction.redact(markdown), key=key,
                                        description=redaction.redact(description or "") or None))


def ui_link(path: str) -> str:
    """A link into the Prefect UI: absolute where the UI's address is known (PREFECT_UI_URL, or
    derived by Prefect from PREFECT_API_URL), else relative to the UI that shows it."""
    from prefect.settings import PREFECT_UI_URL
    base = (PREFECT_UI_URL.value() or "").rstrip("/")
    return f"{base}{path}"


def table_artifact(rows: list[dict], key: Optional[str] = None, description: Optional[str] = None) -> None:
    create_table_artifact(table=redaction.scrub(rows), key=key, description=redaction.redact(description or "") or None)


# Outcomes that end a run without success, and the Prefect state each becomes.
_ENDINGS = {Outcome.FAILED: (Failed, "Failed"), Outcome.BLOCKED: (Cancelled, "Blocked"),
            Outcome.SKIPPED: (Cancelled, "Skipped"), Outcome.REJECTED: (Cancelled, "Rejected"),
            Outcome.CANCELLED: (Cancelled, "Cancelled"), Outcome.STOPPED: (Cancelled, "Stopped"),
            Outcome.BUDGET_REACHED: (Cancelled, "BudgetReached")}


def final_state(result: Any, outcome: Optional[Outcome] = None, message: Optional[str] = None):
    """What a task or flow returns for `result`: the result itself when its outcome is a success,
    else the Prefect state its outcome names (Failed, or Cancelled named Blocked, Rejected,
    Stopped...) carrying the result, so the UI shows how it ended and callers still get it."""
    outcome = outcome if outcome is not None else result.outcome
    if outcome.ok:
        return result
    message = message if message is not None else (getattr(result, "message", "") or getattr(result, "error", "")
                                                   or outcome.value)
    state, name = _ENDINGS[outcome]
    message = redaction.redact(message)  # state messages reach the UI, events and the API as they are
    return state(message=message, data=EndedEarly(message, result), name=name)


def cached_state(result: Any):
    """A Completed state named Cached (as Prefect shows its own cache hits) carrying `result`."""
    return Completed(name="Cached", data=result, message="served from the build cache")


def mark_crashed(flow_run_id: str, message: str) -> bool:
    """Set a run that is still Running (its process is gone) to Crashed; True if it was."""
    try:
        with client() as c:
            run = c.read_flow_run(flow_run_id)
            if run.state is None or not run.state.is_running():
                return False
            c.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
            return True
    except Exception:  # a run from another server, or none: nothing to mark
        return False


def local_storage(path: str):
    """Result storage in a project folder (results survive the process: resumable builds).

    Prefect wants storage blocks saved server-side, so each results folder gets a block named
    after a hash of its path (idempotent).
    """
    block = LocalFileSystem(basepath=path)
    block.save("spechestra-results-" + hashlib.sha1(path.encode()).hexdigest()[:16], overwrite=True)
    return block


def progress_artifact(percent: float, description: str):
    try:
        return create_progress_artifact(progress=percent, description=redaction.redact(description))
    except Exception:  # artifacts are a convenience; a build never fails for one
        return None


def update_progress(artifact_id, percent: float) -> None:
    if artifact_id is None:
        return
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


def configured_api_url() -> Optional[str]:
    """PREFECT_API_URL as Prefect itself reads it: the environment, the active profile
    (`prefect config set`) or a `.env` file."""
    return PREFECT_API_URL.value() or None


#: API answers Prefect's client should retry besides its own (408, 429, 502, 503): a server whose
#: database is restarting answers 500 for those seconds (a build failed on one), a proxy 504.
CLIENT_RETRY_CODES = frozenset({500, 504})


def _blip_updates() -> dict:
    """Inside (and in child processes): Prefect's client retries those answers too, with its own
    backoff (PREFECT_CLIENT_MAX_RETRIES, about a minute in all), unless the user chose the codes
    (environment, profile or `.env`: read through Prefect's settings)."""
    if PREFECT_CLIENT_RETRY_EXTRA_CODES.value():
        return {}
    export("PREFECT_CLIENT_RETRY_EXTRA_CODES", ",".join(map(str, sorted(CLIENT_RETRY_CODES))), only_if_unset=True)
    return {PREFECT_CLIENT_RETRY_EXTRA_CODES: set(CLIENT_RETRY_CODES)}


@contextlib.contextmanager
def local_api():
    """Inside: Prefect talks to the configured PREFECT_API_URL when there is one, else to the
    managed local server (started in the background if need be; `server.local`), else, in
    temporary mode, to a server of this process's own (`server.temporary`), waited for here
    if it is still starting. Also: API blips ridden out, heartbeats quiet (`quiet_heartbeats`)."""
    wait_ready()
    updates = {**_blip_updates(), **_heartbeat_updates()}
    if not configured_api_url():
        updates[PREFECT_API_URL] = api_url_for_this_process(None)
    with _settings(updates):
        yield


@contextlib.contextmanager
def using_api(url: str):
    """Inside: Prefect (in this process and the threads it starts) talks to `url`; so do child
    processes, which get it in their environment. Also as `local_api`: blips, heartbeats."""
    export("PREFECT_API_URL", url)
    updates = {**_blip_updates(), **_heartbeat_updates()}
    if configured_api_url() != url:
        updates[PREFECT_API_URL] = url
    with _settings(updates):
        yield


def client():
    """A synchronous Prefect client (use as a context manager): inside a run, the engine's own;
    elsewhere a new one on this process's TLS context (`server.tls`: Prefect would load the CA
    bundle again for each)."""
    wait_ready()
    if SyncClientContext.get() is not None:
        return get_client(sync_client=True)
    return get_client(sync_client=True, httpx_settings={"verify": api_tls_context()})
