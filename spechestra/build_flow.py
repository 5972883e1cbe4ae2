"""The `build` flow: one task run per spec, each submitted the moment its own dependencies end.

Scheduling is ours rather than Prefect's `wait_for`, because a submitted task that waits on
upstream futures holds a worker thread; here only ready specs are submitted, longest remaining
dependency path first, at most `max_workers` at a time; each gets its dependencies' finished
outcomes as values. Results persist under <project>/.spechestra/results keyed by content, so
unchanged specs are cache hits across runs.
"""

from __future__ import annotations

import hashlib
import threading
import time

from . import prompts
from .graph import mermaid
from .llm_calls import is_transient
from .models import BuildResult, SpecOutcome
from .prefect_api import (as_completed, cache_by, cancelled_state, current_flow_run_id,
                          failed_state, limit_slot, local_storage, logger, markdown_artifact, progress_artifact,
                          sp_task, state_result, table_artifact, update_progress)
from .build_setup import needs_setup, prepare
from .spec_build import SpecJob, build_spec, write_files

_providers: dict[str, object] = {}
_providers_lock = threading.Lock()

_records: dict[str, list] = {}  # cache key -> answers of the task's last attempt (see llm_calls)


def register_provider(ref: str, provider) -> None:
    """In-process provider objects, looked up by reference (a job itself must stay picklable)."""
    with _providers_lock:
        _providers[ref] = provider


def unregister_provider(ref: str) -> None:
    with _providers_lock:
        _providers.pop(ref, None)


def _provider_for(job: SpecJob):
    with _providers_lock:
        provider = _providers.get(job.provider_ref)
    if provider is None:  # another process (worker, Dask): choose by setting, as any flow run does
        from .providers import resolve_provider
        provider = resolve_provider()
    return provider


def _retry_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        if is_transient(exc):
            return True
    return False


def cache_key(job: SpecJob, spec_text: str, dep_keys: list[str], specsoloist_version: str) -> str:
    digest = hashlib.sha256()
    for part in (spec_text, *dep_keys, job.layout.arrangement_yaml, job.model or "",
                 prompts.PROMPT_VERSION, specsoloist_version, str(job.max_fixes)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return f"spechestra-{job.name.replace('/', '.')}-{digest.hexdigest()[:32]}"


@sp_task(name="build-spec", task_run_name="{job.name}",
         cache_policy=cache_by(lambda params: params["job"].cache_key),
         persist_result=True, retries=1, retry_delay_seconds=2, retry_jitter_factor=0.5,
         retry_condition_fn=_retry_transient)
def build_spec_task(job: SpecJob, deps: dict):
    failed = sorted(n for n, out in deps.items()
                    if not isinstance(out, SpecOutcome) or out.status not in ("built", "reference", "cached"))
    if failed:
        blocked = SpecOutcome(name=job.name, status="blocked", error=f"dependency failed: {', '.join(failed)}",
                              started=time.time(), ended=time.time())
        return cancelled_state(f"Blocked: dependency {', '.join(failed)} did not build", blocked, name="Blocked")
    for out in deps.values():  # cached dependencies still need their files for our tests
        write_files(job.layout, out)
    record = _records.setdefault(job.cache_key, [])
    outcome = build_spec(job, _provider_for(job), log=logger().info, record=record, gate=limit_slot(job.llm_limit))
    _records.pop(job.cache_key, None)
    if outcome.status == "failed":
        return failed_state(outcome.error or "failed", outcome)
    return outcome


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
            value = value.model_copy(update={"status": "cached" if value.status == "built" else value.status})
        return value
    error = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(state.message)
    return SpecOutcome(name="?", status="failed", error=error)


def run_build(jobs: dict[str, SpecJob], order: list[str], max_workers: int, refresh: bool) -> BuildResult:
    """Submit specs as they become ready; collect outcomes; publish artifacts. Runs inside a flow."""
    started = time.time()
    deps = {name: list(jobs[name].deps) for name in order}
    priority = _remaining_path(deps)
    task = build_spec_task.with_options(result_storage=local_storage(next(iter(jobs.values())).layout.results_dir),
                                        refresh_cache=refresh) if jobs else build_spec_task
    layout = next(iter(jobs.values())).layout if jobs else None
    setup = prepare_task(layout) if layout and needs_setup(layout) else []
    outcomes, running = {}, {}
    pending = list(order)
    progress = progress_artifact(0.0, "Build progress")
    while pending or running:
        ready = [n for n in pending if all(d in outcomes for d in deps[n])]
        ready.sort(key=lambda n: (-priority[n], order.index(n)))
        for name in ready[: max(0, max_workers - len(running))]:
            pending.remove(name)
            # Finished outcomes as plain values (not futures): any task runner can ship them
            # (Dask rewrites Prefect's allow_failure wrappers into tuples), and a failed one
            # never leaves a dependent stuck in NotReady.
            running[name] = task.submit(jobs[name], {d: outcomes[d] for d in deps[name]})
        if not running:
            continue
        first = next(as_completed(list(running.values())))
        done = [first] + [f for f in running.values() if f is not first and f.state.is_final()]
        for name in [n for n, f in running.items() if any(f is d for d in done)]:
            outcome = _outcome_of(running.pop(name))
            outcome.name = name
            outcomes[name] = outcome
        update_progress(progress, 100.0 * len(outcomes) / max(1, len(order)))
    for name in order:
        _records.pop(jobs[name].cache_key, None)
    for name, outcome in outcomes.items():
        if outcome.status in ("built", "cached"):
            write_files(jobs[name].layout, outcome)
    result = summarize(order, outcomes, time.time() - started)
    result.setup = setup
    publish(result, deps)
    return result


def summarize(order: list[str], outcomes: dict[str, SpecOutcome], duration: float) -> BuildResult:
    by = {s: [n for n in order if outcomes[n].status == s] for s in ("built", "reference", "cached", "failed", "blocked")}
    return BuildResult(
        success=not by["failed"] and not by["blocked"],
        specs_compiled=by["built"] + by["reference"], specs_skipped=by["cached"], specs_failed=by["failed"],
        specs_blocked=by["blocked"], build_order=order, duration=round(duration, 3),
        errors={n: outcomes[n].error or "" for n in by["failed"] + by["blocked"]},
        flow_run_id=current_flow_run_id(), details=outcomes)


def publish(result: BuildResult, deps: dict[str, list[str]]) -> None:
    rows = [{"spec": n, "state": o.status, "attempts": o.attempts, "llm_calls": o.llm_calls,
             "retries": o.retries, "seconds": o.seconds}
            for n, o in result.details.items()]
    table_artifact(rows, key="build-specs", description="One row per spec")
    colour = {"built": "completed", "reference": "completed", "cached": "cached", "failed": "failed", "blocked": "blocked"}
    graph = mermaid(deps, {n: colour.get(o.status, "pending") for n, o in result.details.items()})
    summary = (f"**{len(result.specs_compiled)} compiled, {len(result.specs_skipped)} cached, "
               f"{len(result.specs_failed)} failed, {len(result.specs_blocked)} blocked** in {result.duration:.1f}s")
    setup = "".join(f"- {line}\n" for line in result.setup)
    setup = f"\n### Environment (arrangement)\n\n{setup}" if setup else ""
    markdown_artifact(f"## Build graph\n\n{summary}\n\n```mermaid\n{graph}\n```\n{setup}", key="build-graph",
                      description="Dependency graph coloured by outcome")
