"""Spechestra's own settings: environment variables, read when used (never cached at import).

Flow runs cannot take a provider object as a parameter, so the provider is chosen by name here.
"""

from __future__ import annotations

import os


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def provider_name() -> str | None:
    """`SPECHESTRA_PROVIDER`: `replay:DIR`, a SpecSoloist provider name, or `module:callable`."""
    return os.environ.get("SPECHESTRA_PROVIDER") or None


def review_timeout() -> int:
    """`SPECHESTRA_REVIEW_TIMEOUT`: seconds a review pause waits before the run fails (default 1 day)."""
    return int(_number("SPECHESTRA_REVIEW_TIMEOUT", 86400))


def review_poll_interval() -> int:
    """`SPECHESTRA_REVIEW_POLL`: seconds between checks for a reviewer's answer (Prefect's default is 10)."""
    return max(1, int(_number("SPECHESTRA_REVIEW_POLL", 1)))


def llm_limit_name() -> str:
    """`SPECHESTRA_LLM_LIMIT`: the Prefect global concurrency limit every LLM call holds a slot of
    (default `spechestra-llm`; create it with `prefect gcl create spechestra-llm --limit N`)."""
    return os.environ.get("SPECHESTRA_LLM_LIMIT", "spechestra-llm")


def api_key_block() -> str | None:
    """`SPECHESTRA_API_KEY_BLOCK`: name of a Prefect Secret block holding the LLM API key.

    The key is read inside the run that needs it; only the block's name ever travels."""
    return os.environ.get("SPECHESTRA_API_KEY_BLOCK") or None


def task_runner() -> str:
    """`SPECHESTRA_TASK_RUNNER`: `threads` (default), `dask` (a local cluster, one process per
    worker) or `dask:tcp://scheduler:8786` (an existing Dask cluster) for the build flow's specs."""
    return os.environ.get("SPECHESTRA_TASK_RUNNER", "threads").strip() or "threads"


def lock_timeout() -> float:
    """`SPECHESTRA_LOCK_TIMEOUT`: seconds a build waits for another build of the same project
    (default 600; 0 refuses at once)."""
    return _number("SPECHESTRA_LOCK_TIMEOUT", 600.0)
