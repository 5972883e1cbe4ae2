"""`spechestra demo`: the whole pipeline, offline, on the bundled request and recorded answers."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from ..demo import DEMO_INPUTS, RECORDINGS, prepare, request_text
from ..orchestration.history import settle_runs
from ..pipeline import run_pipeline
from ..providers import ReplayProvider
from .report import print_pipeline


def run_demo(directory: Path, console: Console) -> None:
    """The whole pipeline, offline: compose -> build -> perform -> trace (reviews auto-accepted)."""
    project = prepare(directory)
    provider_name = os.environ.get("SPECHESTRA_PROVIDER")
    provider = None if provider_name else ReplayProvider(RECORDINGS)
    console.print(f"[bold]Demo request:[/] {request_text()}")
    console.print(f"Provider: {provider_name or 'replay of the recorded answers (offline)'}")
    console.print(f"Workflow inputs: {DEMO_INPUTS}")
    result = run_pipeline(request_text(), str(project), auto_accept=True, inputs=DEMO_INPUTS, provider=provider)
    if result.flow_run_id:
        settle_runs(result.flow_run_id)  # records reach the API asynchronously: wait before exiting
    print_pipeline(console, result)
    if not result.success:
        raise RuntimeError(f"demo stopped at {result.stage}: {result.message}")
