"""Objects an in-process caller hands to the flow run it starts (a provider, a callback, a
Conductor): flow parameters must be plain data, so these travel by context variable instead.

Flow bodies call `handed(name)`, a module-level function: Dask pickles flow functions by value,
and a ContextVar referenced from the body itself cannot be pickled.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

_vars: dict[str, contextvars.ContextVar] = {}


def _var(name: str) -> contextvars.ContextVar:
    return _vars.setdefault(name, contextvars.ContextVar(f"spechestra_{name}", default=None))


def handed(name: str) -> Any:
    """What the caller handed over for `name`, or None (a deployment or UI run)."""
    return _var(name).get()


@contextlib.contextmanager
def handing_over(name: str, value: Any) -> Iterator[None]:
    token = _var(name).set(value)
    try:
        yield
    finally:
        _var(name).reset(token)
