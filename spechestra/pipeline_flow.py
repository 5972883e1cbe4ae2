"""`compose_build_perform`: request -> reviewed specs -> built code -> performed workflow -> trace.

Each stage is its own subflow (compose, build, perform), so the Prefect UI shows them as three
runs under one parent, each with its own task runs, logs and artifacts. Reviews pause the compose
subflow; checkpoints pause the perform subflow. Specs are read from disk when the build starts,
so edits made before approving the spec review are what gets built.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

from pydantic import Field
from typing_extensions import Annotated

from .models import PipelineResult
from .prefect_api import (build_runner, cancelled_state, failed_state, flow_value, quiet_heartbeats, run_tags, sp_flow,
                          state_result)


@sp_flow(name="compose_build_perform",
         description="Compose specs from a request (with review), build them, perform the workflow; returns the trace.")
def compose_build_perform(
    request: Annotated[str, Field(description="What you want built, in plain English.")],
    project_dir: Annotated[str, Field(description="Project folder; specs go to its src/, code to build/.")] = ".",
    auto_accept: Annotated[bool, Field(description="Skip the reviews and checkpoints (no pauses).")] = False,
    workflow: Annotated[Optional[str], Field(description="Workflow spec to perform; empty = the project's only one.")] = None,
    inputs: Annotated[Optional[dict], Field(description="The workflow's inputs, e.g. {\"text\": \"...\"}.")] = None,
    max_workers: Annotated[int, Field(ge=1, le=64, description="Specs built at the same time.")] = 4,
):
    from .compose_flow import compose
    from .conductor import Conductor
    from .conductor_flow import build
    from .perform_flow import perform
    from .workflow import find_workflow

    composed = state_result(compose(request=request, project_dir=project_dir, auto_accept=auto_accept,
                                    return_state=True))
    if isinstance(composed, BaseException) or not composed.ready_for_build:
        why = str(composed) if isinstance(composed, BaseException) else (composed.message or "specs not ready")
        result = PipelineResult(stage="compose", success=False, message=f"nothing built: {why}",
                                composition=None if isinstance(composed, BaseException) else composed)
        return cancelled_state(result.message, data=result, name="Rejected" if "reject" in why else "Cancelled")

    built = state_result(build.with_options(task_runner=build_runner(max_workers))(
        project_dir=project_dir, max_workers=max_workers, return_state=True))
    if isinstance(built, BaseException) or not built.success:
        why = str(built) if isinstance(built, BaseException) else "; ".join(
            f"{n}: {(e or '').splitlines()[0] if e else ''}" for n, e in built.errors.items())
        result = PipelineResult(stage="build", success=False, composition=composed,
                                build=None if isinstance(built, BaseException) else built,
                                message=f"build failed, perform skipped: {why}")
        return failed_state(result.message, data=result)

    conductor = Conductor(project_dir)
    name = workflow or find_workflow(conductor.parser, conductor.spec_names())
    if name is None:
        return PipelineResult(stage="build", success=True, composition=composed, build=built,
                              message="built; no single workflow spec to perform (pass workflow=)")
    with run_tags(f"workflow:{name}"):
        performed = state_result(perform(
            workflow=name, inputs=inputs or {}, project_dir=project_dir, auto_approve=auto_accept,
            return_state=True))
    if isinstance(performed, BaseException) or not performed.success:
        why = str(performed) if isinstance(performed, BaseException) else performed.error
        result = PipelineResult(stage="perform", success=False, composition=composed, build=built,
                                perform=None if isinstance(performed, BaseException) else performed,
                                message=f"perform of {name} did not finish: {why}")
        return failed_state(result.message, data=result)
    return PipelineResult(stage="perform", success=True, composition=composed, build=built, perform=performed,
                          message=f"performed {name}")


def run_pipeline(request: str, project_dir: str = ".", auto_accept: bool = False, workflow: Optional[str] = None,
                 inputs: Optional[dict] = None, max_workers: int = 4, provider=None,
                 review_callback: Optional[Callable] = None, checkpoint_callback: Optional[Callable] = None,
                 on_start: Optional[Callable[[str], None]] = None) -> PipelineResult:
    """Run the flow in this process; `provider` (and callbacks) reach every stage's subflow."""
    with _handovers(project_dir, provider, review_callback, checkpoint_callback) as meter, quiet_heartbeats():
        state = compose_build_perform(request=request, project_dir=project_dir, auto_accept=auto_accept,
                                      workflow=workflow, inputs=inputs, max_workers=max_workers, return_state=True)
    result = flow_value(state)
    result.flow_run_id = str(state.state_details.flow_run_id) if state.state_details else None
    result.llm = meter.summary()
    return result


@contextlib.contextmanager
def _handovers(project_dir, provider, review_callback, checkpoint_callback):
    """Hand one metered provider to all three stages (a flow parameter cannot carry an object).
    With no provider given, it is chosen by setting, exactly as a deployed run would choose it."""
    from .build_flow import unregister_provider
    from .composer import Composer
    from .handover import handing_over
    composer = Composer(project_dir, provider=provider)
    holder = _LateConductor(project_dir, composer.provider)
    try:
        with handing_over("compose", (composer, None, review_callback)), \
                handing_over("build", (holder, None, True)), handing_over("perform", (holder, checkpoint_callback)):
            yield composer.meter
    finally:
        unregister_provider(holder.provider_ref)


class _LateConductor:
    """A Conductor created when first used: the specs it reads do not exist until compose has run."""

    def __init__(self, project_dir: str, provider):
        self.project_dir, self._llm_choice, self._conductor = project_dir, provider, None

    def __getattr__(self, name):
        if self._conductor is None:
            from .conductor import Conductor
            self._conductor = Conductor(self.project_dir, provider=self._llm_choice)
        return getattr(self._conductor, name)
