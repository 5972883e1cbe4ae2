"""The LLM concurrency limit (a Prefect global concurrency limit): whether a build passes a gate
(`slots.Gate`, one slot per call) and what `spechestra limits` shows and repairs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Optional

from prefect.exceptions import ObjectNotFound

from ..errors import LimitError
from .prefect import client
from .slots import Gate, settle

__all__ = ["active_limit", "limit_slot", "settle", "LimitStatus", "status", "reset"]


def active_limit(name: Optional[str]) -> Optional[str]:
    """`name` if a global concurrency limit of that name exists and is active, else None.

    Checked once per build, so builds without a limit make no extra API call per LLM call.
    """
    if not name:
        return None
    try:
        with client() as c:
            return name if c.read_global_concurrency_limit_by_name(name).active else None
    except Exception:  # ObjectNotFound: no such limit configured
        return None


def limit_slot(name: Optional[str]) -> Callable[[], ContextManager]:
    """A context-manager factory holding one slot of global concurrency limit `name` (if any),
    one per spec (or compose step): its calls one after another."""
    if not name:
        return contextlib.nullcontext
    return Gate(name)




# --- `spechestra limits` --------------------------------------------------------------------------
@dataclass(frozen=True)
class LimitStatus:
    name: str
    limit: int
    active_slots: int
    active: bool


def status(name: str) -> Optional[LimitStatus]:
    """The limit as the server counts it, or None when there is no such limit."""
    try:
        with client() as c:
            gcl = c.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    return LimitStatus(gcl.name, gcl.limit, gcl.active_slots, gcl.active)


def reset(name: str) -> LimitStatus:
    """Count no slot as held: for slots a server restart orphaned (leases kept only in the
    server's memory are lost with it; with file lease storage the server frees them itself)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    if status(name) is None:
        raise LimitError(f"no concurrency limit named {name!r} (create it: prefect gcl create {name} --limit N)",
                         limit=name)
    with client() as c:
        c.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        gcl = c.read_global_concurrency_limit_by_name(name)
    return LimitStatus(gcl.name, gcl.limit, gcl.active_slots, gcl.active)
