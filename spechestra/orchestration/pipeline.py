"""`compose_build_perform`: request -> reviewed specs -> built code -> performed workflow -> trace.

Each stage is its own subflow (compose, build, perform), so the Prefect UI shows them as three
runs under one parent, each with its own task runs, logs and artifacts. Reviews and checkpoints
pause the pipeline run itself (the run the user started and is looking at). Specs are read from
disk when the build starts, so edits made before approving the spec review are what gets built.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field
from typing_extensions import Annotated

from ..core.models import Outcome, PipelineResult
from ..core.options import MAX_LLM_CALLS, MAX_TOKENS, MAX_WORKERS
from ..core.planning import Project
from ..core.text import first_line
from ..core.workflow import find_workflow
from . import runtime
from .build import build
from .compose import compose
from .perform import perform
from .places import project_here
from .prefect import final_state, run_tags, sp_flow, state_result
from .runners import build_runner


def run_stage(stage_flow, **parameters) -> tuple[Any, Outcome, str]:
    """Run one stage as a subflow: (its result or None, how it ended, why it did not complete)."""
    value = state_result(stage_flow(**parameters, return_state=True))
    if isinstance(value, BaseException):  # the stage crashed before it had a result
        return None, Outcome.FAILED, f"{type(value).__name__}: {value}"
    return value, value.outcome, value.message


@sp_flow(name="compose_build_perform",
         description="Compose specs from a request (with review), build them, perform the workflow; returns the trace.")
def compose_build_perform(
    request: Annotated[str, Field(description="What you want built, in plain English.")],
    project_dir: Annotated[str, Field(description="Project folder; specs go to its src/, code to build/.")] = ".",
    auto_accept: Annotated[bool, Field(description="Skip the reviews and checkpoints (no pauses).")] = False,
    workflow: Annotated[Optional[str], Field(description="Workflow spec to perform; empty = the project's only one.")] = None,
    inputs: Annotated[Optional[dict], Field(description="The workflow's inputs, e.g. {\"text\": \"...\"}.")] = None,
    max_workers: Annotated[int, MAX_WORKERS.field()] = MAX_WORKERS.default,
    max_llm_calls: Annotated[Optional[int], MAX_LLM_CALLS.field()] = MAX_LLM_CALLS.default,
    max_tokens: Annotated[Optional[int], MAX_TOKENS.field()] = MAX_TOKENS.default,
):
    runtime.announce()
    project_dir = project_here(project_dir, creating=True)
    with runtime.using(budget=runtime.budget_for(max_llm_calls, max_tokens)):  # one cap for compose and build
        return _stages(request, project_dir, auto_accept, workflow, inputs, max_workers, max_llm_calls, max_tokens)


def _stages(request: str, project_dir: str, auto_accept: bool, workflow: Optional[str], inputs: Optional[dict],
            max_workers: int, max_llm_calls: Optional[int], max_tokens: Optional[int]):
    composed, ended, why = run_stage(compose, request=request, project_dir=project_dir, auto_accept=auto_accept,
                                     max_llm_calls=max_llm_calls, max_tokens=max_tokens)
    if ended is not Outcome.COMPLETED or not composed.ready_for_build:
        ended = ended if ended is not Outcome.COMPLETED else Outcome.CANCELLED
        return final_state(PipelineResult(stage="compose", success=False, outcome=ended, composition=composed,
                                          message=f"nothing built: {why or 'specs not ready'}"))

    built, ended, why = run_stage(build.with_options(task_runner=build_runner(max_workers)),
                                  project_dir=project_dir, max_workers=max_workers, max_llm_calls=max_llm_calls,
                                  max_tokens=max_tokens)
    if ended is not Outcome.COMPLETED:
        if built is not None and built.budget_reached:
            return final_state(PipelineResult(stage="build", success=False, outcome=Outcome.BUDGET_REACHED,
                                              composition=composed, build=built,
                                              message=f"{built.message}; perform skipped"))
        if built is not None:
            why = built.problem or "; ".join(f"{n}: {first_line(e)}" for n, e in built.errors.items())
        done = "stopped" if ended is Outcome.STOPPED else "failed"
        return final_state(PipelineResult(stage="build", success=False, outcome=ended, composition=composed,
                                          build=built, message=f"build {done}, perform skipped: {why}"))

    project = Project(project_dir, runtime.config_for(project_dir))
    name = workflow or find_workflow(project.parser, project.spec_names())
    if name is None:
        return PipelineResult(stage="build", success=True, composition=composed, build=built,
                              message="built; no single workflow spec to perform (pass workflow=)")
    with run_tags(f"workflow:{name}"):
        performed, ended, why = run_stage(perform, workflow=name, inputs=inputs or {}, project_dir=project_dir,
                                          auto_approve=auto_accept)
    if ended is not Outcome.COMPLETED:
        return final_state(PipelineResult(stage="perform", success=False, outcome=ended, composition=composed,
                                          build=built, perform=performed,
                                          message=f"perform of {name} did not finish: {why}"))
    return PipelineResult(stage="perform", success=True, composition=composed, build=built, perform=performed,
                          message=f"performed {name}")
