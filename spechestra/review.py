"""Human review: one decision, whichever way it arrives.

Inside a flow run a review is a real Prefect pause with a typed form (UI, CLI and API answer
the same pause); a script may pass a callback instead; `auto_accept` approves without asking.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Optional, Union

from .models import ArchitectureReview, ReviewDecision, ReviewRequest, SpecReview
from .prefect_api import current_flow_run_id, in_flow_run, logger, pause_for_input, root_flow_run_id

ReviewCallback = Callable[[ReviewRequest], Union[bool, ReviewDecision, dict]]

_pending: dict[str, ReviewRequest] = {}
_lock = threading.Lock()


def any_pending() -> Optional[tuple[str, ReviewRequest]]:
    """Some review or checkpoint a flow run of this process waits on (subflows included)."""
    with _lock:
        return next(iter(_pending.items()), None)


@contextlib.contextmanager
def registered(req: ReviewRequest):
    """Make the pause findable by a reviewer in this process while it lasts (keyed by the run
    that actually pauses: the top-level one, see `pause_for_input`)."""
    run_id = root_flow_run_id() or current_flow_run_id()
    with _lock:
        _pending[run_id] = req
    try:
        yield
    finally:
        with _lock:
            _pending.pop(run_id, None)


def summarize(req: ReviewRequest) -> str:
    lines = [f"## Review the {req.stage}", "", req.architecture.description or "", "",
             "| component | type | depends on | description |", "|---|---|---|---|"]
    for comp in req.architecture.components:
        lines.append(f"| {comp.name} | {comp.type} | {', '.join(comp.dependencies) or '-'} | "
                     f"{comp.description.replace('|', '/')} |")
    if req.spec_paths:
        lines += ["", "Specs written (edit them on disk before approving if you like):", ""]
        lines += [f"- `{p}`" for p in req.spec_paths]
    if req.failed:
        lines += ["", "Not written:", ""] + [f"- **{n}**: {why}" for n, why in req.failed.items()]
    lines += ["", "Approve to continue; leave *approve* unticked to reject."]
    return "\n".join(lines)


def _normalize(answer) -> ReviewDecision:
    if isinstance(answer, ReviewDecision):
        return answer
    if isinstance(answer, bool):
        return ReviewDecision(approve=answer)
    if isinstance(answer, dict):
        return ReviewDecision(**answer)
    raise TypeError(f"a review callback must return bool, dict or ReviewDecision, not {type(answer).__name__}")


def ask(req: ReviewRequest, key: str, auto_accept: bool = False,
        callback: Optional[ReviewCallback] = None) -> ReviewDecision:
    if auto_accept:
        decision = ReviewDecision(approve=True, comment="auto-accepted")
    elif callback is not None:
        decision = _normalize(callback(req))
    elif in_flow_run():
        decision = _pause(req, key)
    else:
        raise RuntimeError("a review needs a flow run (to pause), a callback, or auto_accept=True")
    logger().info("Review of the %s: %s%s", req.stage, "approved" if decision.approve else "rejected",
                  f" ({decision.comment})" if decision.comment else "")
    return decision


def _pause(req: ReviewRequest, key: str) -> ReviewDecision:
    initial = {}
    form = SpecReview
    if req.stage == "architecture":
        form = ArchitectureReview
        initial["architecture_yaml"] = req.architecture.to_yaml()
    with registered(req):
        answer = pause_for_input(form, summarize(req), key=key, **initial)
    return ReviewDecision(approve=answer.approve, comment=answer.comment,
                          architecture_yaml=getattr(answer, "architecture_yaml", None))
