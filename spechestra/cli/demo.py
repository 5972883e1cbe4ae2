"""`spechestra demo`: the whole pipeline, offline, on the bundled request and recorded answers."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from ..demo import DEMO_INPUTS, RECORDINGS, prepare, request_text
from ..orchestration.history import settle_runs
from ..pipeline import run_pipeline
from .report import print_pipeline


def run_demo(directory: Path, console: Console) -> None:
    """The whole pipeline, offline: compose -> build -> perform -> trace (reviews auto-accepted)."""
    project = prepare(directory)
    # By name, not as an object: the name is part of the build cache key, so the hint printed at
    # the end (the same setting) rebuilds nothing.
    if not os.environ.get("SPECHESTRA_PROVIDER"):  # unset or empty: the recorded answers
        os.environ["SPECHESTRA_PROVIDER"] = f"replay:{RECORDINGS}"
    provider_name = os.environ["SPECHESTRA_PROVIDER"]
    console.print(f"[bold]Demo request:[/] {request_text()}")
    console.print(f"Provider: {provider_name}" + (" (the recorded answers, offline)" if provider_name.startswith("replay:")
                                                  else ""))
    console.print(f"Workflow inputs: {DEMO_INPUTS}")
    result = run_pipeline(request_text(), str(project), auto_accept=True, inputs=DEMO_INPUTS)
    if result.flow_run_id:
        settle_runs(result.flow_run_id)  # records reach the API asynchronously: wait before exiting
    print_pipeline(console, result)
    console.print(f"Rebuild it (nothing to do: served from the cache): SPECHESTRA_PROVIDER={provider_name} "
                  f"spechestra build --project {directory}", highlight=False, markup=False, soft_wrap=True)
    if not result.success:
        raise RuntimeError(f"demo stopped at {result.stage}: {result.message}")
