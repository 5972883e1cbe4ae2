"""The `perform` flow: a workflow spec's steps as task runs, data flowing between them.

A step is submitted as soon as the steps it reads from have finished, so independent steps run at
the same time; results are still reported in declared order. Before a checkpoint step the running
steps are drained (the reviewer sees everything before it), then the callback is asked or the run
pauses for a `CheckpointReview`. The first failure stops new steps; what ran is returned.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from pydantic import Field
from typing_extensions import Annotated

from . import trace as traces
from .handover import handed as handed_over, handing_over
from .models import CheckpointReview, PerformResult, StepResult
from .prefect_api import (as_completed, cancelled_state, current_flow_run_id, failed_state, flow_value, logger,
                          pause_for_input, quiet_heartbeats, run_tags, sp_flow, sp_task, state_result,
                          thread_runner)
from .step_runner import StepError, run_step
from .workflow import Step, WorkflowPlan, resolve

STEP_TIMEOUT = 300.0


@sp_task(name="step", task_run_name="{step.name}", persist_result=True)
def step_task(step: Step, inputs: dict, import_dirs: tuple, timeout: float):
    started = time.time()
    try:
        run = run_step(step.module_path, step.function, inputs, import_dirs, timeout)
    except StepError as exc:
        if exc.output:
            logger().info("%s printed:\n%s", step.name, exc.output[-4000:])
        result = StepResult(step.name, step.spec, inputs, success=False, error=str(exc),
                            duration=round(time.time() - started, 3))
        return failed_state(f"step {step.name} failed: {str(exc).splitlines()[0]}", result)
    if run.output:
        logger().info("%s printed:\n%s", step.name, run.output[-4000:])
    return StepResult(step.name, step.spec, inputs, run.outputs, success=True, duration=round(time.time() - started, 3))


def _step_result(step: Step, future) -> StepResult:
    future.wait()
    value = state_result(future.state)
    if isinstance(value, StepResult):
        return value
    return StepResult(step.name, step.spec, success=False, error=f"{type(value).__name__}: {value}")


def _checkpoint(step: Step, callback: Optional[Callable], auto_approve: bool, done: dict) -> tuple[bool, str]:
    if auto_approve:
        return True, "auto-approved"
    if callback is not None:
        return bool(callback(step.name)), "checkpoint callback"
    summary = "\n".join([f"## Checkpoint before step `{step.name}` ({step.spec})", "",
                         "Steps so far:", ""] + [f"- `{n}` -> `{r.outputs}`" for n, r in done.items()]
                        + ["", "Approve to run it and continue; leave *approve* unticked to stop here."])
    from .models import Architecture, ReviewRequest
    from .review import registered
    with registered(ReviewRequest(stage=f"checkpoint before step {step.name}", architecture=Architecture(),
                                  summary=summary)):
        answer = pause_for_input(CheckpointReview, summary, key=f"checkpoint-{step.name}")
    return answer.approve, answer.comment or "reviewed"


def run_steps(plan: WorkflowPlan, inputs: dict, callback: Optional[Callable], auto_approve: bool,
              timeout: float) -> tuple[dict[str, StepResult], Optional[str]]:
    """Run the plan inside a flow; returns results by step name and why it stopped early (if it did)."""
    results: dict[str, StepResult] = {}
    outputs: dict[str, dict] = {}
    running: dict[str, object] = {}
    pending, approved, stop = list(plan.steps), set(), None
    by_name = {s.name: s for s in plan.steps}
    while (pending and stop is None) or running:
        ready = [s for s in pending if all(a in outputs for a in s.after)] if stop is None else []
        for step in ready:
            if step.checkpoint and step.name not in approved:
                if running:
                    continue  # drain first: the checkpoint sees every step before it
                ok, why = _checkpoint(step, callback, auto_approve, {n: results[n] for n in results})
                logger().info("checkpoint %s: %s (%s)", step.name, "continue" if ok else "stop", why)
                if not ok:
                    stop = f"stopped at checkpoint {step.name!r} ({why})"
                    break
                approved.add(step.name)
            pending.remove(step)
            try:
                args = resolve(step, inputs, outputs)
            except KeyError as exc:  # an earlier step did not produce what its spec declared
                results[step.name] = StepResult(step.name, step.spec, success=False, error=str(exc.args[0]))
                stop = f"step {step.name!r} failed: {exc.args[0]}"
                break
            running[step.name] = step_task.submit(step, args, plan.import_dirs, timeout)
        if not running:
            if pending and stop is None:  # cannot happen after plan(); never spin
                stop = "steps left that can never run: " + ", ".join(s.name for s in pending)
            continue
        first = next(as_completed(list(running.values())))
        for name in [n for n, f in running.items() if f is first or f.state.is_final()]:
            result = _step_result(by_name[name], running.pop(name))
            results[name] = result
            if result.success:
                outputs[name] = result.outputs
            elif stop is None:
                stop = f"step {name!r} failed: {(result.error or '').splitlines()[0] if result.error else ''}"
    return results, stop


@sp_flow(name="perform", task_runner=thread_runner(8),
         description="Run a workflow spec's steps on the compiled modules; the run history is the trace.")
def perform(
    workflow: Annotated[str, Field(description="Name of the workflow spec to run.")],
    inputs: Annotated[Optional[dict], Field(description="The workflow's inputs, e.g. {\"n\": 5}.")] = None,
    project_dir: Annotated[str, Field(description="Project folder (built first).")] = ".",
    auto_approve: Annotated[bool, Field(description="Run checkpoint steps without pausing for approval.")] = False,
    step_timeout: Annotated[float, Field(gt=0, description="Seconds one step may run.")] = STEP_TIMEOUT,
):
    handed = handed_over("perform")
    if handed is None:
        from .conductor import Conductor
        conductor, callback = Conductor(project_dir), None
    else:
        conductor, callback = handed
    inputs = dict(inputs or {})
    plan = conductor.plan_workflow(workflow, inputs)
    started = time.time()
    results, stop = run_steps(plan, inputs, callback, auto_approve, step_timeout)
    steps = [results[s.name] for s in plan.steps if s.name in results]
    done = [r for r in steps if r.success]
    result = PerformResult(success=stop is None and len(done) == len(plan.steps), workflow=workflow, steps=steps,
                           outputs=done[-1].outputs if done else {}, duration=round(time.time() - started, 3),
                           error=stop, flow_run_id=current_flow_run_id())
    result.trace = traces.record(result, inputs, conductor.build_dir)
    result.trace_path = result.trace.get("path", "")
    if result.success:
        return result
    if stop and stop.startswith("stopped at checkpoint"):
        return cancelled_state(stop, data=result, name="Stopped")
    return failed_state(stop or "failed", data=result)


def run_perform(conductor, workflow: str, inputs: dict, callback, auto_approve: bool, timeout: float) -> PerformResult:
    with handing_over("perform", (conductor, callback)), quiet_heartbeats(), run_tags(f"workflow:{workflow}"):
        state = perform(
            workflow=workflow, inputs=inputs, project_dir=conductor.project_dir, auto_approve=auto_approve,
            step_timeout=timeout, return_state=True)
    return flow_value(state)
