"""Rich terminal output for results (kept out of the CLI so the CLI stays a thin shell)."""

from __future__ import annotations

import json
import os

from rich.console import Console
from rich.table import Table

from ..core.models import Outcome
from ..core.pricing import spending, summary_words
from ..core.text import first_line
from ..core.tracing import format_tree, shown
from ..server.temporary import temporary_api_url
from ..settings import prefect_source, prefect_value


def ui_base() -> str | None:
    """Where the UI of the API this command used lives (PREFECT_UI_URL, else the API's address),
    both as Prefect reads them (environment, profile, .env)."""
    api = prefect_value("PREFECT_API_URL") or ""
    # Prefect derives PREFECT_UI_URL from the API's address when it is unset: only a value the
    # user set names a UI elsewhere.
    ui = prefect_value("PREFECT_UI_URL") if prefect_source("PREFECT_UI_URL") != "default" else None
    if ui:
        return ui.rstrip("/")
    if api == temporary_api_url():
        return None  # this command's own server, gone when it ends
    return api[: -len("/api")] if api.endswith("/api") else None


def ui_hint(flow_run_id: str | None) -> str:
    if not flow_run_id:
        return ""
    base = ui_base()
    if base is None:  # temporary mode: the server this command used is gone; the managed one keeps
        from ..server.local import expected_port, prefect_home, running  # the same database
        up = running()
        if up is not None:
            return f"Flow run {flow_run_id}: {up.ui_url}/runs/flow-run/{flow_run_id}"
        return (f"Flow run {flow_run_id}. To browse it: `spechestra server start`, then open "
                f"http://127.0.0.1:{expected_port(prefect_home())}/runs/flow-run/{flow_run_id}")
    return f"Flow run {flow_run_id}: {base}/runs/flow-run/{flow_run_id}"


def print_composition(console: Console, result, composer, hint: bool = True) -> None:
    table = Table(title="Composition")
    for column in ("component", "type", "depends on", "spec"):
        table.add_column(column)
    created = {p for p in result.spec_paths}
    for comp in result.architecture.components:
        if comp.name in result.failed:
            status = f"[red]failed[/]: {result.failed[comp.name]}"
        elif comp.name in result.skipped:
            status = "[dim]exists, kept[/]"
        elif any(p.endswith(f"{comp.name}.spec.md") for p in created):
            status = "[green]written[/]"
        else:
            status = "-"
        table.add_row(comp.name, comp.type, ", ".join(comp.dependencies) or "-", status)
    console.print(table)
    if result.cancelled:
        console.print(f"[yellow]Cancelled:[/] {result.message}")
    elif result.message:
        console.print(f"[yellow]{result.message}[/]")
    console.print(f"Specs are in {composer.specs_dir}")
    if composer is not None and hasattr(composer, "meter"):
        summary = composer.meter.summary()
        console.print(f"This run: {summary_words(summary)}", highlight=False)
    if hint and result.flow_run_id:
        console.print(ui_hint(result.flow_run_id))


CACHED_ROWS = 20  # more cached specs than this are shown as one line, not one row each


def print_build(console: Console, result, conductor, err: Console) -> None:
    whole = {n: why for n, why in result.errors.items() if n not in result.details}
    if result.problem:  # the build could not start: a project problem, a busy project, a bad setting
        err.print(f"[red]error:[/] {result.problem}", highlight=False)
        return
    if whole and not result.details:  # stopped before any spec: each spec's own problem
        for name, why in whole.items():
            err.print(f"[red]error:[/] {name}: {why}", highlight=False)
        return
    table = Table(title="Build")
    for column in ("spec", "state", "attempts", "LLM calls", "tokens in", "tokens out", "cost", "seconds", "error"):
        table.add_column(column)
    colour = {Outcome.BUILT: "green", Outcome.REFERENCE: "green", Outcome.CACHED: "cyan", Outcome.FAILED: "red",
              Outcome.BLOCKED: "yellow", Outcome.SKIPPED: "yellow"}
    outcomes = [result.details[n] for n in result.build_order if n in result.details]
    fold = sum(1 for o in outcomes if o.status == Outcome.CACHED) > CACHED_ROWS
    for o in outcomes:
        if fold and o.status == Outcome.CACHED:
            continue
        error = first_line(o.error, 60)
        approx = "~" if o.tokens_estimated else ""
        table.add_row(o.name, f"[{colour.get(o.status, 'white')}]{o.status}[/]", str(o.attempts), str(o.llm_calls),
                      f"{approx}{o.input_tokens}", f"{approx}{o.output_tokens}",
                      "-" if o.cost_usd is None else f"${o.cost_usd:.4f}", f"{o.seconds:.1f}", error)
    if fold:
        table.add_row(f"({len(result.specs_skipped)} specs)", f"[cyan]{Outcome.CACHED}[/]", "0", "0", "0", "0", "-",
                      "0.0", "unchanged: reused from the cache")
    console.print(table)
    for name, why in whole.items():
        err.print(f"[red]{name}[/]: {why}", highlight=False)
    failures: dict[str, list[str]] = {}  # the whole first line of each failure, once (the table cuts it)
    for o in outcomes:
        if o.status == Outcome.FAILED and o.error:
            failures.setdefault(first_line(o.error), []).append(o.name)
    for why, names in failures.items():
        err.print(f"[red]{', '.join(names)}[/]: {why}", highlight=False)
    console.print(f"{result.counts()} in {result.duration:.1f}s; code in {conductor.build_dir}")
    console.print(f"This run: {spending(outcomes)}", highlight=False)
    if result.contained:
        console.print(f"Tests ran {'sandboxed: ' if not result.contained.startswith('NOT') else ''}{result.contained}",
                      highlight=False)
    unfinished = result.llm_calls_made - sum(o.llm_calls for o in outcomes)
    if unfinished > 0:  # attempts that never returned an outcome: a lost cluster worker, a killed task
        console.print(f"{result.llm_calls_made} LLM call(s) made in all: {unfinished} by attempts that ended "
                      "without an outcome (a provider error, a lost worker, a killed task); answers they received "
                      "are kept for the next attempt", highlight=False)
    if result.budget_reached:
        err.print(f"[yellow]{result.budget_reached}[/]: {len(result.specs_budget_skipped)} spec(s) not built. "
                  "Run the same build with a larger cap to go on; answers already paid for are reused.",
                  highlight=False)
    if result.flow_run_id:
        console.print(ui_hint(result.flow_run_id))


def print_perform(console: Console, result, hint: bool = True) -> None:
    if result.trace:
        console.print(format_tree(result.trace), markup=False, highlight=False)
    else:
        for step in result.steps:
            console.print(f"{step.name} ({step.spec}): {'ok' if step.success else 'failed'} "
                          f"{json.dumps(shown(step.outputs)) if step.success else (step.error or '')[:2000]}",
                          markup=False, highlight=False)
    if result.success:
        waited = max(0.0, result.duration - result.work_duration)
        took = (f"{result.duration:.2f}s ({result.work_duration:.2f}s of work, {waited:.2f}s waiting for review)"
                if waited >= 0.5 else f"{result.duration:.2f}s")
        outputs = result.declared_outputs or result.outputs  # the workflow's own interface, when it declares one
        console.print(f"[green]Workflow {result.workflow} finished[/] in {took}; outputs: "
                      f"{json.dumps(shown(outputs))}", highlight=False)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    else:
        console.print(f"[red]Workflow {result.workflow} did not finish:[/] {result.error}")
    if result.trace_path:
        console.print(f"Trace: {result.trace_path}")
    if hint and result.flow_run_id:
        console.print(ui_hint(result.flow_run_id))


def print_pipeline(console: Console, result) -> None:
    if result.composition is not None:
        print_composition(console, result.composition, _Specs(result), hint=False)
    console.print(f"[bold]{'Done' if result.success else 'Stopped'} at {result.stage}:[/] {result.message}")
    if result.build is not None:
        console.print(f"Build: {result.build.counts()}")
    if result.perform is not None:
        print_perform(console, result.perform, hint=False)
    if result.llm:
        console.print(f"This run: {summary_words(result.llm)}", highlight=False)
    if result.flow_run_id:
        console.print(ui_hint(result.flow_run_id))


class _Specs:
    """Where a pipeline's specs went, for print_composition (no meter: the pipeline prints its own)."""

    def __init__(self, result):
        paths = result.composition.spec_paths
        self.specs_dir = os.path.dirname(paths[0]) if paths else "(none written)"


def print_status(console: Console, found, llm: str = "") -> None:
    """`llm`: the provider and model a build would use now; cache keys include it."""
    llm = f"{llm[:-1]} (its default model)" if llm.endswith(":") else llm
    table = Table(title="Status", caption=f"cached: for {llm}, the provider and model set now" if llm else None)
    for column in ("spec", "state", "spec changed", "files", "cached"):
        table.add_column(column)
    colour = {"built": "green", "failed": "red", "blocked": "yellow", "never built": "dim", "record damaged": "red"}
    for s in found:
        files = "; ".join([f"edited by hand: {', '.join(s.edited)}"] * bool(s.edited)
                          + [f"missing: {', '.join(s.missing)}"] * bool(s.missing)) or "as built"
        table.add_row(s.spec, f"[{colour.get(s.state, 'white')}]{s.state}[/]", "yes" if s.spec_changed else "no",
                      files, "yes" if s.cached else ("no: cached for another provider or model" if s.cached_other else "no"))
    console.print(table)
    for s in found:
        if s.state == "record damaged":
            console.print(f"{s.spec}: {s.error}", highlight=False)
    drifted = [s.spec for s in found if s.drifted]
    console.print(f"{len(drifted)} of {len(found)} spec(s) drifted" + (f": {', '.join(drifted)}" if drifted else ""))
    other = [s.spec for s in found if s.cached_other]
    if other and llm:  # was: every spec "no" next to "0 drifted", with no word why
        console.print(f"{len(other)} spec(s) were built with another provider or model than {llm}: a build now "
                      "asks the LLM again (set SPECHESTRA_PROVIDER / SPECSOLOIST_LLM_MODEL as when they were built "
                      "to reuse them)", highlight=False)


def print_settings(console: Console, rows) -> None:
    """`spechestra settings`: one row per setting; in a file or a pipe, one plain line each."""
    if not console.is_terminal:
        for row in rows:
            console.print(f"{row.variable}={row.value}  ({row.source})", markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title="Settings")
    for column in ("variable", "value", "from", "what it does"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.variable, row.value, row.source, row.description)
    console.print(table)
