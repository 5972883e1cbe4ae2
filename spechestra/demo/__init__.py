"""The bundled demo: a real multi-component request, answered offline from recordings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).parent
RECORDINGS = HERE / "recordings"
MARKER = ".spechestra-demo"


def request_text() -> str:
    return " ".join((HERE / "request.txt").read_text(encoding="utf-8").split())


def prepare(directory: Path) -> Path:
    """A fresh demo project folder; refuses to wipe a folder the demo did not create."""
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists():
            raise ValueError(f"{directory} exists and is not a demo folder; choose another --dir")
        shutil.rmtree(directory)
    (directory / "src").mkdir(parents=True)
    (directory / MARKER).write_text("created by `spechestra demo`; safe to delete\n")
    return directory


DEMO_INPUTS = {
    "text": "The cat sat on the mat. The dog sat on the log; the cat and the dog are friends!",
    "n": 3,
}


def run_demo(directory: Path, console: Console) -> None:
    """The whole pipeline, offline: compose -> build -> perform -> trace (reviews auto-accepted)."""
    from ..pipeline_flow import run_pipeline
    from ..prefect_api import settle_runs
    from ..providers import ReplayProvider
    from ..report import print_pipeline

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
