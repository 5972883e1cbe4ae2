"""`spechestra limits`: the LLM concurrency limit as the server counts it, and the repair for
slots a restarted server orphaned."""

from __future__ import annotations

from typing import Optional

import typer

from ..settings import settings
from .consoles import console
from .serving import needs_server


@needs_server(watch=False)
def limits(name: Optional[str] = typer.Option(None, "--name", help="The limit (default: SPECHESTRA_LLM_LIMIT)."),
           reset: bool = typer.Option(False, "--reset", help="Count no slot as held: only when nothing is "
                                      "building, after a server that kept leases in memory restarted.")):
    """Show the LLM concurrency limit: slots held of the limit, and whether it is on."""
    from ..errors import LimitError
    from ..orchestration import limits as gcl
    name = name or settings.llm_limit
    found = gcl.reset(name) if reset else gcl.status(name)
    if found is None:
        raise LimitError(f"no concurrency limit named {name!r}: LLM calls are not limited "
                         f"(create one: prefect gcl create {name} --limit N)", limit=name)
    state = "active" if found.active else "inactive (not applied)"
    console.print(f"{found.name}: {found.active_slots} of {found.limit} slots held, {state}"
                  + (" (reset)" if reset else ""), markup=False, highlight=False)
