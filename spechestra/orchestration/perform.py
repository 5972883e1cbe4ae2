"""Performing on Prefect: the `perform` flow, a workflow spec's steps as task runs, data flowing
between them.

A step is submitted as soon as the steps it reads from have finished, so independent steps run at
the same time; results are still reported in declared order. Before a checkpoint step the running
steps are drained (the reviewer sees everything before it), then the callback is asked or the run
pauses for input. The first failure stops new steps; what ran is returned, with its trace.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from pydantic import Field
from typing_extensions import Annotated

from .. import stopping
from ..core.interface import declared_outputs
from ..core.models import Outcome, PerformResult, StepResult
from ..core.options import STEP_TIMEOUT
from ..core.planning import Project
from ..core.text import first_line
from ..core.tracing import STEP_TAG
from ..core.workflow import Step, WorkflowPlan, resolve
from ..errors import StepError
from ..processes.step_runner import run_step
from . import pauses, runtime
from .history import record_trace
from .places import project_here
from .prefect import (
    Finishing,
    current_flow_run_id,
    final_state,
    flow_value,
    logger,
    quiet_heartbeats,
    run_tags,
    sp_flow,
    sp_task,
    state_result,
    stops_on_interrupt,
)
from .runners import thread_runner


@sp_task(name="step", task_run_name="{step.name}", persist_result=True, tags=[STEP_TAG])
def step_task(step: Step, inputs: dict, import_dirs: tuple, timeout: float):
    started = time.time()
    if step.network:
        logger().warning("%s runs with the network: its spec %s asks for it (network: true)", step.name, step.spec)
    try:
        run = run_step(step.module_path, step.function, inputs, import_dirs, timeout, step.network, step.declared_env)
    except StepError as exc:
        if exc.output:
            logger().info("%s printed:\n%s", step.name, exc.output[-4000:])
        result = StepResult(step.name, step.spec, inputs, success=False, error=str(exc),
                            duration=round(time.time() - started, 3))
        if stopping.requested():  # its process was ended by the stop (Ctrl-C, SIGTERM): not the step's fault
            result.error = f"stopped ({stopping.reason()}) while it ran"
            return final_state(result, Outcome.STOPPED, f"step {step.name} {result.error}")
        return final_state(result, Outcome.FAILED, f"step {step.name} failed: {first_line(str(exc))}")
    if run.output:
        logger().info("%s printed:\n%s", step.name, run.output[-4000:])
    return StepResult(step.name, step.spec, inputs, run.outputs, success=True, duration=round(time.time() - started, 3))


def _step_result(step: Step, future) -> StepResult:
    future.wait()
    value = state_result(future.state)
    if isinstance(value, StepResult):
        return value
    return StepResult(step.name, step.spec, success=False, error=f"{type(value).__name__}: {value}")


@stops_on_interrupt
def run_steps(plan: WorkflowPlan, inputs: dict, auto_approve: bool,
              timeout: float) -> tuple[dict[str, StepResult], Outcome, Optional[str], float]:
    """Run the plan inside a flow: results by step name, how it ended, why if it stopped early,
    and the seconds spent waiting at checkpoints (a person's time, not the workflow's)."""
    waited = 0.0
    rt = runtime.current()
    results: dict[str, StepResult] = {}
    outputs: dict[str, dict] = {}
    running: dict[str, Any] = {}
    finishing = Finishing()
    pending, approved = list(plan.steps), set()
    ended, why = Outcome.COMPLETED, None
    by_name = {s.name: s for s in plan.steps}
    while (pending and why is None) or running:
        ready = [s for s in pending if all(a in outputs for a in s.after)] if why is None else []
        for step in ready:
            if step.checkpoint and step.name not in approved:
                if running:
                    continue  # drain first: the checkpoint sees every step before it
                asked = time.monotonic()
                runtime.report(step.name, "waiting for review")
                ok, who = pauses.checkpoint(step.name, step.spec, dict(results), auto_approve=auto_approve,
                                            callback=rt.checkpoint_callback, board=rt.board)
                waited += time.monotonic() - asked
                logger().info("checkpoint %s: %s (%s)", step.name, "continue" if ok else "stop", who)
                if not ok:
                    ended, why = Outcome.STOPPED, f"stopped at checkpoint {step.name!r} ({who})"
                    break
                approved.add(step.name)
            pending.remove(step)
            try:
                args = resolve(step, inputs, outputs)
            except KeyError as exc:  # an earlier step did not produce what its spec declared
                results[step.name] = StepResult(step.name, step.spec, success=False, error=str(exc.args[0]))
                ended, why = Outcome.FAILED, f"step {step.name!r} failed: {exc.args[0]}"
                break
            running[step.name] = finishing.add(step_task.submit(step, args, plan.import_dirs, timeout))
            runtime.report(step.name, "running")
        if not running:
            if pending and why is None:  # cannot happen after plan(); never spin
                ended, why = Outcome.FAILED, "steps left that can never run: " + ", ".join(s.name for s in pending)
            continue
        done = finishing.next()
        for name in [n for n, f in running.items() if any(f is d for d in done)]:
            result = _step_result(by_name[name], running.pop(name))
            results[name] = result
            stopped = not result.success and stopping.requested()
            runtime.report(name, "done" if result.success else "stopped" if stopped else "failed")
            if result.success:
                outputs[name] = result.outputs
            elif why is None and stopped:
                ended, why = Outcome.STOPPED, f"stopped ({stopping.reason()}) during step {name!r}"
            elif why is None:
                ended, why = Outcome.FAILED, f"step {name!r} failed: {first_line(result.error)}"
    return results, ended, why, waited


@sp_flow(name="perform", task_runner=thread_runner(8),
         description="Run a workflow spec's steps on the compiled modules; the run history is the trace.")
def perform(
    workflow: Annotated[str, Field(description="Name of the workflow spec to run.")],
    inputs: Annotated[Optional[dict], Field(description="The workflow's inputs, e.g. {\"n\": 5}.")] = None,
    project_dir: Annotated[str, Field(description="Project folder (built first).")] = ".",
    auto_approve: Annotated[bool, Field(description="Run checkpoint steps without pausing for approval.")] = False,
    step_timeout: Annotated[float, STEP_TIMEOUT.field()] = STEP_TIMEOUT.default,
):
    runtime.announce()
    project_dir = project_here(project_dir)
    project = Project(project_dir, runtime.config_for(project_dir))
    inputs = dict(inputs or {})
    plan = project.plan_workflow(workflow, inputs)
    started = time.time()
    results, ended, why, waited = run_steps(plan, inputs, auto_approve, step_timeout)
    steps = [results[s.name] for s in plan.steps if s.name in results]
    done = [r for r in steps if r.success]
    result = PerformResult(success=ended is Outcome.COMPLETED, workflow=workflow, steps=steps,
                           outputs=done[-1].outputs if done else {}, duration=round(time.time() - started, 3),
                           work_duration=round(time.time() - started - waited, 3),
                           error=why, flow_run_id=current_flow_run_id(), outcome=ended)
    result.declared_outputs, result.notes = declared_outputs(list(plan.outputs), steps)
    if ended is not Outcome.COMPLETED:
        result.notes = []  # a run that stopped or failed is said to have; what it did not produce follows
    for note in result.notes:
        logger().warning("%s", note)
    result.trace = record_trace(result, inputs, project.build_dir)
    result.trace_path = result.trace.get("path", "")
    return final_state(result)


def perform_in_run(project_dir: str, workflow: str, inputs: dict, auto_approve: bool, timeout: float) -> PerformResult:
    """The `perform` flow, tagged with its workflow (how `get_traces` finds its runs again)."""
    with quiet_heartbeats(), run_tags(f"workflow:{workflow}"):
        state = perform(workflow=workflow, inputs=inputs, project_dir=project_dir, auto_approve=auto_approve,
                        step_timeout=timeout, return_state=True)
    return flow_value(state)
