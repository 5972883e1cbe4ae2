"""Answer review pauses from the terminal while the flow runs in a background thread.

The flow pauses exactly as it would for the Prefect UI; this loop notices the pause, shows the
reviewer what is waiting, and resumes the run through the Prefect API with the answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from typing import Callable

from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table

from ..core.models import ReviewDecision, ReviewRequest
from ..orchestration import runtime
from ..orchestration.history import read_flow_run
from ..orchestration.pauses import ReviewBoard, resume_with_input


def show(console: Console, req: ReviewRequest) -> None:
    if req.checkpoint is not None:
        console.print(req.summary, markup=False, highlight=False)
        return
    table = Table(title=f"Review the {req.stage}", show_lines=False)
    for column in ("component", "type", "depends on", "description"):
        table.add_column(column)
    for comp in req.architecture.components:
        table.add_row(comp.name, comp.type, ", ".join(comp.dependencies) or "-", comp.description)
    console.print(table)
    if req.summary:
        console.print(f"[yellow]{req.summary}[/]")
    for path in req.spec_paths:
        console.print(f"  written: {path}")
    for name, why in req.failed.items():
        console.print(f"  [red]not written[/] {name}: {why}")


def _edit_text(console: Console, text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
        path = handle.name
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if editor:
        subprocess.call([*editor.split(), path])
    else:
        Prompt.ask(f"Edit {path} in your editor, then press Enter", default="", show_default=False)
    with open(path, encoding="utf-8") as handle:
        edited = handle.read()
    os.unlink(path)
    return edited


def ask_terminal(console: Console, req: ReviewRequest) -> ReviewDecision:
    show(console, req)
    choice = Prompt.ask("[a]pprove, [r]eject, or [e]dit then approve", choices=["a", "r", "e"], default="a")
    comment = Prompt.ask("Comment (optional)", default="", show_default=False) or None
    if choice == "r":
        return ReviewDecision(approve=False, comment=comment)
    if choice == "e" and req.checkpoint is not None:
        return ReviewDecision(approve=True, comment=comment)
    if choice == "e" and req.stage == "architecture":
        return ReviewDecision(approve=True, comment=comment, architecture_yaml=_edit_text(console, req.architecture.to_yaml()))
    if choice == "e":
        Prompt.ask("Edit the spec files listed above, then press Enter to approve", default="", show_default=False)
    return ReviewDecision(approve=True, comment=comment)


def run_with_terminal_review(work: Callable[[], object], console: Console, ask: Callable = ask_terminal):
    """Run `work()` in a thread; answer each review or checkpoint pause it (or a subflow) reaches."""
    if not sys.stdin.isatty() and ask is ask_terminal:
        raise RuntimeError("review needs an interactive terminal: pass --yes, or run it as a deployment "
                           "and answer in the Prefect UI")
    outcome: dict = {}
    board = ReviewBoard()

    def target():
        try:
            with runtime.using(board=board):  # the runs it starts post their pauses here
                outcome["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="spechestra-flow", daemon=True)
    thread.start()
    answered: set[int] = set()
    while thread.is_alive():
        thread.join(0.25)
        pending = board.first()
        if pending is None or id(pending[1]) in answered:
            continue
        run_id, req = pending
        run = read_flow_run(run_id)
        if not (run.state and run.state.is_paused()):
            continue
        decision = ask(console, req)
        resume_with_input(run_id, decision.model_dump(exclude_none=True))
        answered.add(id(req))
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
