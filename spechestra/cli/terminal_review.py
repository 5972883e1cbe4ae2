"""Answer review pauses from the terminal while the flow runs in a background thread.

The flow pauses exactly as it would for the Prefect UI; this loop notices the pause, shows the
reviewer what is waiting, and resumes the run through the Prefect API with the answer.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import threading
from typing import Callable

from rich.console import Console
from rich.table import Table

from ..core.models import ReviewDecision, ReviewRequest
from ..errors import ReviewError
from ..orchestration import runtime
from ..orchestration.history import read_flow_run
from ..orchestration.pauses import ReviewBoard, form_answer, resume_with_input
from ..settings import settings


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


class AnsweredElsewhere(ReviewError):
    """The pause this prompt was for was answered in the UI or by `spechestra review`."""


def read_line(console: Console, prompt: str, still_waiting: Callable[[], bool], poll: float = 1.0) -> str:
    """One line from the terminal; checks every `poll` seconds whether the question still stands.
    The prompt is printed as plain text (rich markup would eat `[a]`)."""
    console.print(prompt, end="", markup=False, highlight=False)
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], poll)
        if ready:
            line = sys.stdin.readline()
            if line == "":
                raise EOFError("the terminal closed while a review was waiting")
            return line.strip()
        if not still_waiting():
            console.print()
            raise AnsweredElsewhere("the pause was answered elsewhere (the UI or spechestra review)")


def _edit_text(console: Console, text: str, still_waiting: Callable[[], bool]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
        path = handle.name
    editor = settings.editor
    if editor:
        subprocess.call([*editor.split(), path])
    else:
        read_line(console, f"Edit {path} in your editor, then press Enter: ", still_waiting)
    with open(path, encoding="utf-8") as handle:
        edited = handle.read()
    os.unlink(path)
    return edited


def ask_terminal(console: Console, req: ReviewRequest, still_waiting: Callable[[], bool] = lambda: True) -> ReviewDecision:
    """Ask for an explicit decision: there is no default, so Enter alone decides nothing."""
    show(console, req)
    checkpoint = req.checkpoint is not None
    choices = ["a", "r"] if checkpoint else ["a", "r", "e"]
    question = ("[a]pprove or [r]eject" if checkpoint else "[a]pprove, [r]eject, or [e]dit then approve")
    while True:
        choice = read_line(console, f"{question} [{'/'.join(choices)}]: ", still_waiting).lower()
        if choice in choices:
            break
        console.print(f"Type {', '.join(choices[:-1])} or {choices[-1]} (no default: nothing is decided for you).",
                      markup=False, highlight=False)
    comment = read_line(console, "Comment (optional): ", still_waiting) or None
    if choice == "r":
        return ReviewDecision(approve=False, comment=comment)
    if choice == "e" and req.stage == "architecture":
        return ReviewDecision(approve=True, comment=comment,
                              architecture_yaml=_edit_text(console, req.architecture.to_yaml(), still_waiting))
    if choice == "e":
        read_line(console, "Edit the spec files listed above, then press Enter to approve: ", still_waiting)
    return ReviewDecision(approve=True, comment=comment)


def _still_paused(run_id: str, key: str) -> bool:
    state = read_flow_run(run_id).state
    return bool(state and state.is_paused() and (state.state_details.pause_key or "") == key)


def run_with_terminal_review(work: Callable[[], object], console: Console, ask: Callable = ask_terminal):
    """Run `work()` in a thread; answer each review or checkpoint pause it (or a subflow) reaches."""
    if not sys.stdin.isatty() and ask is ask_terminal:
        raise ReviewError("review needs an interactive terminal: pass --yes, or run it as a deployment "
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
        answered.add(id(req))
        key = run.state.state_details.pause_key or ""
        try:
            decision = ask(console, req, still_waiting=lambda: _still_paused(run_id, key))
            resume_with_input(run_id, form_answer(decision))
        except AnsweredElsewhere:
            console.print("Answered elsewhere (the Prefect UI or `spechestra review`); going on.")
        except RuntimeError as exc:  # answered elsewhere between our check and our answer
            if _still_paused(run_id, key):
                raise
            console.print(f"Answered elsewhere before this answer was sent ({exc}); going on.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
