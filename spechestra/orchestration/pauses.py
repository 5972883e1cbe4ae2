"""Human review on Prefect: the resume forms, pausing the run the user is looking at, answering
a pause from another process, and the board a reviewer in this process (the terminal) reads.

A review arrives one of three ways, with one `ReviewDecision` as the result: auto-accept, a
callback, or a real Prefect pause that the UI, the terminal and `spechestra review` all answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from typing import Any, Iterator, Optional, Type, TypeVar, Union
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.input.run_input import keyset_from_paused_state
from prefect.states import Paused
from pydantic import Field, field_validator

from ..core import reviews
from ..core.models import Architecture, ReviewDecision, ReviewRequest
from ..core.reviews import CheckpointCallback, ReviewCallback
from ..errors import ReviewError
from ..settings import settings
from .history import read_child_flow_runs, read_flow_run
from .prefect import client, current_flow_run_id, in_flow_run, logger, markdown_artifact, ui_link

T = TypeVar("T", bound=RunInput)


# --- the forms Prefect renders on a paused run (UI), answered the same way from the CLI ---------
# Each form's `decision` is required and has no default: pressing Submit without choosing does
# nothing (the UI asks for it) instead of rejecting, and rejecting the spec review deletes work.
# A text field with a pattern, not an enum: Prefect 3.8's resume form renders an enum as a
# dropdown with no options (checked in headless Chromium), which no one could answer. The pattern
# takes any case and spaces around ("Approve ", as people type it; the server checks it with the
# JSON schema, where no inline flag like (?i) is portable); the form's value is then normalized.
def _any_case(*words: str) -> str:
    spelled = ("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in words)
    return r"^\s*(" + "|".join(spelled) + r")\s*$"


CHOICE = _any_case("approve", "edit", "reject")
GO = _any_case("approve", "reject")


class _Decided(RunInput):
    @field_validator("decision", mode="after", check_fields=False)
    @classmethod
    def _normalized(cls, value: str) -> str:
        return value.strip().lower()


class ArchitectureReview(_Decided):
    decision: str = Field(pattern=CHOICE, description=(
        "Type approve, edit or reject. approve: write the specs as drafted. edit: write them from the YAML "
        "below, as you edited it. reject: write nothing and stop."))
    comment: Optional[str] = Field(default=None, description="Optional note, kept in the run's logs.")
    architecture_yaml: Optional[str] = Field(
        default=None, description="The architecture as YAML. Edit it (and choose edit) to change what gets written.")


class SpecReview(_Decided):
    decision: str = Field(pattern=CHOICE, description=(
        "Type approve, edit or reject. approve: build the specs as written. edit: you edited the spec files "
        "on disk; build those. reject: remove the specs this run wrote and stop."))
    comment: Optional[str] = Field(default=None, description="Optional note, kept in the run's logs.")


class CheckpointReview(_Decided):
    decision: str = Field(pattern=GO, description="Type approve or reject. approve: run this step and continue. "
                                                  "reject: stop the workflow here.")
    comment: Optional[str] = Field(default=None, description="Optional note, kept in the run's logs.")


def form_answer(decision: ReviewDecision) -> dict:
    """A ReviewDecision as the resume forms take it (what the UI would submit)."""
    answer = {"decision": "reject" if not decision.approve else ("edit" if decision.architecture_yaml else "approve")}
    if decision.comment:
        answer["comment"] = decision.comment
    if decision.architecture_yaml:
        answer["architecture_yaml"] = decision.architecture_yaml
    return answer


class ReviewBoard:
    """What the runs of this process are paused on, keyed by the paused run, for a reviewer in
    the same process (the terminal) to show and answer. Reaches flows through the runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, ReviewRequest] = {}

    @contextlib.contextmanager
    def posted(self, run_id: str, req: ReviewRequest) -> Iterator[None]:
        with self._lock:
            self._pending[run_id] = req
        try:
            yield
        finally:
            with self._lock:
                self._pending.pop(run_id, None)

    def first(self) -> Optional[tuple[str, ReviewRequest]]:
        with self._lock:
            return next(iter(self._pending.items()), None)


# --- asking -----------------------------------------------------------------------------------
def ask(req: ReviewRequest, key: str, *, auto_accept: bool = False, callback: Optional[ReviewCallback] = None,
        board: Optional[ReviewBoard] = None) -> ReviewDecision:
    """The reviewer's decision on `req`: auto-accepted, from the callback, or from a pause."""
    if auto_accept:
        decision = ReviewDecision(approve=True, comment="auto-accepted")
    elif callback is not None:
        decision = reviews.normalize(callback(req))
    elif in_flow_run():
        decision = _pause_for_review(req, key, board)
    else:
        raise ReviewError("a review needs a flow run (to pause), a callback, or auto_accept=True")
    logger().info("Review of the %s: %s%s", req.stage, "approved" if decision.approve else "rejected",
                  f" ({decision.comment})" if decision.comment else "")
    return decision


def _pause_for_review(req: ReviewRequest, key: str, board: Optional[ReviewBoard]) -> ReviewDecision:
    initial: dict[str, Any] = {}
    form: Union[Type[ArchitectureReview], Type[SpecReview]] = SpecReview
    if req.stage == "architecture":
        form = ArchitectureReview
        initial["architecture_yaml"] = req.architecture.to_yaml()
    whole = markdown_artifact(reviews.review_document(req), key=f"{req.stage}-review",
                              description=f"Everything under review at the {req.stage} review, in full")
    summary = (reviews.summarize(req) + f"\n\nRead it all (every component, the YAML, the specs): "
               f"[the {req.stage} under review]({ui_link(f'/artifacts/artifact/{whole}')})")
    answer = _pause_posted(form, summary, key, req, board, **initial)
    return ReviewDecision(approve=answer.decision != "reject", comment=answer.comment,
                          architecture_yaml=getattr(answer, "architecture_yaml", None))


def checkpoint(step_name: str, spec: str, done: dict, *, auto_approve: bool,
               callback: Optional[CheckpointCallback], board: Optional[ReviewBoard]) -> tuple[bool, str]:
    """Whether a checkpoint step may run, and who said so."""
    if auto_approve:
        return True, "auto-approved"
    if callback is not None:
        return bool(callback(step_name)), getattr(callback, "who", "checkpoint callback")
    summary = reviews.checkpoint_summary(step_name, spec, done)
    req = ReviewRequest(stage="checkpoint", checkpoint=step_name, architecture=Architecture(), summary=summary)
    answer = _pause_posted(CheckpointReview, summary, f"checkpoint-{step_name}", req, board)
    return answer.decision == "approve", answer.comment or "reviewed"


def _pause_posted(form: Type[T], summary: str, key: str, req: ReviewRequest, board: Optional[ReviewBoard],
                  **initial: Any) -> T:
    if board is None:
        return pause_for_input(form, summary, key=key, **initial)
    with board.posted(root_flow_run_id() or current_flow_run_id() or "", req):
        return pause_for_input(form, summary, key=key, **initial)


def root_flow_run_id() -> Optional[str]:
    """The top-level flow run above the current one (itself when it is not a subflow)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    run = ctx.flow_run
    with client() as c:
        while run.parent_task_run_id is not None:
            run = c.read_flow_run(c.read_task_run(run.parent_task_run_id).flow_run_id)
    return str(run.id)


def pause_for_input(input_type: Type[T], description: str, key: str, **initial: Any) -> T:
    """Pause until someone answers `input_type` (UI, CLI or API).

    It is the *top-level* run that pauses: the one a user triggered and is looking at (a review
    in the compose stage of `compose_build_perform` pauses the pipeline run, not a subflow the
    UI shows one level down). Polls every `SPECHESTRA_REVIEW_POLL` seconds (default 1; Prefect's
    own default of 10 s made resume-to-continue take ~11 s here) and gives up after
    `SPECHESTRA_REVIEW_TIMEOUT`.
    """
    form = input_type.with_initial_data(description=description, **initial)
    root = root_flow_run_id()
    waiting = root or current_flow_run_id() or ""
    logger().info("Waiting for an answer (%s): Resume in the UI, %s, or `spechestra review %s --approve` (or "
                  "--reject); gives up after %gs (SPECHESTRA_REVIEW_TIMEOUT)", key,
                  ui_link(f"/runs/flow-run/{waiting}"), waiting, settings.review_timeout)
    if root is None or root == current_flow_run_id():
        return pause_flow_run(wait_for_input=form, timeout=settings.review_timeout,
                              poll_interval=settings.review_poll, key=safe_key(key))
    return _pause_run(root, form, safe_key(key))


def _pause_run(flow_run_id: str, form, key: str):
    """`pause_flow_run` for another (the parent) run, whose process is busy running this subflow."""
    timeout = settings.review_timeout
    state: Any = Paused(timeout_seconds=timeout, reschedule=False, pause_key=key)
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = keyset
    logger().info("Pausing flow run %s for input (%s); resume it to continue.", flow_run_id, key)
    with client() as c:
        result = c.set_flow_run_state(flow_run_id, state)
        if result.state is None or not result.state.is_paused():
            raise ReviewError(f"flow run {flow_run_id} cannot be paused: {result.details}", flow_run_id=flow_run_id)
        form.save(keyset, flow_run_id=UUID(flow_run_id))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(settings.review_poll)
            run = c.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_running():
                return form.load(keyset, flow_run_id=UUID(flow_run_id))
            if run.state is not None and run.state.is_final():
                raise ReviewError(f"flow run {flow_run_id} ended ({run.state.name}) while waiting for input",
                                  flow_run_id=flow_run_id)
    raise ReviewError(f"no answer for {key} within {timeout}s (SPECHESTRA_REVIEW_TIMEOUT)", flow_run_id=flow_run_id)


def safe_key(text: str) -> str:
    """Prefect keys (pauses, inputs, artifacts) allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "key"


def resume_with_input(flow_run_id: str, answer: dict, timeout: float = 15.0) -> None:
    """Answer a paused flow run, exactly as the UI's resume form does.

    Prefect sets the run Paused a moment before it stores the form's schema; an answer in that
    gap is refused with "Run input schema not found", so it is retried briefly.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            resume_flow_run(UUID(flow_run_id), run_input=answer)
            return
        except RuntimeError as exc:
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- answering from another process -------------------------------------------------------------
def paused_run_under(flow_run_id: str) -> Optional[FlowRun]:
    """The paused run at or below `flow_run_id` (a pipeline run, or one of its stages)."""
    todo = [read_flow_run(flow_run_id)]
    while todo:
        run = todo.pop(0)
        if run.state is not None and run.state.is_paused():
            return run
        todo.extend(read_child_flow_runs(str(run.id)))
    return None


def answer_review(flow_run_id: str, approve: bool, comment: Optional[str] = None, wait: float = 0.0) -> str:
    """Approve or reject whatever `flow_run_id` (or one of its subflows) is paused on."""
    deadline = time.monotonic() + wait
    while True:
        run = paused_run_under(flow_run_id)
        if run is not None:
            break
        if time.monotonic() >= deadline:
            state = read_flow_run(flow_run_id).state
            raise ReviewError(f"flow run {flow_run_id} is not waiting for review "
                              f"(state: {state.name if state else 'unknown'})", flow_run_id=flow_run_id)
        time.sleep(0.5)
    details = run.state.state_details if run.state else None
    answer = form_answer(ReviewDecision(approve=approve, comment=comment))
    claim = _claim(str(run.id), details, answer)
    try:
        resume_with_input(str(run.id), answer)
    except Exception:
        _unclaim(str(run.id), claim)  # nothing was answered: the review is open to others again
        raise
    return f"{'approved' if approve else 'rejected'} {run.name} ({run.id}) at {details.pause_key if details else 'its pause'}"


def _claim(flow_run_id: str, details, answer: dict) -> Optional[str]:
    """Claim the pause before answering it: a run input under a key of its own, which the
    server creates once (a unique key). Two answers at once both resumed the run before, both
    said so, and the run acted on either; now the second is refused, naming the first."""
    keyset = (details.run_input_keyset or {}) if details else {}
    if not keyset.get("response"):
        return None
    key = f"{keyset['response']}-claimed"
    with client() as c:
        try:
            c.create_flow_run_input(UUID(flow_run_id), key=key, value=json.dumps(answer))
            return key
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", 0) != 409:
                raise
            try:
                first = json.loads(c.read_flow_run_input(flow_run_id=UUID(flow_run_id), key=key))
            except Exception:
                first = {}
    said = first.get("decision", "an answer") + (f": {first['comment']!r}" if first.get("comment") else "")
    raise ReviewError(f"another answer reached flow run {flow_run_id} first ({said}); this one was not applied",
                      flow_run_id=flow_run_id)


def _unclaim(flow_run_id: str, key: Optional[str]) -> None:
    if key:
        with contextlib.suppress(Exception), client() as c:
            c.delete_flow_run_input(flow_run_id=UUID(flow_run_id), key=key)
