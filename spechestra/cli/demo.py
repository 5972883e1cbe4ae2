"""`spechestra demo`: the whole pipeline, offline, on the bundled request and recorded answers."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..demo import DEMO_INPUTS, RECORDINGS, prepare, request_text
from ..errors import RunFailed
from ..orchestration.history import settle_runs
from ..pipeline import run_pipeline
from ..settings import settings, temporary_settings
from .consoles import command
from .report import print_pipeline


def run_demo(directory: Path, console: Console) -> None:
    """The whole pipeline, offline: compose -> build -> perform -> trace (reviews auto-accepted)."""
    project = prepare(directory)
    # By name, not as an object: the name is part of the build cache key, so the hint printed at
    # the end (the same setting) rebuilds nothing.
    provider_name = settings.provider or f"replay:{RECORDINGS}"
    console.print(f"[bold]Demo request:[/] {request_text()}")
    console.print(f"Provider: {provider_name}" + (" (the recorded answers, offline)" if provider_name.startswith("replay:")
                                                  else ""))
    console.print(f"Workflow inputs: {DEMO_INPUTS}")
    with temporary_settings(provider=provider_name):
        result = run_pipeline(request_text(), str(project), auto_accept=True, inputs=DEMO_INPUTS)
    if result.flow_run_id:
        settle_runs(result.flow_run_id)  # records reach the API asynchronously: wait before exiting
    print_pipeline(console, result)
    console.print(f"Rebuild it (nothing to do: served from the cache): SPECHESTRA_PROVIDER={provider_name} "
                  f"{command()} build --project {directory}", highlight=False, markup=False, soft_wrap=True)
    if not result.success:
        raise RunFailed(f"demo stopped at {result.stage}: {result.message}", outcome=result.outcome)
