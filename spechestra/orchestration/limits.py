"""The LLM concurrency limit (a Prefect global concurrency limit): the gate each call passes,
and what `spechestra limits` shows and repairs.

A slot is a *lease* on the server: Prefect renews it while the call runs, and the server's
repossessor frees it once it is not renewed (a killed process) within `LEASE_SECONDS`. The
gate keeps two faults apart from the provider's: a slot that cannot be taken is a `LimitError`
(no call was made), and a slot that cannot be given back is logged, never raised, because the
answer is already paid for and raising would buy it again.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Optional

from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from ..errors import LimitError
from ..settings import settings
from .prefect import client, logger

#: Prefect's shortest lease (its API refuses less): a dead holder's slot is back within about
#: this long plus one pass of the server's repossessor (15 s by default).
LEASE_SECONDS = 60.0


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
    """A context-manager factory holding one slot of global concurrency limit `name` (if any)."""
    if not name:
        return contextlib.nullcontext
    return lambda: _slot(name)


@contextlib.contextmanager
def _slot(name: str) -> Iterator[None]:
    wait = settings.llm_limit_wait
    held = concurrency(name, occupy=1, timeout_seconds=wait, lease_duration=LEASE_SECONDS, strict=False,
                       raise_on_lease_renewal_failure=False)
    try:
        held.__enter__()
    except TimeoutError:
        raise LimitError(f"no slot of concurrency limit {name!r} came free within {wait:g}s "
                         "(SPECHESTRA_LLM_LIMIT_WAIT); `spechestra limits` shows who holds them", limit=name) from None
    except Exception as exc:
        raise LimitError(f"could not take a slot of concurrency limit {name!r} ({type(exc).__name__}: {exc})",
                         limit=name) from exc
    try:
        yield
    except BaseException:
        _give_back(held, name, *sys.exc_info())
        raise
    _give_back(held, name, None, None, None)


def _give_back(held: ContextManager, name: str, *exc_info) -> None:
    try:
        held.__exit__(*exc_info)
    except BaseException as exc:
        if exc is exc_info[1]:  # the call's own exception, passed back through Prefect's manager
            return
        logger().warning("could not give back a slot of %s (%s: %s); the server frees it when its lease ends "
                         "(within %gs)", name, type(exc).__name__, exc, LEASE_SECONDS + 15)


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
