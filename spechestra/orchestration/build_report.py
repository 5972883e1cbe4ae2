"""What a build shows about itself: the progress in words, the per-spec table, the coloured graph.

Every spec gets a row and a node here, whether it was built in its own task run or reused from the
cache in the build's one `reuse-cached` task run.
"""

from __future__ import annotations

from typing import Optional

from ..core.graph import mermaid
from ..core.graph_picture import markdown_image
from ..core.models import BuildResult, Outcome, SpecOutcome
from ..core.pricing import spending
from .prefect import current_flow_run_id, markdown_artifact, table_artifact


def progress_words(outcomes: dict, order: list[str], running: dict) -> None:
    """The build's progress in words, as a versioned artifact (the UI shows the newest)."""
    counts = {s: sum(1 for o in outcomes.values() if o.status == s) for s in Outcome}
    text = (f"**{len(outcomes)} of {len(order)} specs done**: {counts[Outcome.BUILT]} built, "
            f"{counts[Outcome.CACHED]} cached, {counts[Outcome.FAILED]} failed, {counts[Outcome.BLOCKED]} blocked"
            + (f", {counts[Outcome.SKIPPED]} skipped (budget)" if counts[Outcome.SKIPPED] else "") + ". "
            + spending(list(outcomes.values()))
            + (f"\n\nRunning: {', '.join(sorted(running))}." if running else ""))
    markdown_artifact(text, key="build-progress", description="Build progress in words")


def summarize(order: list[str], outcomes: dict[str, SpecOutcome], duration: float,
              budget_reason: Optional[str] = None) -> BuildResult:
    by = {s: [n for n in order if outcomes[n].status == s] for s in Outcome}
    unfinished = by[Outcome.FAILED] + by[Outcome.BLOCKED] + by[Outcome.STOPPED]  # a stopped spec is no success
    return BuildResult(
        success=not unfinished and not by[Outcome.SKIPPED], specs_stopped=by[Outcome.STOPPED],
        specs_budget_skipped=by[Outcome.SKIPPED], budget_reached=budget_reason if by[Outcome.SKIPPED] else None,
        specs_compiled=by[Outcome.BUILT], specs_reference=by[Outcome.REFERENCE], specs_skipped=by[Outcome.CACHED],
        specs_failed=by[Outcome.FAILED], specs_blocked=by[Outcome.BLOCKED], build_order=order,
        duration=round(duration, 3), errors={n: outcomes[n].error or "" for n in unfinished},
        flow_run_id=current_flow_run_id(), details=outcomes)


def publish_artifacts(result: BuildResult, deps: dict[str, list[str]]) -> None:
    rows = [{"spec": n, "state": o.status.value, "attempts": o.attempts, "llm_calls": o.llm_calls,
             "retries": o.retries, "input_tokens": o.input_tokens, "output_tokens": o.output_tokens,
             "tokens": "estimated" if o.tokens_estimated else ("reported" if o.llm_calls else "-"),
             "cost_usd": "-" if o.cost_usd is None else round(o.cost_usd, 6), "seconds": o.seconds}
            for n, o in result.details.items()]
    table_artifact(rows, key="build-specs", description="One row per spec: this run's calls, tokens and cost")
    colour = {Outcome.BUILT: "completed", Outcome.REFERENCE: "completed", Outcome.CACHED: "cached",
              Outcome.FAILED: "failed", Outcome.BLOCKED: "blocked", Outcome.SKIPPED: "blocked"}
    classes = {n: colour.get(o.status, "pending") for n, o in result.details.items()}
    graph = mermaid(deps, classes)
    summary = (f"**{result.counts()}"
               + f"** in {result.duration:.1f}s; {spending(list(result.details.values()))}"
               + (f"\n\n**{result.budget_reached}**" if result.budget_reached else "")
               + (f"\n\nGenerated code (tests, fixes, setup) ran: {result.contained}" if result.contained else ""))
    setup = "".join(f"- {line}\n" for line in result.setup)
    setup = f"\n### Environment (arrangement)\n\n{setup}" if setup else ""
    # Prefect's UI renders markdown but not Mermaid: the graph as a picture and a table the UI
    # shows, the Mermaid text after them for tools that draw it (GitHub, mermaid.live).
    picture = markdown_image(deps, classes)
    edges = "".join(f"| {name} | {result.details[name].status.value if name in result.details else '-'} | "
                    f"{', '.join(deps.get(name, [])) or '-'} |\n" for name in deps)
    table = f"| spec | outcome | needs |\n|---|---|---|\n{edges}"
    markdown_artifact(f"## Build graph\n\n{summary}\n\n{picture}\n\n{table}\n```mermaid\n{graph}\n```\n{setup}", key="build-graph",
                      description="Dependency graph coloured by outcome")
