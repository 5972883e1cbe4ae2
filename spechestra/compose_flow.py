"""The `compose` flow: the Composer as a standalone, deployable Prefect flow.

Deployments and the UI call it with plain parameters; `Composer.compose()` called outside a
flow run goes through the same flow (so reviews can pause and the run history is the same),
handing over its own composer object, callback and context through a context variable.
"""

from __future__ import annotations

import contextvars
from typing import Callable, Optional

from pydantic import Field
from typing_extensions import Annotated

from .models import CompositionResult
from .prefect_api import cancelled_state, flow_value, quiet_heartbeats, sp_flow

_handover: contextvars.ContextVar[Optional[tuple]] = contextvars.ContextVar("spechestra_composer", default=None)


def _handed():
    """What an in-process caller handed over. A function, not the ContextVar itself, in the flow
    body: Dask pickles flow functions by value, and a ContextVar cannot be pickled."""
    return _handover.get()


@sp_flow(name="compose", description="Draft an architecture and specs from a plain-English request, with review.")
def compose(
    request: Annotated[str, Field(description="What you want built, in plain English.")],
    project_dir: Annotated[str, Field(description="Project folder; specs are written to its src/.")] = ".",
    auto_accept: Annotated[bool, Field(description="Skip both reviews (architecture and specs).")] = False,
):
    handed = _handed()
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
    token = _handover.set((composer, context, callback))
    try:
        with quiet_heartbeats():
            state = compose(request=request, project_dir=composer.project_dir, auto_accept=auto_accept,
                            return_state=True)
    finally:
        _handover.reset(token)
    return flow_value(state)


def run_in_own_flow(name: str, body: Callable):
    """Run `body` inside a small flow of its own (for task-mapping API calls made outside a flow)."""
    @sp_flow(name=name)
    def _wrapper():
        return body()

    with quiet_heartbeats():
        return _wrapper()
