"""The knobs of a build and a perform: each default, its bounds and its description, defined once.

The CLI's options (`--workers`), the facades' keyword arguments (`Conductor.build(max_workers=)`),
the flows' parameters (the form a deployment shows in the Prefect UI) and the README all take
them from here, so changing a default or a description is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pydantic import Field


@dataclass(frozen=True)
class Option:
    default: Any
    description: str
    ge: Optional[float] = None   # smallest allowed value
    le: Optional[float] = None   # largest allowed value (flows' forms; the CLI accepts more)

    def field(self) -> Any:
        """A pydantic `Field` for a flow parameter: Prefect renders it in the UI's run form."""
        bounds: dict[str, Any] = {k: v for k, v in (("ge", self.ge), ("le", self.le)) if v is not None}
        return Field(description=self.description, **bounds)


MAX_WORKERS = Option(4, "Specs built at the same time.", ge=1, le=64)
MAX_FIXES = Option(2, "Fix attempts per spec after failing tests.", ge=0, le=10)
RETRIES = Option(3, "Retries of an LLM call after a transient fault.", ge=0, le=10)
RETRY_DELAY = Option(1.0, "Seconds before the first retry of an LLM call (doubling, +/-50% jitter).", ge=0)
TEST_TIMEOUT = Option(120.0, "Seconds one spec's tests may run.", ge=1)
STEP_TIMEOUT = Option(300.0, "Seconds one workflow step may run.", ge=0.1)
INCREMENTAL = Option(True, "Reuse cached results for unchanged specs.")
MAX_LLM_CALLS = Option(None, "Hard cap on LLM calls for this run: no call starts past it; unstarted specs end "
                             "Skipped (empty: the Variable spechestra_max_llm_calls, else no cap).", ge=0)
MAX_TOKENS = Option(None, "Hard cap on tokens (input + output) for this run: no call starts once it is reached "
                          "(empty: the Variable spechestra_max_tokens, else no cap).", ge=0)

#: The largest spec file a build takes (bytes). A spec is sent whole in every prompt of its build:
#: 1 MiB is ~260,000 tokens per call, past any model's context; a larger file is refused before
#: anything is paid (split it into specs that depend on each other).
MAX_SPEC_BYTES = 1024 * 1024
