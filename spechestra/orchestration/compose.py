"""Composing on Prefect: the `compose` flow, its tasks (draft the architecture; write one spec
per component, concurrently), and the two reviews between them.

Deployments and the UI call the flow with plain parameters; `Composer.compose()` sets the
runtime (its provider, hooks and callbacks) and calls `compose_in_run`, which starts the flow,
or, inside a caller's own flow run, does the work there.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from pydantic import Field
from specsoloist.parser import SpecParser
from typing_extensions import Annotated

from ..core import composing, reviews, usage
from ..core.budget import Budget
from ..core.fileio import clean_stale_temp_files
from ..core.llm_calls import guarded_call
from ..core.models import (
    Architecture,
    ComponentDef,
    CompositionResult,
    GeneratedSpecs,
    Outcome,
    ReviewDecision,
    ReviewRequest,
)
from ..core.options import MAX_LLM_CALLS, MAX_TOKENS
from ..core.project_lock import project_lock
from ..errors import BudgetReached
from ..settings import settings
from . import pauses, runtime
from .limits import active_limit, limit_slot, settle
from .places import project_here
from .prefect import (
    current_flow_run_id,
    final_state,
    flow_value,
    in_flow_run,
    logger,
    quiet_heartbeats,
    retry_transient,
    sp_flow,
    sp_task,
    unmapped,
)
from .watched import watched

MAX_EDIT_ROUNDS = 3


# Each compose task is one LLM call, so a task-level retry repeats nothing already paid for.
ONE_CALL: dict[str, Any] = dict(retries=3, retry_delay_seconds=[2, 8, 30], retry_jitter_factor=0.5, retry_condition_fn=retry_transient)


def one_call(hook: Callable[[], Any], llm_limit: Optional[str]) -> Any:
    """A compose step's LLM call, held to what holds a build's (`guarded_call`). What it used is
    what the provider said, else estimated from the answer (the prompt stays inside the hook)."""
    budget = runtime.current().budget or Budget()
    try:
        value = guarded_call(hook, budget, limit_slot(llm_limit))
    finally:
        settle()
    used = usage.last() or usage.estimate("", value.to_yaml() if isinstance(value, Architecture) else str(value))
    budget.spend(used.total)
    return value


@sp_task(name="draft-architecture", task_run_name="draft-architecture", **ONE_CALL)
def draft_task(request: str, existing: list[str], llm_limit: Optional[str] = None) -> Architecture:
    """Unusable LLM output gives an empty architecture saying why, never an exception."""
    try:
        return one_call(lambda: runtime.hook(runtime.current().draft, "draft")(request, existing), llm_limit)
    except ValueError as exc:
        logger().warning("Draft unusable: %s", exc)
        return Architecture(description=f"The drafted architecture was unusable: {exc}")


@sp_task(name="write-spec", task_run_name="{component.name}", **ONE_CALL)
def write_spec_task(component: ComponentDef, architecture: Architecture, specs_dir: str,
                    llm_limit: Optional[str] = None):
    parser = SpecParser(specs_dir)
    if parser.spec_exists(component.name):
        logger().info("Spec %s exists; skipped (never overwritten)", component.name)
        return "skipped", component.name
    text = one_call(lambda: runtime.hook(runtime.current().write_spec, "write_spec")(component, architecture),
                    llm_limit)
    status, detail = composing.write_spec_file(parser, specs_dir, component.name, text)
    if status == "skipped":
        logger().warning("Spec %s was created by another run while this one wrote it; kept theirs", component.name)
    return status, detail


def specs_dir_of(project_dir: str) -> str:
    return runtime.config_for(project_dir).src_path


def draft(request: str, existing: list[str], project_dir: str) -> Architecture:
    """One task run (in a small flow of its own when called outside one)."""
    with runtime.complete(project_dir) as rt:
        runtime.hook(rt.prepare, "prepare")()
        limit = active_limit(settings.llm_limit)
        if in_flow_run():
            return draft_task(request, existing, limit)
        return _in_own_flow("draft-architecture", lambda: draft_task(request, existing, limit))


def generate(architecture: Architecture, project_dir: str) -> GeneratedSpecs:
    """One task run per component, concurrent; existing specs are skipped, never overwritten."""
    with runtime.complete(project_dir):
        if not in_flow_run():
            return _in_own_flow("generate-specs", lambda: _generate(architecture, project_dir))
        return _generate(architecture, project_dir)


def _generate(architecture: Architecture, project_dir: str) -> GeneratedSpecs:
    """Under the project's compose lock: a second compose of the project waits, then skips the
    specs this one wrote instead of paying for them again."""
    timeout = runtime.current().lock_timeout
    with project_lock(project_dir, settings.lock_timeout if timeout is None else timeout, current_flow_run_id(),
                      on_wait=logger().warning, kind="compose"):
        return _write_all(architecture, specs_dir_of(project_dir), active_limit(settings.llm_limit))


def _write_all(architecture: Architecture, specs_dir: str, limit: Optional[str]) -> GeneratedSpecs:
    futures = write_spec_task.map(architecture.components, unmapped(architecture), unmapped(specs_dir),
                                  unmapped(limit))
    created, skipped, failed = [], [], {}
    for comp, future in zip(architecture.components, futures):
        try:
            status, detail = future.result()
        except Exception as exc:  # the provider failed for this component only
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        if status == "created":
            created.append(detail)
        elif status == "skipped":
            skipped.append(comp.name)
        else:
            failed[comp.name] = detail
    return GeneratedSpecs(created, skipped, failed)


def compose_here(request: str, project_dir: str, auto_accept: bool, context: Optional[dict]) -> CompositionResult:
    """Draft, review, write, review: inside a flow run (the `compose` flow's, or a caller's)."""
    rt_outer = runtime.current()
    run_id = current_flow_run_id()
    specs_dir = specs_dir_of(project_dir)
    for path in clean_stale_temp_files(specs_dir):
        logger().info("Removed %s, left by a compose that was killed mid-write", path)
    existing = composing.existing_specs(SpecParser(specs_dir))
    known = composing.as_spec_names(set((context or {}).get("existing_specs", [])) | set(existing))

    def result(arch, outcome=Outcome.COMPLETED, **fields) -> CompositionResult:
        return CompositionResult(architecture=arch, flow_run_id=run_id, outcome=outcome,
                                 cancelled=not outcome.ok, **fields)

    try:
        arch = draft(request, known, project_dir)
    except BudgetReached as exc:
        return result(Architecture(description=str(exc)), Outcome.BUDGET_REACHED, message=str(exc))
    if not arch.components:
        return result(arch, Outcome.CANCELLED, message=arch.description or "the draft has no components")
    arch, decision, unusable = _review_architecture(arch, existing, auto_accept, rt_outer)
    if unusable:  # the reviewer edited, never rejected: the run is Cancelled saying why, not Rejected
        return result(arch, Outcome.CANCELLED, message=unusable)
    if not decision.approve:
        return result(arch, Outcome.REJECTED, message=reviews.rejected_message("architecture", decision))
    specs = generate(arch, project_dir)
    decision = pauses.ask(ReviewRequest(stage="specs", architecture=arch, spec_paths=list(specs), failed=specs.failed),
                          "review-specs", auto_accept=auto_accept, callback=rt_outer.review_callback,
                          board=rt_outer.board)
    if not decision.approve:
        logger().info("Removed %d spec(s) written by this run", composing.remove_created(specs, specs_dir))
        return result(arch, Outcome.REJECTED, skipped=specs.skipped, failed=specs.failed,
                      message=reviews.rejected_message("specs", decision))
    message = "" if not specs.failed else f"{len(specs.failed)} spec(s) could not be written"
    budget = rt_outer.budget
    if specs.failed and budget is not None and budget.reached:
        return result(arch, Outcome.BUDGET_REACHED, spec_paths=list(specs), skipped=specs.skipped,
                      failed=specs.failed, message=f"{message}: {budget.reason()}")
    return result(arch, spec_paths=list(specs), skipped=specs.skipped, failed=specs.failed,
                  ready_for_build=not specs.failed, message=message)


def _review_architecture(arch: Architecture, existing: list[str], auto_accept: bool, rt: runtime.Runtime):
    """Ask until the reviewer's answer is usable: an edit that does not validate is asked again
    (up to MAX_EDIT_ROUNDS), never silently dropped. Returns the architecture, the decision and,
    when the edits never validated, why the compose stops (the reviewer did not reject it)."""
    problem = ""
    decision = ReviewDecision(approve=False)  # replaced by the first answer (MAX_EDIT_ROUNDS >= 1)
    for round_ in range(1, MAX_EDIT_ROUNDS + 1):
        req = ReviewRequest(stage="architecture", architecture=arch,
                            summary=f"Your last edit was not used: {problem}" if problem else "")
        decision = pauses.ask(req, f"review-architecture-{round_}", auto_accept=auto_accept,
                              callback=rt.review_callback, board=rt.board)
        edited = (decision.architecture_yaml or "").strip()
        if not decision.approve or not edited or edited == arch.to_yaml().strip():
            return arch, decision, ""
        try:
            return Architecture.from_yaml(edited, known=existing), decision, ""
        except ValueError as exc:
            problem = str(exc)
            logger().warning("Edited architecture not used (edit %d of at most %d): %s", round_, MAX_EDIT_ROUNDS,
                             problem)
            if auto_accept or rt.review_callback is not None:
                break
    edits = f"{round_} edit{'s' if round_ > 1 else ''}"
    why = (f"stopped at the architecture review: {edits} in a row did not validate (the last: {problem}); "
           "nothing was written. Compose again and answer with an edit that validates, or approve the draft")
    return arch, decision.model_copy(update={"approve": False, "comment": why}), why


@sp_flow(name="compose", description="Draft an architecture and specs from a plain-English request, with review.")
def compose(
    request: Annotated[str, Field(description="What you want built, in plain English.")],
    project_dir: Annotated[str, Field(description="Project folder; specs are written to its src/.")] = ".",
    auto_accept: Annotated[bool, Field(description="Skip both reviews (architecture and specs).")] = False,
    max_llm_calls: Annotated[Optional[int], MAX_LLM_CALLS.field()] = MAX_LLM_CALLS.default,
    max_tokens: Annotated[Optional[int], MAX_TOKENS.field()] = MAX_TOKENS.default,
):
    runtime.announce()
    composing.require_request(request)
    project_dir = project_here(project_dir, creating=True)
    with runtime.using(budget=runtime.budget_for(max_llm_calls, max_tokens)):
        return final_state(compose_here(request, project_dir, auto_accept, runtime.current().context))


def compose_in_run(request: str, project_dir: str, auto_accept: bool, context: Optional[dict],
                   max_llm_calls: Optional[int] = None, max_tokens: Optional[int] = None) -> CompositionResult:
    """The `compose` flow, or, inside a caller's flow run, the same work as part of it."""
    if in_flow_run():
        with runtime.using(budget=runtime.budget_for(max_llm_calls, max_tokens)):
            return compose_here(request, project_dir, auto_accept, context)
    with runtime.using(context=context), quiet_heartbeats():
        state = compose(request=request, project_dir=project_dir, auto_accept=auto_accept,
                        max_llm_calls=max_llm_calls, max_tokens=max_tokens, return_state=True)
    return flow_value(state)


def _in_own_flow(name: str, body: Callable):
    """Run `body` inside a small flow of its own (a task-mapping API call made outside a flow),
    watched like every other Python-API run: a server gone away ends it in one line, and a stop
    an earlier run was given (its server went away) does not refuse this one."""
    @sp_flow(name=name)
    def _wrapper():
        return body()

    with quiet_heartbeats():
        return watched(_wrapper)
