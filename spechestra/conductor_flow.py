"""The `build` flow: the Conductor as a standalone, deployable Prefect flow.

Deployments and schedules call it with plain parameters; `Conductor.build()` outside a flow run
goes through the same flow, handing over its own conductor (and provider) by context variable.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field
from typing_extensions import Annotated

from .build_flow import unregister_provider
from .handover import handed as handed_over, handing_over
from .models import BuildResult
from .prefect_api import build_runner, failed_state, flow_value, quiet_heartbeats, sp_flow



@sp_flow(name="build", description="Compile every spec to code and tests, dependency-ordered, cached by content.")
def build(
    project_dir: Annotated[str, Field(description="Project folder (specs in src/ or the folder itself).")] = ".",
    specs: Annotated[Optional[list[str]], Field(description="Only these specs (and what they need); empty = all.")] = None,
    incremental: Annotated[bool, Field(description="Reuse cached results for unchanged specs.")] = True,
    max_workers: Annotated[int, Field(ge=1, le=64, description="Specs built at the same time.")] = 4,
    model: Annotated[Optional[str], Field(description="LLM model override.")] = None,
    max_fixes: Annotated[int, Field(ge=0, le=10, description="Fix attempts per spec after failing tests.")] = 2,
    retries: Annotated[int, Field(ge=0, le=10, description="Retries of an LLM call after a transient fault.")] = 3,
) -> BuildResult:
    handed = handed_over("build")
    if handed is None:
        from .conductor import Conductor
        conductor, arrangement, parallel = Conductor(project_dir, max_fixes=max_fixes, retries=retries), None, True
    else:
        conductor, arrangement, parallel = handed
    result = conductor.build(specs=specs or None, parallel=parallel, incremental=incremental,
                             max_workers=max_workers, arrangement=arrangement, model=model)
    if not result.success:  # the run's state says so in the UI; the result still comes back
        names = result.specs_failed + result.specs_blocked
        return failed_state(f"{len(names)} spec(s) not built: {', '.join(names)}", data=result)
    return result


def run_conductor(conductor, specs, parallel, incremental, max_workers, arrangement, model) -> BuildResult:
    workers = max_workers if parallel else 1
    try:
        with handing_over("build", (conductor, arrangement, parallel)), quiet_heartbeats():
            state = build.with_options(task_runner=build_runner(workers))(
                project_dir=conductor.project_dir, specs=specs, incremental=incremental,
                max_workers=max_workers, model=model, max_fixes=conductor.max_fixes,
                retries=conductor.retries, return_state=True)
    finally:
        unregister_provider(conductor.provider_ref)
    return flow_value(state)
