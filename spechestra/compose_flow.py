"""The `compose` flow: the Composer as a standalone, deployable Prefect flow.

Deployments and the UI call it with plain parameters; `Composer.compose()` called outside a
flow run goes through the same flow (so reviews can pause and the run history is the same),
handing over its own composer object, callback and context through a context variable.
"""

from __future__ import annotations

from typing import Callable, Optional

from pydantic import Field
from typing_extensions import Annotated

from .handover import handed as handed_over, handing_over
from .models import CompositionResult
from .prefect_api import cancelled_state, flow_value, quiet_heartbeats, sp_flow



@sp_flow(name="compose", description="Draft an architecture and specs from a plain-English request, with review.")
def compose(
    request: Annotated[str, Field(description="What you want built, in plain English.")],
    project_dir: Annotated[str, Field(description="Project folder; specs are written to its src/.")] = ".",
    auto_accept: Annotated[bool, Field(description="Skip both reviews (architecture and specs).")] = False,
):
    handed = handed_over("compose")
    if handed is not None:
        composer, context, callback = handed
    else:
        from .composer import Composer
        composer, context, callback = Composer(project_dir), None, None
    result = composer.compose(request, auto_accept=auto_accept, context=context, review_callback=callback)
    if result.cancelled:
        return cancelled_state(result.message, data=result, name="Rejected" if "rejected" in result.message
                               else "Cancelled")
    return result


def run_composer(composer, request: str, auto_accept: bool, context: Optional[dict],
                 callback: Optional[Callable]) -> CompositionResult:
    with handing_over("compose", (composer, context, callback)), quiet_heartbeats():
        state = compose(request=request, project_dir=composer.project_dir, auto_accept=auto_accept,
                        return_state=True)
    return flow_value(state)


def run_in_own_flow(name: str, body: Callable):
    """Run `body` inside a small flow of its own (for task-mapping API calls made outside a flow)."""
    @sp_flow(name=name)
    def _wrapper():
        return body()

    with quiet_heartbeats():
        return _wrapper()
