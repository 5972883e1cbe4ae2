"""Unchanged specs, reused: a cache hit becomes this run's outcome with its files published again.

Every unchanged spec whose dependencies are unchanged too is reused in one task run, before any
spec is built: a task run per cache hit cost ~100 ms of orchestration each, one after another
(20 s for a 200-spec no-op).
"""

from __future__ import annotations

import time

from specsoloist.parser import SpecParser

from ..core.build_cache import BuildCache
from ..core.models import Outcome, SpecOutcome
from ..core.publishing import publish
from ..core.spec_build import SpecJob, changed_since_plan
from . import runtime
from .prefect import cached_state, logger, sp_task, state_result, table_artifact


def reuse(job: SpecJob, hit: SpecOutcome, spec_text: str) -> SpecOutcome:
    """A cache hit as this run's outcome: no call, no attempt, no time; its files published again
    (files edited by hand are kept)."""
    now = time.time()
    status = Outcome.CACHED if hit.status == Outcome.BUILT else hit.status
    hit = hit.model_copy(update={"status": status, "notes": [], "llm_calls": 0, "retries": 0, "reused": 0,
                                 "attempts": 0, "input_tokens": 0, "output_tokens": 0, "tokens_estimated": False,
                                 "cost_usd": None, "seconds": 0.0, "started": now, "ended": now})
    hit.notes = publish(job.layout, hit, spec_text, job.cache_key, replace_edits=False, log=logger().warning)
    return hit


def unchanged_specs(jobs: dict[str, SpecJob], order: list[str]) -> dict[str, SpecOutcome]:
    """Specs served from the cache whose dependencies are all served from it too, in build order."""
    hits: dict[str, SpecOutcome] = {}
    for name in order:
        job = jobs[name]
        if all(d in hits for d in job.deps):
            hit = BuildCache(job.layout.project_dir).get(job.cache_key)
            if hit is not None:
                hits[name] = hit
    return hits


@sp_task(name="reuse-cached", task_run_name="reuse-cached-specs", persist_result=False)
def reuse_cached_task(jobs: list[SpecJob], hits: dict[str, SpecOutcome]) -> dict[str, SpecOutcome]:
    """The specs stay visible one by one in the run's `build-specs` table, the build graph and
    this task's `reused-specs` table."""
    reused, rows = {}, []
    for job in jobs:
        spec_text = SpecParser(job.layout.specs_dir).read_spec(job.name)
        if changed_since_plan(job, spec_text):
            continue  # edited since the build read it: its own task says so, nothing is served
        reused[job.name] = reuse(job, hits[job.name], spec_text)
        rows.append({"spec": job.name, "cache_key": job.cache_key, "files": len(reused[job.name].files)})
        runtime.report(job.name, "cached")
    table_artifact(rows, key="reused-specs", description="Specs served from the build cache, unchanged")
    return cached_state(reused)


def reuse_unchanged(jobs: dict[str, SpecJob], order: list[str]) -> dict[str, tuple[SpecOutcome, object]]:
    """Unchanged specs, reused in one task run: name -> (outcome, that task's future). Should that
    task fail (a file it cannot publish, say), nothing is lost: every spec takes the usual path."""
    hits = unchanged_specs(jobs, order)
    if not hits:
        return {}
    future = reuse_cached_task.submit([jobs[n] for n in hits], hits)
    future.wait()
    value = state_result(future.state)
    if not isinstance(value, dict):
        logger().warning("Reusing %d cached specs failed (%s); building them one by one", len(hits), value)
        return {}
    return {name: (outcome, future) for name, outcome in value.items()}
