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


def run_demo(directory: Path, console: Console) -> None:
    from ..composer import Composer
    from ..prefect_api import wait_for_task_runs
    from ..providers import ReplayProvider
    from ..report import print_composition

    project = prepare(directory)
    provider_name = os.environ.get("SPECHESTRA_PROVIDER")
    provider = None if provider_name else ReplayProvider(RECORDINGS)
    console.print(f"[bold]Demo request:[/] {request_text()}")
    console.print(f"Provider: {provider_name or 'replay of the recorded answers (offline)'}")
    composer = Composer(str(project), provider=provider)
    result = composer.compose(request_text(), auto_accept=True)
    if result.flow_run_id:
        # Task-run records reach the API asynchronously: wait before this process exits.
        wait_for_task_runs(result.flow_run_id, expected=1 + len(result.architecture.components))
    print_composition(console, result, composer)
    if not result.ready_for_build:
        raise RuntimeError(f"demo composition did not finish: {result.message or 'see the table above'}")
