"""What a reviewer is shown and how any answer becomes one `ReviewDecision`.

Reviews arrive three ways (a Prefect pause answered in the UI or terminal, a callback, or
auto-accept); everything here is the same for all three, so it lives in plain code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from pydantic import ValidationError

from ..errors import UsageError
from .models import ReviewDecision, ReviewRequest

ReviewCallback = Callable[[ReviewRequest], Union[bool, ReviewDecision, dict]]
CheckpointCallback = Callable[[str], bool]


def continue_at_checkpoints(step_name: str) -> bool:
    """What a Python caller that gave no checkpoint callback gets: the workflow goes on (a script
    is never left waiting on a pause nobody will answer; the CLI and the UI pause instead)."""
    return True


continue_at_checkpoints.who = ("no checkpoint_callback given: continued (pass one, or "  # type: ignore[attr-defined]
                               "pause_at_checkpoints=True to answer in the UI)")


def summarize(req: ReviewRequest) -> str:
    """Markdown shown above the resume form in the Prefect UI."""
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
    lines += ["", "Choose a decision: **approve**, **edit** (use your edits), or **reject**."]
    return "\n".join(lines)


def review_document(req: ReviewRequest, max_spec_chars: int = 20_000) -> str:
    """The whole of what is under review, for a markdown artifact the resume form links to: the
    form itself has room for a few lines of YAML and cuts long table cells."""
    lines = [f"# {req.stage.capitalize()} under review", "", req.architecture.description or "", "",
             "## Components", ""]
    for comp in req.architecture.components:
        deps = ", ".join(f"`{d}`" for d in comp.dependencies) or "none"
        lines += [f"### `{comp.name}` ({comp.type})", "", f"Depends on: {deps}", "", comp.description or "", ""]
    lines += ["## The architecture as YAML", "", "```yaml", req.architecture.to_yaml().rstrip(), "```", ""]
    for path in req.spec_paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            text = f"(cannot be read: {exc.strerror or exc})"
        if len(text) > max_spec_chars:
            text = text[:max_spec_chars] + f"\n\n... ({len(text) - max_spec_chars} more characters in the file)"
        lines += [f"## Spec `{path}`", "", "````markdown", text.rstrip(), "````", ""]
    return "\n".join(lines)


def checkpoint_summary(step_name: str, spec: str, done: dict) -> str:
    """Markdown for a checkpoint pause: the step about to run and what ran before it."""
    return "\n".join([f"## Checkpoint before step `{step_name}` ({spec})", "", "Steps so far:", ""]
                     + [f"- `{n}` -> `{r.outputs}`" for n, r in done.items()]
                     + ["", "Choose **approve** to run it and continue, or **reject** to stop here."])


def normalize(answer) -> ReviewDecision:
    """A callback's answer (bool, dict or ReviewDecision) as a ReviewDecision."""
    if isinstance(answer, ReviewDecision):
        return answer
    if isinstance(answer, bool):
        return ReviewDecision(approve=answer)
    if isinstance(answer, dict):
        try:
            return ReviewDecision(**answer)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise UsageError(f"a review callback's answer cannot be used ({problems}): return True, False, "
                             "a ReviewDecision or a dict with approve=True/False") from None
    raise TypeError(f"a review callback must return bool, dict or ReviewDecision, not {type(answer).__name__}")


def rejected_message(stage: str, decision: ReviewDecision) -> str:
    return f"{stage} rejected in review" + (f": {decision.comment}" if decision.comment else "")
