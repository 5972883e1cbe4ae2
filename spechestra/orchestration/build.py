"""Building on Prefect: the `build` flow, one task run per spec built, each submitted the moment
its own dependencies end; unchanged specs are reused together in one task run.

Caching is ours too (`core.build_cache`: successes only), and so is publishing: a spec's files
reach build/ only once its tests pass, and files edited by hand are kept on a cached rebuild.
Scheduling is ours rather than Prefect's `wait_for`, because a submitted task that waits on
upstream futures holds a worker thread; here only ready specs are submitted, longest remaining
dependency path first, at most `max_workers` at a time; each gets its dependencies' finished
outcomes as values. One build per project at a time (`core.project_lock`); the run's spending
cap is a `core.budget.Budget` in the runtime. The per-spec work itself is `core.spec_build`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from pydantic import Field
from specsoloist.parser import SpecParser
from typing_extensions import Annotated

from .. import stopping
from ..core import finished as finished_runs
from ..core.budget import Budget
from ..core.build_cache import BuildCache
from ..core.build_setup import needs_setup, prepare
from ..core.fileio import clean_stale_temp_files
from ..core.llm_calls import FileRecord
from ..core.models import BuildResult, Outcome, SpecOutcome
from ..core.options import (
    INCREMENTAL,
    MAX_FIXES,
    MAX_LLM_CALLS,
    MAX_TOKENS,
    MAX_WORKERS,
    RETRIES,
)
from ..core.planning import BuildOptions, Project
from ..core.precheck import check_build
from ..core.project import ledger_path, stop_path
from ..core.project_lock import project_lock
from ..core.publishing import publish, record_failure, recover
from ..core.spec_build import SpecJob, build_spec, changed_since_plan, remove_stale_staging
from ..errors import CannotWrite, ProjectBusy, SandboxUnavailable
from ..processes import sandbox, warm
from ..settings import settings
from . import runtime
from .build_report import progress_words, publish_artifacts, summarize
from .console_logs import one_line_for_our_errors
from .limits import active_limit, limit_slot, settle
from .places import project_here
from .prefect import (
    Finishing,
    allow_failure,
    cached_state,
    current_flow_run_id,
    final_state,
    flow_value,
    in_flow_run,
    local_storage,
    logger,
    mark_crashed,
    owning_flow_run_id,
    progress_artifact,
    quiet_heartbeats,
    retry_transient,
    sp_flow,
    sp_task,
    state_result,
    stops_on_interrupt,
    update_progress,
)
from .reuse import reuse, reuse_unchanged
from .runners import build_runner

# What the next build knows of a run its lock names that is still Running: its process is gone
# without recording an end. Killed (kill -9, out of memory, a lost machine) or stopped by the
# watchdog when its server did not answer (the end could not be recorded there): not which.
ABANDONED = ("the process running this build ended without recording the run's end (killed, or stopped while its "
             "Prefect server was unreachable); found by the next build of the project")


@sp_task(name="build-spec", task_run_name="{job.name}", persist_result=True, retries=1, retry_delay_seconds=2,
         retry_jitter_factor=0.5, retry_condition_fn=retry_transient)
def build_spec_task(job: SpecJob, deps: dict, refresh: bool = False, spent: Optional[str] = None,
                    budget: Optional[Budget] = None):
    """One spec: served from the cache (successes only), or built, tested and published.
    `spent`: the flow found the run's budget reached before this spec started (said why).
    `budget`: the run's, passed along so that a task in another process (Dask) spends from it.
    A stop of the flow reaches it in any process: the flow's own signal, or its stop file."""
    one_line_for_our_errors()  # a Dask or Ray worker's console lines as the command's own
    with stopping.following(stop_path(job.layout.project_dir, owning_flow_run_id())):
        return _build_spec(job, deps, refresh, spent, budget)


def _build_spec(job: SpecJob, deps: dict, refresh: bool, spent: Optional[str], budget: Optional[Budget]):
    spec_text = SpecParser(job.layout.specs_dir).read_spec(job.name)
    if changed_since_plan(job, spec_text):
        return _changed_state(job)
    skipped = sorted(n for n, out in deps.items() if isinstance(out, SpecOutcome) and out.status == Outcome.SKIPPED)
    if skipped:
        return _skipped(job, f"budget: dependency {', '.join(skipped)} was skipped")
    failed = sorted(n for n, out in deps.items() if not isinstance(out, SpecOutcome) or not out.status.ok)
    if failed:
        why = f"dependency failed: {', '.join(failed)}"
        blocked = SpecOutcome(name=job.name, status=Outcome.BLOCKED, error=why, started=time.time(), ended=time.time())
        record_failure(job.layout, blocked, spec_text, job.cache_key)
        return final_state(blocked, Outcome.BLOCKED, f"Blocked: dependency {', '.join(failed)} did not build")
    run_id = owning_flow_run_id()
    record = FileRecord(job.layout.answers_path(job.cache_key))
    finished = finished_runs.earlier(job.layout, run_id, job.name)
    if finished is not None:
        logger().info("%s finished earlier in this run (its worker was lost since); its outcome is reused, "
                      "nothing is paid again", job.name)
        record.clear()  # left if the worker died right after recording the outcome
        return final_state(finished, finished.status, finished.error or "failed")
    cache = BuildCache(job.layout.project_dir)
    hit = None if refresh else cache.get(job.cache_key)
    if hit is None and not refresh:
        hit = recover(job.layout, job.name, job.cache_key)
        if hit is not None and cache.put(job.cache_key, hit):
            logger().warning("%s: recovered from build/ (its files are as published for this very spec text); "
                             "its cache entry was missing or damaged and is written again", job.name)
    runtime.report(job.name, "cached" if hit is not None else "starting")
    if hit is not None:
        return cached_state(reuse(job, hit, spec_text))
    if stopping.requested():  # Ctrl-C before this spec started: nothing paid, nothing to keep
        outcome = SpecOutcome(name=job.name, status=Outcome.STOPPED, started=time.time(), ended=time.time(),
                              error=f"not started: stopped ({stopping.reason()})")
        return final_state(outcome, Outcome.STOPPED, outcome.error)
    budget = budget or runtime.current().budget or Budget()
    if spent or budget.reached:
        return _skipped(job, spent or budget.reason())
    provider = runtime.provider_for(job.layout.project_dir)
    try:
        outcome = build_spec(job, provider, log=logger().info, record=record, gate=limit_slot(job.llm_limit),
                             phase=lambda phase: runtime.report(job.name, phase), budget=budget)
    finally:
        settle()  # this spec's slots are back before it counts as done
    if outcome.status in (Outcome.SKIPPED, Outcome.STOPPED):  # the budget or Ctrl-C: its paid answers stay
        return final_state(outcome, outcome.status, f"{outcome.status.value.capitalize()}: {outcome.error}")
    if changed_since_plan(job, SpecParser(job.layout.specs_dir).read_spec(job.name)):
        record.clear()
        return _changed_state(job)  # built from a text its cache key does not name: never kept
    if outcome.status.ok:
        cache.put(job.cache_key, outcome)
        try:
            outcome.notes = publish(job.layout, outcome, spec_text, job.cache_key, replace_edits=True,
                                    log=logger().warning)
        except CannotWrite as exc:  # paid for and cached: the row keeps its calls, the next build publishes it
            outcome = outcome.model_copy(update={"status": Outcome.FAILED, "error": (
                f"built and cached, but not written to build/: {exc}; then build again (it is published from the "
                "cache, no new call)")})
    else:
        record_failure(job.layout, outcome, spec_text, job.cache_key)
    finished_runs.record(job.layout, run_id, outcome)
    # Finished, either way: a later build starts afresh (a failure is never replayed). Only now: a
    # worker lost before this line leaves its answers for the task's rerun, one lost after it its outcome.
    record.clear()
    return final_state(outcome, outcome.status, outcome.error or "failed")


def _changed_state(job: SpecJob):
    """A spec edited while its build ran: what was built (if anything) is not cached or published
    under the key of the text the build planned from; the next build takes the text as it is."""
    why = ("its spec file changed while this build ran (after the build read it); nothing built from it is "
           "kept: run the build again to build the spec as it is now")
    outcome = SpecOutcome(name=job.name, status=Outcome.FAILED, error=why, started=time.time(), ended=time.time())
    logger().warning("%s: %s", job.name, why)
    return final_state(outcome, Outcome.FAILED, why)


def _skipped(job: SpecJob, why: str):
    now = time.time()
    outcome = SpecOutcome(name=job.name, status=Outcome.SKIPPED, error=why, started=now, ended=now)
    runtime.report(job.name, "skipped")
    return final_state(outcome, Outcome.SKIPPED, f"Skipped: {why}")


@sp_task(name="prepare-environment", task_run_name="prepare-environment")
def prepare_task(layout) -> list[str]:
    """The arrangement's config files, static files and setup commands, once per build."""
    return prepare(layout, log=logger().info)


def _remaining_path(deps: dict[str, list[str]]) -> dict[str, int]:
    """Length of the longest chain of dependents below each spec (critical-path priority)."""
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    for node, ds in deps.items():
        for d in ds:
            dependents[d].append(node)
    memo: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in memo:
            memo[node] = 1 + max((depth(n) for n in dependents[node]), default=0)
        return memo[node]

    return {n: depth(n) for n in deps}


def _outcome_of(future) -> SpecOutcome:
    future.wait()
    state = future.state
    value = state_result(state)
    if isinstance(value, SpecOutcome):
        if state.is_completed() and state.name == "Cached":
            value = value.model_copy(update={"status": Outcome.CACHED if value.status == Outcome.BUILT else value.status})
        return value
    error = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(state.message)
    return SpecOutcome(name="?", status=Outcome.FAILED, error=error)


def _spent(outcomes: dict) -> Optional[str]:
    """Whether the run's budget is reached, from the flow's side: the run's `Budget` (shared with
    tasks in other processes through its ledger), or the finished specs' own counts."""
    budget = runtime.current().budget
    if budget is None or not budget.limited:
        return None
    if budget.reached:
        return budget.reason()
    done = list(outcomes.values())
    return budget.stops_at(sum(o.llm_calls for o in done), sum(o.input_tokens + o.output_tokens for o in done))


def _edges(futures) -> list:
    """`wait_for` entries for the run graph's arrows. Prefect lets a task start after a Failed
    upstream with `allow_failure`, but never after a Cancelled one (our Blocked and Skipped): it
    would leave the dependent NotReady. Those arrows are left out; their outcome still travels."""
    return [allow_failure(f) for f in futures if f.state.is_completed() or f.state.is_failed()]


@stops_on_interrupt
def run_build(jobs: dict[str, SpecJob], order: list[str], max_workers: int, refresh: bool,
              contained: str = "") -> BuildResult:
    """Submit specs as they become ready; collect outcomes; publish artifacts. Runs inside a flow."""
    started = time.time()
    deps = {name: list(jobs[name].deps) for name in order}
    priority = _remaining_path(deps)
    task = build_spec_task.with_options(result_storage=local_storage(next(iter(jobs.values())).layout.results_dir)
                                        ) if jobs else build_spec_task
    layout = next(iter(jobs.values())).layout if jobs else None
    setup = prepare_task(layout) if layout and needs_setup(layout) else []
    outcomes: dict[str, Any] = {}
    running: dict[str, Any] = {}
    finished: dict[str, Any] = {}
    pending, worded, finishing = list(order), 0.0, Finishing()
    progress = progress_artifact(0.0, "Build progress")
    reused = reuse_unchanged(jobs, order) if not refresh else {}
    for name, (outcome, future) in reused.items():
        outcomes[name], finished[name] = outcome, future
        runtime.report(name, outcome.status.value)
    pending = [n for n in pending if n not in reused]
    while pending or running:
        ready = [n for n in pending if all(d in outcomes for d in deps[n])]
        ready.sort(key=lambda n: (-priority[n], order.index(n)))
        for name in ready[: max(0, max_workers - len(running))]:
            pending.remove(name)
            # Finished outcomes as plain values (not futures): any task runner can ship them, and a
            # failed one never leaves a dependent stuck in NotReady. `wait_for` on the (finished)
            # dependency futures only records the edges, so the UI's run graph draws the arrows.
            running[name] = finishing.add(task.submit(jobs[name], {d: outcomes[d] for d in deps[name]}, refresh,
                                                      _spent(outcomes), runtime.current().budget,
                                                      wait_for=_edges(finished[d] for d in deps[name])))
        # The UI's progress after the next specs started, not before (each update is an API call
        # this loop would otherwise make while they wait), and a version a second at most.
        if time.monotonic() - worded >= 1.0:
            _show_progress(progress, outcomes, order, running)
            worded = time.monotonic()
        if not running:
            continue
        done = finishing.next()
        runtime.report_calls(runtime.current().budget)  # the count first: a line saying a spec ended shows its calls
        for name in [n for n, f in running.items() if any(f is d for d in done)]:
            finished[name] = running[name]
            outcome = _outcome_of(running.pop(name))
            outcome.name = name
            outcomes[name] = outcome
            runtime.report(name, outcome.status.value)
    _show_progress(progress, outcomes, order, running)
    budget = runtime.current().budget
    result = summarize(order, outcomes, time.time() - started, budget.reason() if budget is not None else None)
    result.setup, result.contained = setup, contained
    publish_artifacts(result, deps)
    return result


def _show_progress(progress, outcomes: dict, order: list[str], running: dict) -> None:
    update_progress(progress, 100.0 * len(outcomes) / max(1, len(order)))
    progress_words(outcomes, order, running)


@sp_flow(name="build", description="Compile every spec to code and tests, dependency-ordered, cached by content.")
def build(
    project_dir: Annotated[str, Field(description="Project folder (specs in src/ or the folder itself).")] = ".",
    specs: Annotated[Optional[list[str]], Field(description="Only these specs (and what they need); empty = all.")] = None,
    incremental: Annotated[bool, INCREMENTAL.field()] = INCREMENTAL.default,
    max_workers: Annotated[int, MAX_WORKERS.field()] = MAX_WORKERS.default,
    model: Annotated[Optional[str], Field(description="LLM model override.")] = None,
    max_fixes: Annotated[int, MAX_FIXES.field()] = MAX_FIXES.default,
    retries: Annotated[int, RETRIES.field()] = RETRIES.default,
    max_llm_calls: Annotated[Optional[int], MAX_LLM_CALLS.field()] = MAX_LLM_CALLS.default,
    max_tokens: Annotated[Optional[int], MAX_TOKENS.field()] = MAX_TOKENS.default,
) -> BuildResult:
    runtime.announce()
    project_dir = project_here(project_dir)
    project = Project(project_dir, runtime.config_for(project_dir), BuildOptions(max_fixes=max_fixes, retries=retries))
    with runtime.using(budget=runtime.budget_for(max_llm_calls, max_tokens)):
        # A failed build still returns its result; its state says Failed (or BudgetReached) in the UI.
        return final_state(build_here(project, specs or None, incremental, max_workers, model))


def build_here(project: Project, specs: Optional[list[str]], incremental: bool, max_workers: int,
               model: Optional[str]) -> BuildResult:
    """Check, plan and build inside a flow run (the `build` flow's, or a caller's)."""
    refused = check_build(project, specs)
    if refused is not None:
        log_refusal(refused)
        refused.flow_run_id = current_flow_run_id()
        return refused
    rt = runtime.current()
    timeout = rt.lock_timeout if rt.lock_timeout is not None else settings.lock_timeout
    try:
        box = sandbox.containment()  # under SPECHESTRA_SANDBOX=required: refused before anything is paid
        if not box.sandboxed:
            logger().warning("Generated code will run NOT sandboxed: %s", box.why_not)
        return _build_locked(project, specs, incremental, max_workers, model, rt, timeout, box)
    except (ProjectBusy, SandboxUnavailable) as exc:  # expected outcomes, not crashes: a failed result saying why
        logger().error("%s", exc)
        return BuildResult(success=False, problem=str(exc), flow_run_id=current_flow_run_id())


def log_refusal(result: BuildResult) -> None:
    """A build that could not start, in the log: the project's problem, or each spec's."""
    if result.problem:
        logger().error("%s", result.problem)
    for name, why in result.errors.items():
        logger().error("%s: %s", name, why)


def _build_locked(project: Project, specs, incremental: bool, max_workers: int, model, rt, timeout: float,
                  box: sandbox.Containment) -> BuildResult:
    this_run = current_flow_run_id()
    with project_lock(project.project_dir, timeout, this_run, on_wait=logger().warning) as previous:
        # A run retried after a crash finds its own id there: it is the run going on, not a dead one.
        if previous.get("flow_run_id") not in (None, this_run) and mark_crashed(previous["flow_run_id"], ABANDONED):
            logger().warning("Marked flow run %s Crashed: %s", previous["flow_run_id"], ABANDONED)
        for path in (clean_stale_temp_files(project.build_dir) + clean_stale_temp_files(project.specs_dir)
                     + remove_stale_staging(project.build_dir)):
            logger().info("Removed %s, left by a run that was killed mid-write", path)
        provider = runtime.provider_for(project.project_dir)
        jobs, order = project.plan(specs, rt.arrangement, model, llm_limit=active_limit(settings.llm_limit),
                                   make_job=rt.make_job or project.make_job, llm=getattr(provider, "identity", ""))
        budget = runtime.current().budget or Budget()
        ledger = Path(ledger_path(project.project_dir, this_run))
        before = budget.calls
        unshare = stopping.share(stop_path(project.project_dir, this_run))  # specs in Dask or Ray workers hear a stop
        try:
            with runtime.using(provider=provider, budget=budget), budget.shared(ledger):
                result = run_build(jobs, order, max_workers, refresh=not incremental,
                                   contained=sandbox.summary(box, [n for n in order if jobs[n].network]))
            result.llm_calls_made = budget.calls - before
            return result
        finally:
            unshare()
            finished_runs.forget(project.project_dir, this_run)
            warm.stop_for(project.build_dir)  # (servers in Dask or Ray workers end when idle)


def build_in_run(project: Project, specs: Optional[list[str]], incremental: bool, max_workers: int,
                 model: Optional[str], max_llm_calls: Optional[int] = None,
                 max_tokens: Optional[int] = None) -> BuildResult:
    """The `build` flow on `max_workers` workers, or, inside a caller's flow run, the same work there."""
    if in_flow_run():
        with runtime.using(budget=runtime.budget_for(max_llm_calls, max_tokens)):
            return build_here(project, specs, incremental, max_workers, model)
    with quiet_heartbeats():
        state = build.with_options(task_runner=build_runner(max_workers))(
            project_dir=project.project_dir, specs=specs, incremental=incremental, max_workers=max_workers,
            model=model, max_fixes=project.max_fixes, retries=project.retries, max_llm_calls=max_llm_calls,
            max_tokens=max_tokens, return_state=True)
    return flow_value(state)
